"""Parse one raw value into its canonical type, or raise `ValueError` with a short reason.

Raw values come from CSV (always text), JSON Lines (text, numbers, booleans, anything) and
Parquet (typed). Each parser accepts every reasonable spelling and rejects the rest; nothing
here trusts the input (hostile text, NaN, huge strings, lone surrogates).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from etl.entities import Column, Kind

MAX_ID_LEN = 128
MAX_TEXT_LEN = 1_000
MAX_AMOUNT = 1e9  # larger gifts are data errors, not donations
MIN_TS = -2_208_988_800  # 1900-01-01 UTC: earlier dates are typos

# C0/C1 controls break CSV exports and query text; free text may keep tab and newlines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MONEY = re.compile(r"^\s*(-?)\s*\$?\s*(-?)([0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{7,25}$")
_ZIP = re.compile(r"^([0-9]{3}|[0-9]{5}|[0-9]{5}-?[0-9]{4})$")
_EIN = re.compile(r"^([0-9]{2})-?([0-9]{7})$")
_NTEE = re.compile(r"^[A-Z][0-9]{2}[A-Z0-9]?$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def is_missing(value: Any) -> bool:
    return value is None or (value.__class__ is str and (not value or value.isspace()))


def _text(value: Any, limit: int, control: re.Pattern[str]) -> str:
    # Fast path (most values): printable text has no control characters or surrogates.
    if value.__class__ is str and len(value) <= limit and value.isprintable():
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise ValueError(f"longer than {limit} characters ({len(text)})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach us as lone surrogates (surrogateescape).
        raise ValueError("not valid UTF-8 text") from None
    if control.search(text):
        raise ValueError("contains control characters")
    return text


def parse_id(value: Any) -> str:
    return _text(value, MAX_ID_LEN, _CONTROL)


def parse_text(value: Any) -> str:
    return _text(value, MAX_TEXT_LEN, _CONTROL_IN_TEXT)


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = _number_text(value)
        else:
            raise ValueError(f"expected a number, got {type(value).__name__}")
    except OverflowError:
        raise ValueError("number too large") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _number_text(text: str) -> float:
    match = _MONEY.match(text)
    if match is not None:
        sign = "-" if match[1] or match[2] else ""
        return float(sign + match[3].replace(",", ""))
    try:
        return float(text)  # exponents, "nan", "inf": the caller checks finiteness
    except ValueError:
        raise ValueError(f"not a number: {_preview(text)}") from None


def parse_amount(value: Any) -> float:
    amount = parse_float(value)
    if amount < 0:
        raise ValueError("negative amount")
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount above {MAX_AMOUNT:,.0f}")
    # Money has cents; it also keeps every amount within the 15 significant digits that
    # survive the stores' float round trip. (+ 0.0 turns -0.0 into 0.0.)
    return round(amount, 2) + 0.0


def _range(low: float, high: float, what: str) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = parse_float(value)
        if not low <= number <= high:
            raise ValueError(f"{what} outside [{low:g}, {high:g}]")
        return round(number, 6) + 0.0  # about 10 cm; survives the float round trip

    return parse


def parse_timestamp(value: Any, max_ts: int) -> int:
    """Epoch seconds from a number or an ISO-8601 text; naive times are UTC."""
    if isinstance(value, bool):
        raise ValueError("expected a date, got a boolean")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        ts = math.floor(moment.timestamp())
    elif isinstance(value, date):
        ts = math.floor(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("not a finite timestamp")
        ts = math.floor(value)
    elif isinstance(value, str):
        ts = _parse_date_text(value.strip())
    else:
        raise ValueError(f"expected a date, got {type(value).__name__}")
    if ts < MIN_TS:
        raise ValueError("date before 1900")
    if ts > max_ts:
        raise ValueError("date in the future")
    return ts


def _parse_date_text(text: str) -> int:
    if re.fullmatch(r"-?[0-9]{1,12}(\.[0-9]*)?", text):
        return math.floor(float(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {_preview(text)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"not a boolean: {_preview(value)}")


def _pattern(pattern: re.Pattern[str], what: str, normalize: Callable[[str], str] = str,
             ) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = normalize(parse_id(value))
        if not pattern.match(text):
            raise ValueError(f"not {what}: {_preview(text)}")
        return text

    return parse


def parse_ein(value: Any) -> str:
    text = parse_id(value)
    if text.isdigit() and len(text) < 9:
        text = text.zfill(9)  # spreadsheets drop leading zeros
    match = _EIN.match(text)
    if match is None:
        raise ValueError(f"not an EIN: {_preview(text)}")
    return match[1] + match[2]


def _zip(value: Any) -> str:
    text = parse_id(value)
    if _ZIP.match(text) is None:
        raise ValueError(f"not a ZIP code: {_preview(text)}")
    return text if len(text) != 9 else f"{text[:5]}-{text[5:]}"


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parser_for(column: Column, max_ts: int) -> Callable[[Any], Any]:
    """The parser of one canonical column; `max_ts` bounds dates (now plus the tolerance)."""
    kind = column.kind
    if kind is Kind.ENUM:
        choices = frozenset(column.choices)

        def parse_enum(value: Any) -> str:
            word = parse_id(value).lower()
            if word not in choices:
                raise ValueError(f"unknown value {_preview(word)}; expected one of "
                                 f"{', '.join(column.choices)}")
            return word

        return parse_enum
    if kind is Kind.TIMESTAMP:
        return lambda value: parse_timestamp(value, max_ts)
    return _PARSERS[kind]


_PARSERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.ID: parse_id,
    Kind.TEXT: parse_text,
    Kind.AMOUNT: parse_amount,
    Kind.LATITUDE: _range(-90.0, 90.0, "latitude"),
    Kind.LONGITUDE: _range(-180.0, 180.0, "longitude"),
    Kind.BOOL: parse_bool,
    Kind.EMAIL: _pattern(_EMAIL, "an e-mail address"),
    Kind.PHONE: _pattern(_PHONE, "a phone number"),
    Kind.ZIP: _zip,
    Kind.EIN: parse_ein,
    Kind.NTEE: _pattern(_NTEE, "an NTEE code", str.upper),
}
