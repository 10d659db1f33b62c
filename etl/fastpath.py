"""Vectorised pre-check of typed (Parquet) batches: which rows are canonical already.

A row whose every value is already in canonical form (right type, trimmed, printable, within
range, matching its pattern, nothing to normalise) is accepted with its values as read; every
other row takes the per-value path in `etl.validate`, which decides and explains. The checks
here are deliberately stricter than the per-value parsers, so the fast path never accepts
anything they would refuse or change (a property test holds them to that).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from etl.entities import Entity, Kind
from etl.parse import MAX_AMOUNT, MAX_ID_LEN, MAX_TEXT_LEN, MIN_TS

# ASCII-only patterns: RE2 (pyarrow) and Python agree on them.
_PATTERNS = {
    Kind.EMAIL: r"^[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+$",
    Kind.PHONE: r"^\+?[0-9 ().\-]{7,25}$",
    Kind.ZIP: r"^([0-9]{3}|[0-9]{5}|[0-9]{5}-[0-9]{4})$",
    Kind.EIN: r"^[0-9]{9}$",
    Kind.NTEE: r"^[A-Z][0-9]{2}[A-Z0-9]?$",
}
_ENDS = r"^[!-~](?s:.*[!-~])?$"
_RANGES = {
    Kind.AMOUNT: (0.0, MAX_AMOUNT, 2),
    Kind.LATITUDE: (-90.0, 90.0, 6),
    Kind.LONGITUDE: (-180.0, 180.0, 6),
}


def canonical_rows(entity: Entity, batch: pa.RecordBatch, max_ts: int) -> list[bool]:
    """Per row: True when every column is canonical as read (no per-value work needed)."""
    ok = pa.array([True] * batch.num_rows, pa.bool_())
    names = batch.schema.names
    for column in entity.columns:
        if column.name not in names:
            if column.required:
                return [False] * batch.num_rows
            continue
        values = batch.column(names.index(column.name))
        good = _column_ok(column.kind, values, column.choices, max_ts)
        if good is None:
            return [False] * batch.num_rows
        present = pc.is_valid(values)
        ok = pc.and_(ok, good if column.required else pc.or_(pc.invert(present), good))
        ok = pc.fill_null(ok, False)
    return ok.to_pylist()


def _column_ok(kind: Kind, values: pa.Array, choices: tuple[str, ...],
               max_ts: int) -> pa.Array | None:
    """Where the values are canonical (nulls count as not), or None for an unfit type."""
    kind_type = values.type
    if kind in (Kind.ID, Kind.TEXT, Kind.ENUM, *_PATTERNS):
        if not pa.types.is_string(kind_type):
            return None
        limit = MAX_TEXT_LEN if kind is Kind.TEXT else MAX_ID_LEN
        length = pc.utf8_length(values)
        good = pc.and_(pc.and_(pc.greater(length, 0), pc.less_equal(length, limit)),
                       pc.utf8_is_printable(values))
        # Visible ASCII at both ends: nothing any definition of whitespace would strip.
        good = pc.and_(good, pc.match_substring_regex(values, _ENDS))
        if kind is Kind.ENUM:
            good = pc.and_(good, pc.is_in(values, value_set=pa.array(choices, pa.string())))
        elif kind in _PATTERNS:
            good = pc.and_(good, pc.match_substring_regex(values, _PATTERNS[kind]))
        return good
    if kind in _RANGES:
        if kind_type != pa.float64():
            return None  # ints and float32 are converted on the per-value path
        low, high, digits = _RANGES[kind]
        good = pc.and_(pc.is_finite(values), pc.and_(pc.greater_equal(values, low),
                                                      pc.less_equal(values, high)))
        good = pc.fill_null(pc.and_(good, pc.not_equal(values, 0.0)), False)  # -0.0 -> 0.0
        # Round only what is in range (huge values overflow pyarrow's rounding).
        inside = pc.if_else(good, values, pa.scalar(1.0, values.type))
        return pc.and_(good, pc.equal(pc.round(inside, digits), inside))
    if kind is Kind.TIMESTAMP:
        if not pa.types.is_integer(kind_type):
            return None
        return pc.and_(pc.greater_equal(values, MIN_TS), pc.less_equal(values, max_ts))
    if kind is Kind.BOOL:
        return pc.is_valid(values) if pa.types.is_boolean(kind_type) else None
    return None
