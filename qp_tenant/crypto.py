"""Keys for secrets at rest and for token lookup.

One master secret (``QP_SECRET_KEY`` or a 0600 key file in the data folder) is stretched with
HKDF into separate keys: one to encrypt secrets at rest (Fernet: AES-128-CBC + HMAC) and one to
compute the HMAC under which workflow tokens are looked up (never by plaintext).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE_NAME = "secret.key"


class SecretKeyError(RuntimeError):
    """The master key is missing, unreadable or cannot decrypt what is stored."""


def load_or_create_master_key(secret_key: str, data_dir: Path) -> bytes:
    """Return the master key: ``QP_SECRET_KEY`` if set, else the key file (created 0600)."""
    if secret_key:
        return secret_key.encode("utf-8")
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, 0o600)
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qp-tenant/v1", info=purpose).derive(
        master
    )


class Crypto:
    """Encryption at rest and keyed hashing, derived from one master key."""

    def __init__(self, master_key: bytes):
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(master_key, b"encrypt")))
        self._lookup_key = _derive(master_key, b"token-lookup")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret cannot be decrypted: QP_SECRET_KEY (or the key file) is not the "
                "key it was stored with."
            ) from None

    def lookup_hash(self, token: str) -> str:
        """HMAC-SHA256 of a token, hex: what tokens are stored and found under."""
        return hmac.new(self._lookup_key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def sha256_hex(value: str) -> str:
    """Plain SHA-256 for high-entropy random tokens (access/refresh tokens)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def random_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode()
