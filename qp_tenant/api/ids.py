"""The bounds of every integer id the API accepts, in paths, queries and bodies alike.

Row ids are 64-bit signed integers in both databases. A larger number (or a negative one)
can name no row, and handing it to the database driver fails inside the driver (SQLite:
"Python int too large to convert to SQLite INTEGER"; asyncpg: an out-of-range error), so it
is refused as 422 ``invalid_request`` before any query runs.
"""

from __future__ import annotations

from typing import Annotated

import annotated_types
from pydantic import StringConstraints

MAX_ROW_ID = 2**63 - 1

# A row's id: 1 .. 2^63-1.
RowId = Annotated[int, annotated_types.Ge(1), annotated_types.Le(MAX_ROW_ID)]
# A position in the event log (before_id, after_id, last_event_id): 0 means "the start".
EventCursor = Annotated[int, annotated_types.Ge(0), annotated_types.Le(MAX_ROW_ID)]
# An IT Glue record id as clients send it: a number, or its digits as a string (the
# domain checks they are digits). Stored in a 32-character column.
ItGlueId = (Annotated[str, StringConstraints(max_length=32)]
            | Annotated[int, annotated_types.Ge(0), annotated_types.Le(MAX_ROW_ID)])
