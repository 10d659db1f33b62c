"""IRS Exempt Organizations Business Master File extract (`eo1.csv` ... or `eo_xx.csv`).

Nonprofits are keyed by EIN (9 digits). Causes come from the NTEE code: the major group (its
letter, A-Z, named per the NTEE classification) and the full code as a child of it; each
nonprofit works on both. Every other BMF column (ICO, SUBSECTION, ASSET_AMT, ...) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from etl.entities import LOAD_ORDER
from etl.sources.base import BatchBuilder, MissingColumn, RawBatch, SourceError
from etl.sources.known_csv import KnownCsv
from etl.sources.us_states import STATES, region_id, state_code

REQUIRED = ("ein", "name")
OPTIONAL = ("street", "city", "state", "zip", "ntee cd")
# Optional columns -> the canonical entity and column they fill (for `missing()`).
FILLS = {"street": ("nonprofits", "street"), "city": ("nonprofits", "city"),
         "state": ("nonprofits", "region_id"), "zip": ("nonprofits", "zip"),
         "ntee cd": ("nonprofits", "cause_id")}
NTEE = re.compile(r"^([A-Z])([0-9]{2}[A-Z0-9]?)$")
MAJOR_GROUPS = {
    "A": "Arts, Culture & Humanities",
    "B": "Education",
    "C": "Environment",
    "D": "Animal-Related",
    "E": "Health Care",
    "F": "Mental Health & Crisis Intervention",
    "G": "Voluntary Health Associations & Medical Disciplines",
    "H": "Medical Research",
    "I": "Crime & Legal-Related",
    "J": "Employment",
    "K": "Food, Agriculture & Nutrition",
    "L": "Housing & Shelter",
    "M": "Public Safety, Disaster Preparedness & Relief",
    "N": "Recreation & Sports",
    "O": "Youth Development",
    "P": "Human Services",
    "Q": "International, Foreign Affairs & National Security",
    "R": "Civil Rights, Social Action & Advocacy",
    "S": "Community Improvement & Capacity Building",
    "T": "Philanthropy, Voluntarism & Grantmaking Foundations",
    "U": "Science & Technology",
    "V": "Social Science",
    "W": "Public & Societal Benefit",
    "X": "Religion-Related",
    "Y": "Mutual & Membership Benefit",
    "Z": "Unknown",
}


def ntee_causes(code: str | None) -> tuple[str, str] | None:
    """(major group cause id, full code cause id) of a valid NTEE code, else None."""
    match = NTEE.match((code or "").strip().upper())
    if match is None:
        return None
    return f"ntee-{match[1]}", f"ntee-{match[0]}"


def ein_id(raw: str) -> str:
    """EINs keep 9 digits; spreadsheets drop leading zeros and some exports add a dash."""
    digits = raw.strip().replace("-", "")
    return digits.zfill(9) if digits.isdigit() and len(digits) < 9 else digits


class IrsBmfSource:
    format = "irs-bmf"

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        elif path.exists():
            files = [path]
        else:
            raise SourceError(path, "no such file or directory")
        if not files:
            raise SourceError(path, "holds no .csv files of the EO BMF")
        self._files = [KnownCsv(p, REQUIRED, OPTIONAL) for p in files]

    def inputs(self) -> list[Path]:
        return [csv.path for csv in self._files]

    def check(self) -> None:
        for csv in self._files:
            csv.check()

    def missing(self) -> list[MissingColumn]:
        return [MissingColumn(*FILLS[name], str(csv.path), name.upper().replace(" ", "_"))
                for csv in self._files for name in csv.absent()]

    def entities(self) -> tuple[str, ...]:
        provided = {"regions", "causes", "nonprofits", "nonprofit_causes"}
        return tuple(name for name in LOAD_ORDER if name in provided)

    def row_hint(self, entity: str) -> int | None:
        return None

    def batches(self, entity: str, batch_size: int) -> Iterator[RawBatch]:
        seen: set[str] = set()
        for csv in self._files:
            out = BatchBuilder(entity, csv.path, batch_size)
            for line, row in csv.records():
                if isinstance(row, str):
                    # One reject per unreadable record, counted with the nonprofits.
                    if entity == "nonprofits" and (full := out.reject(line, "", row)):
                        yield full
                    continue
                for full in self._rows(entity, out, line, row, seen):
                    yield full
            yield from out.rest()

    @staticmethod
    def _rows(entity: str, out: BatchBuilder, line: int, row: dict[str, str],
              seen: set[str]) -> Iterator[RawBatch]:
        code = state_code(row.get("state"))
        causes = ntee_causes(row.get("ntee cd"))
        results: list[RawBatch | None] = []
        if entity == "regions":
            if code and code not in seen:
                seen.add(code)
                results.append(out.add(line, {"id": region_id(code), "name": STATES[code]}))
        elif entity == "causes":
            if causes:
                major, full = causes
                letter = major[-1]
                if major not in seen:
                    seen.add(major)
                    results.append(out.add(line, {"id": major, "name": MAJOR_GROUPS[letter]}))
                if full not in seen:
                    seen.add(full)
                    results.append(out.add(line, {
                        "id": full, "name": f"{MAJOR_GROUPS[letter]} ({full[5:]})",
                        "parent_id": major,
                    }))
        elif entity == "nonprofits":
            results.append(out.add(line, {
                "id": ein_id(row["ein"]), "ein": row["ein"], "name": row["name"],
                "street": row.get("street"), "city": row.get("city"), "state": row.get("state"),
                "zip": row.get("zip"), "region_id": region_id(code) if code else None,
                "ntee_code": causes[1][5:] if causes else None,
            }))
        elif entity == "nonprofit_causes":
            ntee = (row.get("ntee cd") or "").strip()
            if causes:
                for cause in causes:
                    results.append(out.add(line, {"nonprofit_id": ein_id(row["ein"]),
                                                  "cause_id": cause}))
            elif ntee:
                # The nonprofit itself loads; only its cause link is refused.
                results.append(out.reject(line, "cause_id", f"not an NTEE code: {ntee[:20]!r}"))
        yield from (batch for batch in results if batch is not None)
