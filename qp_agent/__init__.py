"""QP agent: runs on a customer's server and applies password resets from the tenant.

It long-polls the tenant for reset jobs and writes each new password into OpenLDAP (RFC 3062
Password Modify), Active Directory (``unicodePwd`` over LDAPS) or a local account
(``chpasswd``), then reports the directory's answer.
"""

__version__ = "0.1.0"
