"""DonorsChoose's older open data export: `opendata_projects.csv` and `opendata_donations.csv`.

Before the Kaggle release (four files, `etl.sources.donorschoose`), DonorsChoose published
projects with their school's details on each row and donations with their donor's details on
each row (`_projectid`, `_schoolid`, `_donor_acctid`, `donation_total`, `donation_timestamp`,
...; `opendata_essays.csv` and `opendata_resources.csv` may sit beside them and are not read).
Schools and donors are therefore taken from their first row; their repeats are not rows of
their own. The export has no school names: a school is named `School <NCES id>` (or its id),
and `missing()` says so. Focus areas become categories and focus subjects their subcategories,
with the Kaggle adapter's cause ids, so both exports describe causes alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from etl.entities import LOAD_ORDER
from etl.sources.base import BatchBuilder, MissingColumn, RawBatch, SourceError
from etl.sources.donorschoose import category_id, donation_batches, subcategory_id
from etl.sources.known_csv import KnownCsv
from etl.sources.us_states import STATES, region_id, state_code

PROJECTS = "opendata_projects.csv"
DONATIONS = "opendata_donations.csv"
FILES = {
    "projects": (PROJECTS, ("projectid", "schoolid"),
                 ("school ncesid", "school city", "school state", "school zip",
                  "primary focus area", "primary focus subject", "secondary focus area",
                  "secondary focus subject", "date posted")),
    "donations": (DONATIONS, ("donationid", "projectid", "donor acctid"),
                  ("donor city", "donor state", "donor zip", "is teacher acct",
                   "donation total", "donation timestamp")),
}
FILLS = {
    "school ncesid": ("nonprofits", "name"),
    "school city": ("nonprofits", "city"),
    "school state": ("nonprofits", "region_id"),
    "school zip": ("nonprofits", "zip"),
    "primary focus area": ("nonprofits", "cause_id"),
    "primary focus subject": ("initiatives", "cause_id"),
    "secondary focus area": ("nonprofits", "cause_id"),
    "secondary focus subject": ("initiatives", "cause_id"),
    "date posted": ("initiatives", "posted_ts"),
    "donor city": ("donors", "city"),
    "donor state": ("donors", "region_id"),
    "donor zip": ("donors", "zip"),
    "is teacher acct": ("donors", "donor_type"),
    "donation total": ("donations", "amount"),
    "donation timestamp": ("donations", "ts"),
}
_FOCUS = (("primary focus area", "primary focus subject"),
          ("secondary focus area", "secondary focus subject"))


def is_opendata(path: Path) -> bool:
    """Whether `path` is a directory holding the older export (and not the Kaggle one)."""
    names = {p.name.lower() for p in path.iterdir()} if path.is_dir() else set()
    return PROJECTS in names and "projects.csv" not in names


class DonorsChooseOpenDataSource:
    format = "donorschoose"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, KnownCsv] = {}
        for key, (name, required, optional) in FILES.items():
            found = [p for p in path.iterdir() if p.name.lower() == name]
            if not found:
                raise SourceError(path / name, f"missing: the older DonorsChoose export needs "
                                               f"{PROJECTS} and {DONATIONS}")
            self._files[key] = KnownCsv(found[0], required, optional)
        self._project_school: dict[str, str] | None = None

    def inputs(self) -> list[Path]:
        return [csv.path for csv in self._files.values()]

    def check(self) -> None:
        for csv in self._files.values():
            csv.check()

    def missing(self) -> list[MissingColumn]:
        found = [MissingColumn(*FILLS[name], str(csv.path), name)
                 for csv in self._files.values() for name in csv.absent()]
        # Not a column the export lacks now and then: it never had school names.
        found.append(MissingColumn("nonprofits", "name", str(self._files["projects"].path),
                                   "school name"))
        return found

    def entities(self) -> tuple[str, ...]:
        provided = {"regions", "causes", "donors", "nonprofits", "initiatives",
                    "nonprofit_causes", "initiative_causes", "donations"}
        return tuple(name for name in LOAD_ORDER if name in provided)

    def row_hint(self, entity: str) -> int | None:
        return None

    def batches(self, entity: str, batch_size: int) -> Iterator[RawBatch]:
        yield from getattr(self, f"_{entity}")(batch_size)

    def _firsts(self, key: str, id_column: str) -> Iterator[tuple[int, dict[str, str]]]:
        """Each readable record whose `id_column` value was not seen before (unreadable ones
        are reported with the entity the file's rows are: initiatives or donations)."""
        seen: set[str] = set()
        for line, row in self._files[key].records():
            if isinstance(row, str):
                continue
            value = (row.get(id_column) or "").strip()
            if value not in seen:
                seen.add(value)
                yield line, row

    def _regions(self, size: int) -> Iterator[RawBatch]:
        seen: set[str] = set()
        for key, column in (("projects", "school state"), ("donations", "donor state")):
            csv = self._files[key]
            out = BatchBuilder("regions", csv.path, size)
            for line, row in csv.records():
                code = None if isinstance(row, str) else state_code(row.get(column))
                if code and code not in seen:
                    seen.add(code)
                    if full := out.add(line, {"id": region_id(code), "name": STATES[code]}):
                        yield full
            yield from out.rest()

    def _causes(self, size: int) -> Iterator[RawBatch]:
        csv = self._files["projects"]
        out = BatchBuilder("causes", csv.path, size)
        seen: set[str] = set()
        for line, row in csv.records():
            if isinstance(row, str):
                continue
            for area_column, subject_column in _FOCUS:
                area, subject = (row.get(area_column) or "").strip(), (
                    row.get(subject_column) or "").strip()
                causes: list[dict[str, str | None]] = []
                if area and category_id(area) not in seen:
                    causes.append({"id": category_id(area), "name": area})
                if subject and subcategory_id(subject) not in seen:
                    causes.append({"id": subcategory_id(subject), "name": subject,
                                   "parent_id": category_id(area) if area else None})
                for cause in causes:
                    seen.add(str(cause["id"]))
                    if full := out.add(line, cause):
                        yield full
        yield from out.rest()

    def _donors(self, size: int) -> Iterator[RawBatch]:
        out = BatchBuilder("donors", self._files["donations"].path, size)
        for line, row in self._firsts("donations", "donor acctid"):
            code = state_code(row.get("donor state"))
            teacher = (row.get("is teacher acct") or "").strip().lower() in {"t", "true", "yes"}
            full = out.add(line, {
                "id": row["donor acctid"], "city": row.get("donor city"),
                "state": row.get("donor state"), "zip": row.get("donor zip"),
                "region_id": region_id(code) if code else None,
                "donor_type": "teacher" if teacher else "individual",
            })
            if full:
                yield full
        yield from out.rest()

    def _nonprofits(self, size: int) -> Iterator[RawBatch]:
        out = BatchBuilder("nonprofits", self._files["projects"].path, size)
        for line, row in self._firsts("projects", "schoolid"):
            code = state_code(row.get("school state"))
            nces = (row.get("school ncesid") or "").strip()
            full = out.add(line, {
                "id": row["schoolid"], "name": f"School {nces or row['schoolid'].strip()}",
                "city": row.get("school city"), "state": row.get("school state"),
                "zip": row.get("school zip"), "region_id": region_id(code) if code else None,
            })
            if full:
                yield full
        yield from out.rest()

    def _initiatives(self, size: int) -> Iterator[RawBatch]:
        csv = self._files["projects"]
        out = BatchBuilder("initiatives", csv.path, size)
        for line, row in csv.records():
            if isinstance(row, str):
                full = out.reject(line, "", row)
            else:
                full = out.add(line, {"id": row["projectid"], "nonprofit_id": row["schoolid"],
                                      "posted_ts": row.get("date posted")})
            if full:
                yield full
        yield from out.rest()

    def _links(self, entity: str, size: int) -> Iterator[RawBatch]:
        csv = self._files["projects"]
        out = BatchBuilder(entity, csv.path, size)
        seen: set[tuple[str, str]] = set()
        for line, row in csv.records():
            if isinstance(row, str):
                continue
            owner = row["schoolid"] if entity == "nonprofit_causes" else row["projectid"]
            causes = []
            for area_column, subject_column in _FOCUS:
                area, subject = (row.get(area_column) or "").strip(), (
                    row.get(subject_column) or "").strip()
                if area:
                    causes.append(category_id(area))
                if subject and entity == "initiative_causes":
                    causes.append(subcategory_id(subject))
            key = "nonprofit_id" if entity == "nonprofit_causes" else "initiative_id"
            for cause in dict.fromkeys(causes):
                if (owner, cause) in seen:
                    continue
                seen.add((owner, cause))
                if full := out.add(line, {key: owner, "cause_id": cause}):
                    yield full
        yield from out.rest()

    def _nonprofit_causes(self, size: int) -> Iterator[RawBatch]:
        return self._links("nonprofit_causes", size)

    def _initiative_causes(self, size: int) -> Iterator[RawBatch]:
        return self._links("initiative_causes", size)

    def _donations(self, size: int) -> Iterator[RawBatch]:
        if self._project_school is None:
            self._project_school = {
                row["projectid"].strip(): row["schoolid"].strip()
                for _, row in self._files["projects"].records() if not isinstance(row, str)
            }
        yield from donation_batches(
            self._files["donations"], size, self._project_school, PROJECTS,
            id="donationid", donor="donor acctid", project="projectid",
            amount="donation total", ts="donation timestamp",
        )
