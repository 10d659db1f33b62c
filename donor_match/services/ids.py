"""The rule for ids that callers choose, applied before such an id can create a node or edge."""

from __future__ import annotations

import unicodedata

from donor_match.errors import InvalidInputError

MAX_ID_CHARS = 128  # the ETL's limit too (etl.parse.MAX_ID_LEN)


def check_id(field: str, value: str) -> str:
    """`value` unchanged, or InvalidInputError naming `field`.

    Surrounding whitespace would make ids that print alike but differ, and FalkorDB crashes while
    enforcing a unique constraint on such a value (FalkorDB issue #1340), so it is refused here
    rather than stored; the ETL strips it while parsing.
    """
    if not value or len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{field} must be 1 to {MAX_ID_CHARS} characters")
    if value != value.strip():
        raise InvalidInputError(f"{field} must not start or end with whitespace")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidInputError(f"{field} must not contain control characters")
    # Format characters print as nothing (zero-width spaces and joiners) or reorder what follows
    # (bidi overrides), so two ids that look alike would differ; line and paragraph separators
    # would break a line in logs.
    if any(unicodedata.category(char) in {"Cf", "Zl", "Zp"} for char in value):
        raise InvalidInputError(
            f"{field} must not contain invisible format characters or bidi controls"
        )
    return value
