"""OpenLDAP and Active Directory password backends (ldap3).

OpenLDAP takes the new password through the Password Modify extended operation (RFC 3062),
so the server hashes it by its own policy. Active Directory takes it as a replace of
``unicodePwd`` holding the quoted password in UTF-16LE, and only over TLS. Both bind with the
configured service account, whose password comes from an environment variable.

ldap3 is blocking, so each change runs in a worker thread (``asyncio.to_thread``).

The directory sync lists user entries under ``base_dn`` with the paged-results control
(``page_size`` entries per round trip), yielding them one by one, so a directory of 50,000
users is never held in memory at once. Every page's result is checked: a failed search ends
the listing with :class:`DirectoryListingFailed`, never with a silently short list (which
would mark the missing accounts gone). Active Directory: an administrator is a member,
also through nested groups, of Domain Admins, Enterprise Admins or Administrators (the
LDAP_MATCHING_RULE_IN_CHAIN filter, OID 1.2.840.113556.1.4.1941, against each group); a
service account has a ``servicePrincipalName`` or sits under ``service_ou``; a disabled
account has bit 0x2 of ``userAccountControl``.

The agent only changes passwords of entries inside the directory's ``base_dn``: a DN outside
it (``cn=Administrator,cn=Users,…`` when the base is ``ou=people,…``) is refused before the
agent even connects, whatever the tenant asks.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from qp_agent.backends import (
    DirectoryAccount,
    DirectoryListingFailed,
    PasswordChangeFailed,
    scrub,
)
from qp_agent.config import DirectoryConfig
from qp_common.urls import is_loopback_host

logger = logging.getLogger(__name__)

ConnectionFactory = Callable[[DirectoryConfig, str], ldap3.Connection]
"""Builds an unbound connection for a directory from its config and bind password."""

# Human sentences for the result codes a password change meets in practice. The directory's
# own diagnostic message is always appended verbatim: that is what names a password filter
# or a policy rule.
_REASONS: dict[int, str] = {
    8: "the directory requires a secure (TLS) connection for this change",
    13: "the directory requires a secure (TLS) connection for this change",
    19: "the directory's password policy refused the new password",
    32: "the account does not exist in the directory",
    34: "the account's DN is not valid",
    49: "the agent's bind account could not sign in to the directory",
    50: "the agent's bind account is not allowed to change this password",
    51: "the directory is busy; the change was not made",
    52: "the directory is unavailable; the change was not made",
    53: "the directory is unwilling to change this password",
    65: "the directory's schema does not allow this change",
}


def describe_ldap_result(result: Mapping[str, Any], context: str) -> str:
    """Turn an ldap3 result dict into one sentence for the technician.

    The sentence starts with ``context`` (what the agent was doing), then a human reason,
    then the result name and the directory's own message, unchanged, e.g. "Changing the
    password of uid=a,dc=x failed: the directory's password policy refused the new password
    (constraintViolation: Password fails quality checking policy)."
    """
    code = int(result.get("result", -1))
    name = str(result.get("description") or f"result {code}")
    # AD ends its diagnostic messages with a NUL byte.
    message = str(result.get("message") or "").strip().rstrip("\x00").strip()
    human = _REASONS.get(code, "the directory refused the change")
    detail = f"{name}: {message}" if message else name
    return f"{context} failed: {human} ({detail})."


def ad_unicode_pwd(password: str) -> bytes:
    """The value Active Directory expects in ``unicodePwd``: the password in double quotes,
    encoded as UTF-16LE without a byte-order mark."""
    return f'"{password}"'.encode("utf-16-le")


def ad_password_changes(password: str) -> dict[str, list[tuple[str, list[bytes]]]]:
    """The ``changes`` argument of ``Connection.modify`` for an administrative AD reset.

    A single REPLACE of ``unicodePwd`` is a reset (needs the "Reset Password" right); a
    user changing their own password would send DELETE old + ADD new instead.
    """
    return {"unicodePwd": [(ldap3.MODIFY_REPLACE, [ad_unicode_pwd(password)])]}


def is_dn(identity: str) -> bool:
    """Whether ``identity`` is written as a distinguished name (``uid=alice,ou=...``)."""
    try:
        return bool(parse_dn(identity))
    except (LDAPInvalidDnError, ValueError, IndexError):
        return False


def _rdns(dn: str) -> list[frozenset[tuple[str, str]]]:
    """The DN's RDNs, most specific first, each a set of (attribute, value) in lower case
    (a multi-valued RDN ``cn=a+uid=b`` is one set)."""
    rdns: list[frozenset[tuple[str, str]]] = []
    current: set[tuple[str, str]] = set()
    for attribute, value, separator in parse_dn(dn, escape=False, strip=True):
        current.add((attribute.strip().casefold(), value.strip().casefold()))
        if separator != "+":
            rdns.append(frozenset(current))
            current = set()
    if current:
        rdns.append(frozenset(current))
    return rdns


def dn_within(dn: str, base_dn: str) -> bool:
    """Whether ``dn`` is ``base_dn`` or an entry below it, comparing parsed RDNs without
    regard to case (``cn=x,dc=evil-example,dc=test`` is not below ``dc=example,dc=test``).
    A DN that does not parse is not within anything."""
    try:
        entry, base = _rdns(dn), _rdns(base_dn)
    except (LDAPInvalidDnError, ValueError, IndexError):
        return False
    return bool(base) and len(entry) >= len(base) and entry[len(entry) - len(base):] == base


def default_connection(directory: DirectoryConfig, bind_password: str) -> ldap3.Connection:
    """An unbound, synchronous ldap3 connection to ``directory`` that verifies TLS."""
    assert directory.url is not None
    use_ssl = directory.url.lower().startswith("ldaps://")
    tls = None
    if use_ssl:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(directory.ca_file) if directory.ca_file else None,
        )
    server = ldap3.Server(
        directory.url.rstrip("/"),
        use_ssl=use_ssl,
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=directory.timeout_seconds,
    )
    return ldap3.Connection(
        server,
        user=directory.bind_dn,
        password=bind_password,
        authentication=ldap3.SIMPLE,
        client_strategy=ldap3.SYNC,
        auto_bind=ldap3.AUTO_BIND_NONE,
        raise_exceptions=False,
        auto_referrals=False,
        receive_timeout=int(directory.timeout_seconds),
    )


class _LdapBackend:
    """What OpenLDAP and AD share: the bind, identity resolution and error wording."""

    search_filter_template = "(|(uid={0})(cn={0}))"

    def __init__(
        self,
        directory: DirectoryConfig,
        *,
        environ: Mapping[str, str] | None = None,
        connection_factory: ConnectionFactory | None = None,
    ) -> None:
        self.directory = directory
        self._environ: Mapping[str, str] = {} if environ is None else environ
        self._connection_factory = connection_factory or default_connection
        if directory.url and directory.url.lower().startswith("ldap://"):
            host = urlsplit(directory.url).hostname or ""
            if not is_loopback_host(host):
                logger.warning(
                    "Directory %r uses plain ldap:// to %s: new passwords cross the network "
                    "unencrypted. Use ldaps://.",
                    directory.name,
                    host,
                )

    async def set_password(self, identity: str, password: str) -> str:
        """Set ``identity``'s password in this directory (runs in a worker thread)."""
        if is_dn(identity):
            self._refuse_outside_base(identity)  # before any connection
        return await asyncio.to_thread(self._set_password_blocking, identity, password)

    def _refuse_outside_base(self, dn: str) -> None:
        base_dn = self.directory.base_dn or ""
        if not dn_within(dn, base_dn):
            raise PasswordChangeFailed(
                f"The agent refused: {dn} is outside the directory's base DN {base_dn} "
                f"(directory '{self.directory.name}'); it only changes passwords of accounts "
                "under its base DN."
            )

    def _set_password_blocking(self, identity: str, password: str) -> str:
        bind_password = self._bind_password()
        try:
            conn = self._connection_factory(self.directory, bind_password)
        except LDAPException as exc:
            raise PasswordChangeFailed(
                scrub(self._unreachable(exc), password, bind_password)
            ) from None
        try:
            try:
                if not conn.bind():
                    raise PasswordChangeFailed(
                        scrub(
                            describe_ldap_result(
                                conn.result,
                                f"Signing in to directory '{self.directory.name}' as "
                                f"{self.directory.bind_dn} (password from "
                                f"${self.directory.bind_password_env})",
                            ),
                            password,
                            bind_password,
                        )
                    )
                dn = self._resolve_dn(conn, identity)
                # Again after a search: a referral or alias could name an entry elsewhere.
                self._refuse_outside_base(dn)
                self._apply(conn, dn, password)
            except LDAPException as exc:
                raise PasswordChangeFailed(
                    scrub(self._unreachable(exc), password, bind_password)
                ) from None
        finally:
            try:
                conn.unbind()
            except LDAPException:
                logger.debug("unbind from %r failed", self.directory.name, exc_info=True)
        logger.info("Password changed for %s in directory %r", dn, self.directory.name)
        return f"password changed for {dn} in directory '{self.directory.name}'"

    def _apply(self, conn: ldap3.Connection, dn: str, password: str) -> None:
        raise NotImplementedError

    def _bind_password(self) -> str:
        name = self.directory.bind_password_env or ""
        value = self._environ.get(name)
        if not value:
            raise PasswordChangeFailed(
                f"The environment variable {name}, which should hold the bind password for "
                f"directory '{self.directory.name}', is not set in the agent's environment."
            )
        return value

    def _unreachable(self, exc: LDAPException) -> str:
        return (
            f"Could not talk to directory '{self.directory.name}' at {self.directory.url}: "
            f"{type(exc).__name__}: {exc}."
        )

    def _search_filter(self, identity: str) -> str:
        return self.search_filter_template.format(escape_filter_chars(identity))

    def _normalise_identity(self, identity: str) -> str:
        return identity

    def _resolve_dn(self, conn: ldap3.Connection, identity: str) -> str:
        """``identity`` itself if it is a DN, else the one entry under base_dn it names."""
        if is_dn(identity):
            return identity
        name = self._normalise_identity(identity)
        base_dn = self.directory.base_dn or ""
        search_filter = self._search_filter(name)
        ok = conn.search(
            base_dn,
            search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=[],
            size_limit=2,
        )
        # sizeLimitExceeded (4) still carries the entries found: that means "ambiguous".
        if not ok and conn.result.get("result") not in (0, 4):
            raise PasswordChangeFailed(
                describe_ldap_result(
                    conn.result, f"Looking up {identity!r} under {base_dn} with {search_filter}"
                )
            )
        dns = [
            str(item["dn"])
            for item in (conn.response or [])
            if item.get("type") == "searchResEntry"
        ]
        if not dns:
            raise PasswordChangeFailed(
                f"No account matches {identity!r} under {base_dn} "
                f"(searched with {search_filter}); check the account's identity."
            )
        if len(dns) > 1:
            raise PasswordChangeFailed(
                f"More than one account matches {identity!r} under {base_dn} "
                f"({', '.join(dns)}); use the account's full DN as its identity."
            )
        return dns[0]


    # ------------------------------------------------------------------ directory sync
    list_filter = "(uid=*)"
    list_attributes: tuple[str, ...] = ("uid", "cn")

    def list_accounts(self) -> Iterator[DirectoryAccount]:
        """Every user entry under ``base_dn``, page by page (blocking).

        Raises:
            DirectoryListingFailed: the bind or a page of the search failed.
        """
        try:
            bind_password = self._bind_password()
        except PasswordChangeFailed as exc:
            raise DirectoryListingFailed(exc.reason) from None
        try:
            conn = self._connection_factory(self.directory, bind_password)
        except LDAPException as exc:
            raise DirectoryListingFailed(scrub(self._unreachable(exc), bind_password)) from None
        try:
            if not conn.bind():
                raise DirectoryListingFailed(scrub(describe_ldap_result(
                    conn.result,
                    f"Signing in to directory '{self.directory.name}' as "
                    f"{self.directory.bind_dn} to list its accounts"), bind_password))
            yield from self._accounts(conn)
        except LDAPException as exc:
            raise DirectoryListingFailed(scrub(self._unreachable(exc), bind_password)) from None
        finally:
            try:
                conn.unbind()
            except LDAPException:
                logger.debug("unbind from %r failed", self.directory.name, exc_info=True)

    def paged(self, conn: ldap3.Connection, base: str, search_filter: str,
              attributes: list[str]) -> Iterator[dict[str, Any]]:
        """The entries of a subtree search, ``page_size`` per round trip; each page's result
        is checked, so an error never looks like the end of the list."""
        cookie: bytes | None = None
        while True:
            conn.search(base, search_filter, search_scope=ldap3.SUBTREE,
                        attributes=attributes, paged_size=self.directory.page_size,
                        paged_cookie=cookie)
            if conn.result.get("result") != 0:
                raise DirectoryListingFailed(describe_ldap_result(
                    conn.result, f"Listing the accounts of directory '{self.directory.name}' "
                                 f"under {base} with {search_filter}"))
            for item in conn.response or []:
                if item.get("type") == "searchResEntry":
                    yield item
            try:
                cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            except (KeyError, TypeError):
                cookie = None
            if not cookie:
                return

    def _accounts(self, conn: ldap3.Connection) -> Iterator[DirectoryAccount]:
        for item in self.paged(conn, self.directory.base_dn or "", self.list_filter,
                               list(self.list_attributes)):
            account = self._account(str(item["dn"]), item.get("attributes") or {})
            if account is not None:
                yield account

    def _account(self, dn: str, attributes: Mapping[str, Any]) -> DirectoryAccount | None:
        uid = _first(attributes.get("uid"))
        if not uid:
            return None
        return DirectoryAccount(identity=dn, display_name=_first(attributes.get("cn")) or uid,
                                login_names=(uid,))


