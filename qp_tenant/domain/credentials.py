"""What a user's email and password must be: the one place for these rules and limits.

Every way of creating a user (``qp-tenant create-user``, the embedded first-run set-up) and
the sign-in body use the same constants, so a password that can be set can also be used.

Strength is zxcvbn's estimate (score 0-4; at least :data:`MIN_PASSWORD_SCORE`), told about
the user's email and name so a password made of them counts as weak. zxcvbn's cost grows
steeply with length (a random 256-character password takes it tens of seconds), so it
judges the first :data:`STRENGTH_CHECKED_CHARS` characters; a password whose first 72
characters are weak is refused even when it goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from qp_common.credentials import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from qp_tenant.errors import ApiError

MIN_PASSWORD_SCORE = 3  # zxcvbn: "safely unguessable: moderate protection from offline attack"
STRENGTH_CHECKED_CHARS = 72  # zxcvbn's own default limit

# The checkers (email-validator, zxcvbn) are imported where they are used: loading them takes
# a moment that only user creation should pay (the desktop app imports this module for the
# limits alone).

# zxcvbn keeps the user inputs of the call in a module-level dictionary: one call at a time.
_zxcvbn_lock = threading.Lock()


def normalize_email(email: str) -> str:
    """The address as stored (domain lower-cased), or 422 ``invalid_email`` saying why."""
    from email_validator import EmailNotValidError, validate_email

    text = email.strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise ApiError(422, "invalid_email",
                       f"Enter a valid email address of at most {MAX_EMAIL_LENGTH} characters.")
    try:
        # No DNS look-up: whether mail reaches it is not our concern. test_environment also
        # accepts the reserved ``.test`` domain, which test and demo tenants use.
        return validate_email(text, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ApiError(422, "invalid_email", f"Enter a valid email address: {exc}") from None


def check_password_strength(password: str, user_inputs: Iterable[str] = ()) -> None:
    """422 ``weak_password`` with advice, unless ``password`` may be set.

    ``user_inputs`` (the email, the name, ...) count as guessable words. CPU-bound (up to about
    a second): call it off the event loop.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError(422, "weak_password",
                       f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
                       details={"min_length": MIN_PASSWORD_LENGTH})
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ApiError(422, "weak_password",
                       f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters.",
                       details={"max_length": MAX_PASSWORD_LENGTH})
    from zxcvbn import zxcvbn

    words = _guessable_words(user_inputs)
    with _zxcvbn_lock:
        result = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=words,
                        max_length=STRENGTH_CHECKED_CHARS)
    if result["score"] >= MIN_PASSWORD_SCORE:
        return
    feedback = result.get("feedback") or {}
    advice = [text for text in (feedback.get("warning"), *feedback.get("suggestions", ()))
              if text]
    reasons = " ".join(advice) or "It would be guessed quickly."
    raise ApiError(422, "weak_password",
                   f"Choose a longer password that is not a common word or sequence: {reasons}",
                   details={"score": result["score"], "min_score": MIN_PASSWORD_SCORE})


def _guessable_words(user_inputs: Iterable[str]) -> list[str]:
    """The inputs and their parts (``jane.doe@acme.example`` → jane, doe, acme, example)."""
    words: list[str] = []
    for value in user_inputs:
        value = value.strip().lower()
        if not value:
            continue
        words.append(value)
        for separator in "@.-_+ ":
            value = value.replace(separator, " ")
        words.extend(part for part in value.split() if len(part) >= 3)
    return words
