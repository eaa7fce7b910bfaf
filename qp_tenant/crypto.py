"""Keys for secrets at rest and for token lookup.

One master secret (``QP_SECRET_KEY`` or a 0600 key file in the data folder) is stretched with
HKDF into separate keys: one to encrypt secrets at rest (Fernet: AES-128-CBC + HMAC) and one to
compute the HMAC under which workflow tokens are looked up (never by plaintext).

Older master keys (``QP_PREVIOUS_SECRET_KEYS``, or ``secret.key.previous`` next to the key
file) are accepted for reading only: decryption tries the current key first, then each older
one, and a token is found under the current key's HMAC or an older key's. Everything written
uses the current key, and ``qp-tenant rotate-key`` (qp_tenant/rotation.py) moves what is stored
onto it, after which the older keys can be dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE_NAME = "secret.key"
PREVIOUS_KEY_FILE_NAME = "secret.key.previous"  # older keys, one a line (key-file installs)


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
    key = new_master_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def new_master_key() -> bytes:
    """A fresh random master key (what a new key file holds)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32))


def load_previous_keys(secret_key: str, previous_secret_keys: Iterable[str],
                       data_dir: Path) -> list[bytes]:
    """Older master keys, still accepted for reading: ``QP_PREVIOUS_SECRET_KEYS`` and, when the
    current key comes from the key file (no ``QP_SECRET_KEY``), ``secret.key.previous``."""
    keys = [key.strip().encode("utf-8") for key in previous_secret_keys if key.strip()]
    if not secret_key:
        keys += read_key_lines(data_dir / PREVIOUS_KEY_FILE_NAME)
    return keys


def read_key_lines(path: Path) -> list[bytes]:
    """The keys in a key file, one a line; none if the file does not exist."""
    if not path.exists():
        return []
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace ``path`` with ``keys`` (one a line), mode 0600, atomically and durably.

    A crash leaves either the old file or the new one, never a partial key.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a left-over .tmp file may have had another mode
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(key + b"\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qp-tenant/v1", info=purpose).derive(
        master
    )


class Crypto:
    """Encryption at rest and keyed hashing, derived from the current master key.

    ``previous_keys`` (older master keys) are used only to read: to decrypt what was stored
    before a rotation and to find workflow tokens hashed before it.
    """

    def __init__(self, master_key: bytes, previous_keys: Sequence[bytes] = ()):
        keys = [master_key]
        for key in previous_keys:
            if key and key not in keys:
                keys.append(key)
        fernets = [Fernet(base64.urlsafe_b64encode(_derive(key, b"encrypt"))) for key in keys]
        self._fernet = fernets[0]
        self._multi = MultiFernet(fernets)
        self._lookup_keys = [_derive(key, b"token-lookup") for key in keys]
        self._lookup_key = self._lookup_keys[0]

    def __repr__(self) -> str:
        return f"<Crypto with {len(self._lookup_keys) - 1} previous key(s)>"

    @property
    def previous_key_count(self) -> int:
        return len(self._lookup_keys) - 1

    def encrypt(self, plaintext: str) -> str:
        """Encrypt under the current key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt with the current key or, failing that, any previous key."""
        try:
            return self._multi.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretKeyError(
                "A stored secret cannot be decrypted: neither QP_SECRET_KEY (or the key file) "
                "nor any key in QP_PREVIOUS_SECRET_KEYS (or secret.key.previous) is the key it "
                "was stored with."
            ) from None

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` was encrypted under the current key."""
        try:
            self._fernet.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def lookup_hash(self, token: str) -> str:
        """HMAC-SHA256 of a token under the current key, hex: what new tokens are stored under."""
        # hmac.digest: the one-shot C path (hmac.new builds two hash objects in Python).
        return hmac.digest(self._lookup_key, token.encode("utf-8"), "sha256").hex()

    def lookup_hashes(self, token: str) -> list[str]:
        """The token's HMAC under the current key, then under each previous key: a token stored
        before a rotation (and not yet re-hashed by ``rotate-key``) is found by one of these."""
        data = token.encode("utf-8")
        return [hmac.digest(key, data, "sha256").hex() for key in self._lookup_keys]

    def lookup_aliases(self, tokens: Iterable[str]) -> dict[str, str]:
        """Every hash a token may be stored under (any key) -> its current-key hash.

        For batch lookups: query ``token_hmac IN aliases`` and key the rows found by
        ``aliases[row.token_hmac]``, which is ``lookup_hash(token)`` whatever key stored it.
        """
        aliases: dict[str, str] = {}
        for token in tokens:
            hashes = self.lookup_hashes(token)
            for h in hashes:
                aliases.setdefault(h, hashes[0])
        return aliases


def sha256_hex(value: str) -> str:
    """Plain SHA-256 for high-entropy random tokens (access/refresh tokens)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def random_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode()