def _first(value: Any) -> str:
    """The first value of an attribute as text ("" when absent)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return "" if value is None else str(value)


# The groups whose members, also through nested groups, administer an Active Directory
# domain: Administrators (builtin, well-known SID S-1-5-32-544), Domain Admins (RID 512),
# Enterprise Admins (RID 519, in the forest root domain).
ADMIN_GROUP_FILTER = ("(&(objectClass=group)(|(objectSid=S-1-5-32-544)"
                      "(sAMAccountName=Domain Admins)(sAMAccountName=Enterprise Admins)))")
IN_CHAIN = "1.2.840.113556.1.4.1941"
ACCOUNTDISABLE = 0x2


def domain_root(dn: str) -> str:
    """The ``DC=…`` tail of a DN: the naming context its domain's groups live in."""
    parts = [f"{a}={v}" for a, v, _ in parse_dn(dn, escape=True, strip=True)
             if a.strip().casefold() == "dc"]
    return ",".join(parts)


class OpenLdapBackend(_LdapBackend):
    """Changes passwords in OpenLDAP with the Password Modify extended operation."""

    search_filter_template = "(|(uid={0})(cn={0}))"

    def _apply(self, conn: ldap3.Connection, dn: str, password: str) -> None:
        changed = conn.extend.standard.modify_password(user=dn, new_password=password)
        if not changed:
            raise PasswordChangeFailed(
                scrub(
                    describe_ldap_result(conn.result, f"Changing the password of {dn}"),
                    password,
                )
            )


