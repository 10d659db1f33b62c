"""Source adapters: canonical CSV/JSON Lines/Parquet, DonorsChoose, IRS EO BMF."""

from __future__ import annotations

from pathlib import Path

from etl.sources.base import MissingColumn, RawBatch, Reject, Source, SourceError

FORMATS = ("canonical", "csv", "jsonl", "parquet", "donorschoose", "irs-bmf")


def open_source(fmt: str, path: Path, mapping: Path | None = None) -> Source:
    """The adapter for `fmt` over `path` (a file or a directory); `SourceError` if unusable."""
    if fmt in ("canonical", "csv", "jsonl", "parquet"):
        from etl.sources.canonical import CanonicalSource
        from etl.sources.mapping import load_mapping

        return CanonicalSource(path, fmt, load_mapping(mapping) if mapping else None)
    if mapping is not None:
        raise SourceError(mapping, f"--mapping applies to canonical files, not to {fmt}")
    if fmt == "donorschoose":
        from etl.sources.donorschoose import DonorsChooseSource
        from etl.sources.donorschoose_opendata import DonorsChooseOpenDataSource, is_opendata

        if is_opendata(path):
            return DonorsChooseOpenDataSource(path)

        return DonorsChooseSource(path)
    if fmt == "irs-bmf":
        from etl.sources.irs_bmf import IrsBmfSource

        return IrsBmfSource(path)
    raise SourceError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "MissingColumn", "RawBatch", "Reject", "Source", "SourceError", "open_source"]
