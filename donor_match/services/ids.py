"""Ids and cursors: the rule for ids that callers choose (applied before such an id can create a
node or edge), and the codecs of the opaque ids and cursors the API hands out."""

from __future__ import annotations

import base64
import json
import math
import unicodedata

from donor_match.errors import InvalidInputError

MAX_ID_CHARS = 128  # the ETL's limit too (etl.parse.MAX_ID_LEN)
# Recorded as the load_id of what the API writes (gifts, initiatives), beside the ETL loads' ids.
API_WRITER = "api"


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


# Opaque ids and cursors the API hands out and takes back. Each is base64 of a prefixed text,
# so one kind cannot pass for another; each decoder names what it expected.

_NONPROFIT_CURSOR = "nonprofit:"
_MATCH_CURSOR = "match:"


def match_id(donor_id: str, nonprofit_id: str) -> str:
    """An opaque id for a (donor, nonprofit) match, so feedback can name what it is about."""
    return base64.urlsafe_b64encode(json.dumps([donor_id, nonprofit_id]).encode()).decode()


def parse_match_id(value: str) -> tuple[str, str]:
    try:
        donor_id, nonprofit_id = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInputError(f"matchId {value!r} is not a match id from this API") from exc
    if not (isinstance(donor_id, str) and isinstance(nonprofit_id, str)):
        raise InvalidInputError(f"matchId {value!r} is not a match id from this API")
    return donor_id, nonprofit_id


def encode_match_cursor(score: float, position: int) -> str:
    """Keyset cursor: the last match's ranking score and its position in the model's index."""
    text = f"{_MATCH_CURSOR}{score!r}:{position}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_match_cursor(cursor: str) -> tuple[float, int]:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith(_MATCH_CURSOR):
            raise ValueError(text)
        score, position = text.removeprefix(_MATCH_CURSOR).split(":")
        parsed = float(score), int(position)
    except (ValueError, UnicodeError) as exc:
        raise InvalidInputError(f"after: {cursor!r} is not a match cursor from this API") from exc
    if not math.isfinite(parsed[0]) or parsed[1] < 0:
        raise InvalidInputError(f"after: {cursor!r} is not a match cursor from this API")
    return parsed


def encode_nonprofit_cursor(nonprofit_id: str) -> str:
    """Cursor of the `nonprofits` connection: the last nonprofit's id."""
    return base64.urlsafe_b64encode((_NONPROFIT_CURSOR + nonprofit_id).encode()).decode()


def decode_nonprofit_cursor(cursor: str) -> str:
    """The nonprofit id inside an opaque cursor; BAD_USER_INPUT for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeError) as exc:
        raise InvalidInputError(f"after: {cursor!r} is not a cursor from this API") from exc
    if not text.startswith(_NONPROFIT_CURSOR):
        raise InvalidInputError(f"after: {cursor!r} is not a cursor from this API")
    return text.removeprefix(_NONPROFIT_CURSOR)