class ActiveDirectoryBackend(_LdapBackend):
    """Resets passwords in Active Directory by replacing ``unicodePwd`` over LDAPS."""

    search_filter_template = "(|(sAMAccountName={0})(userPrincipalName={0}))"

    def __init__(
        self,
        directory: DirectoryConfig,
        *,
        environ: Mapping[str, str] | None = None,
        connection_factory: ConnectionFactory | None = None,
    ) -> None:
        if not (directory.url or "").lower().startswith("ldaps://"):
            # AD answers unwillingToPerform to a unicodePwd change without TLS; say why now.
            raise PasswordChangeFailed(
                f"Directory '{directory.name}': Active Directory only accepts a new password "
                "over TLS; use an ldaps:// URL."
            )
        super().__init__(directory, environ=environ, connection_factory=connection_factory)

    def _normalise_identity(self, identity: str) -> str:
        # DOMAIN\user (down-level logon name): the part after the backslash is the
        # sAMAccountName.
        return identity.rsplit("\\", 1)[-1] if "\\" in identity else identity

    def _apply(self, conn: ldap3.Connection, dn: str, password: str) -> None:
        if not conn.modify(dn, ad_password_changes(password)):
            raise PasswordChangeFailed(
                scrub(
                    describe_ldap_result(conn.result, f"Resetting the password of {dn}"),
                    password,
                )
            )

    list_filter = "(&(objectCategory=person)(objectClass=user))"
    list_attributes = ("sAMAccountName", "userPrincipalName", "displayName",
                       "userAccountControl", "servicePrincipalName")

    def _accounts(self, conn: ldap3.Connection) -> Iterator[DirectoryAccount]:
        self._admins = self._administrators(conn)
        yield from super()._accounts(conn)

    def _administrators(self, conn: ldap3.Connection) -> set[str]:
        """DNs (case-folded) of users under base_dn in an admin group, nested included."""
        base = self.directory.base_dn or ""
        root = domain_root(base) or base
        groups = [str(g["dn"]) for g in self.paged(conn, root, ADMIN_GROUP_FILTER, ["cn"])]
        admins: set[str] = set()
        for group in groups:
            chain = (f"(&{self.list_filter}"
                     f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group)}))")
            admins.update(str(e["dn"]).casefold() for e in self.paged(conn, base, chain, []))
        return admins

    def _account(self, dn: str, attributes: Mapping[str, Any]) -> DirectoryAccount | None:
        sam = _first(attributes.get("sAMAccountName"))
        if not sam:
            return None
        upn = _first(attributes.get("userPrincipalName"))
        try:
            control = int(_first(attributes.get("userAccountControl")) or 0)
        except ValueError:
            control = 0
        if dn.casefold() in getattr(self, "_admins", set()):
            kind = "administrator"
        elif attributes.get("servicePrincipalName") or (
                self.directory.service_ou and dn_within(dn, self.directory.service_ou)):
            kind = "service"
        else:
            kind = "end_user"
        return DirectoryAccount(
            identity=dn, display_name=_first(attributes.get("displayName")) or sam,
            login_names=tuple(n for n in (sam, upn) if n),
            enabled=not control & ACCOUNTDISABLE, kind=kind)
