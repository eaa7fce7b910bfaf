"""The limits on a user's email and password, shared by the tenant (which enforces them) and
the desktop app (which checks a form before sending it and shows the rule up front)."""

from __future__ import annotations

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254  # the longest address SMTP can carry (RFC 3696 erratum 1690)
