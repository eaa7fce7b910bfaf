"""The bounds of what the API accepts: integer ids in paths, queries and bodies alike, and
the strings the domain insists on.

Row ids are 64-bit signed integers in both databases. A larger number (or a negative one)
can name no row, and handing it to the database driver fails inside the driver (SQLite:
"Python int too large to convert to SQLite INTEGER"; asyncpg: an out-of-range error), so it
is refused as 422 ``invalid_request`` before any query runs. Path ids are also matched as
digits only (``{account_id:int}``), so ``/accounts/automatch`` is never read as an id.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

MAX_ROW_ID = 2**63 - 1


NUL_REFUSED = "Text may not contain the NUL character (\\u0000)."


def has_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def _refuse_nul(value: str) -> str:
    if has_nul(value):
        raise ValueError(NUL_REFUSED)
    return value


class Body(BaseModel):
    """A JSON request body, read strictly: ``"5"`` is no integer and ``1`` is no string, so
    what the OpenAPI document declares is exactly what is accepted.

    U+0000 is refused in every field it keeps: PostgreSQL cannot store it in text or JSON,
    and no name, address or key holds one. (Fields the model does not declare are dropped.)
    """

    model_config = ConfigDict(strict=True)

    @model_validator(mode="after")
    def _no_nul(self) -> Body:
        if has_nul(self.model_dump()):
            raise ValueError(NUL_REFUSED)
        return self


# A query-string value that reaches the database (refused with U+0000, as in bodies).
QueryText = Annotated[str, AfterValidator(_refuse_nul)]


# A row's id: 1 .. 2^63-1.
RowId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(MAX_ROW_ID)]
# A position in the event log (before_id, after_id, last_event_id): 0 means "the start".
EventCursor = Annotated[int, annotated_types.Ge(0), annotated_types.Le(MAX_ROW_ID)]


def documented_schema(**keywords: Any) -> Any:
    """Declare JSON Schema ``keywords`` in the OpenAPI document without pydantic enforcing
    them.

    The domain checks these values itself and answers with its own code and a sentence a
    person can act on ("Give the customer a name."), which a generic schema error is not.
    """
    return Field(json_schema_extra=keywords)


def documented_pattern(pattern: str) -> Any:
    return documented_schema(pattern=pattern)


# Text that must not be blank: the domain strips it (Python's whitespace, which also counts
# the separators U+001C..U+001F and U+0085) and refuses what is left empty.
NonBlank = Annotated[str, documented_pattern(r"[^\s\x1c-\x1f\x85]")]
# An IT Glue record id as clients send it: a number, or its digits as a string ("" or null
# for none). The domain checks the digits; the column holds 32 characters.
ItGlueId = (Annotated[str, StringConstraints(max_length=32), documented_pattern(r"^\s*[0-9]*\s*$")]
            | Annotated[int, Strict(), annotated_types.Ge(0), annotated_types.Le(MAX_ROW_ID)])
