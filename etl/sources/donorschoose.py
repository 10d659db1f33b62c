"""DonorsChoose open data (the Kaggle export): Donations, Donors, Projects and Schools CSVs.

Column names may be spelled with spaces (`Donor ID`, as published) or dots (`Donor.ID`, as R
writes them). Schools become nonprofits, projects become initiatives of their school, the
project subject categories and subcategories (comma-separated lists) become causes (the school
works on its projects' categories), and each donation goes from its donor to the project's
school, keeping the project as its initiative. `Teachers.csv` and `Resources.csv` may sit beside
them and are not read (teachers and requested items are not part of the graph).

Exports differ in their columns (older ones lack some): only the ids, and the school name, are
required. Without a donation date column donations are dated by their project's posted date (or
the load time, see `etl.validate`); without an amount column every donation is rejected; without
a state column donors or schools load without a region. `missing()` lists what is absent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from etl.entities import LOAD_ORDER
from etl.sources.base import BatchBuilder, MissingColumn, RawBatch, SourceError
from etl.sources.known_csv import KnownCsv
from etl.sources.us_states import STATES, region_id, state_code

FILES = {
    "donations": ("Donations.csv", ("donation id", "donor id", "project id"),
                  ("donation amount", "donation received date")),
    "donors": ("Donors.csv", ("donor id",),
               ("donor city", "donor state", "donor is teacher", "donor zip")),
    "projects": ("Projects.csv", ("project id", "school id"),
                 ("project title", "project subject category tree",
                  "project subject subcategory tree", "project posted date")),
    "schools": ("Schools.csv", ("school id", "school name"),
                ("school state", "school zip", "school city")),
}
# Optional columns -> the canonical entity and column they fill (for `missing()`).
FILLS = {
    "donation amount": ("donations", "amount"),
    "donation received date": ("donations", "ts"),
    "donor state": ("donors", "region_id"),
    "donor city": ("donors", "city"),
    "donor zip": ("donors", "zip"),
    "donor is teacher": ("donors", "donor_type"),
    "school state": ("nonprofits", "region_id"),
    "school city": ("nonprofits", "city"),
    "school zip": ("nonprofits", "zip"),
    "project title": ("initiatives", "name"),
    "project posted date": ("initiatives", "posted_ts"),
    "project subject category tree": ("initiatives", "cause_id"),
    "project subject subcategory tree": ("initiatives", "cause_id"),
}
CATEGORY = "project subject category tree"
SUBCATEGORY = "project subject subcategory tree"
# The one category name that contains the list separator.
_COMMA_NAMES = {("Warmth", "Care & Hunger"): "Warmth, Care & Hunger"}


def split_tree(text: str | None) -> list[str]:
    """`Literacy & Language, Warmth, Care & Hunger` -> the two category names."""
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    names: list[str] = []
    i = 0
    while i < len(parts):
        pair = tuple(parts[i:i + 2])
        if pair in _COMMA_NAMES:
            names.append(_COMMA_NAMES[pair])  # type: ignore[index]
            i += 2
        else:
            names.append(parts[i])
            i += 1
    return list(dict.fromkeys(names))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unnamed"


def category_id(name: str) -> str:
    return f"dc-cat-{_slug(name)}"


def subcategory_id(name: str) -> str:
    return f"dc-sub-{_slug(name)}"


class DonorsChooseSource:
    format = "donorschoose"

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise SourceError(path, "DonorsChoose data is a directory holding "
                              + ", ".join(name for name, _, _ in FILES.values()))
        self.path = path
        self._files: dict[str, KnownCsv] = {}
        for key, (name, required, optional) in FILES.items():
            found = [p for p in path.iterdir() if p.name.lower() == name.lower()]
            if not found:
                raise SourceError(path / name, "missing: the DonorsChoose export needs "
                                  + ", ".join(n for n, _, _ in FILES.values()))
            self._files[key] = KnownCsv(found[0], required, optional)
        self._project_school: dict[str, str] | None = None

    def inputs(self) -> list[Path]:
        return [csv.path for csv in self._files.values()]

    def check(self) -> None:
        for csv in self._files.values():
            csv.check()

    def missing(self) -> list[MissingColumn]:
        return [MissingColumn(*FILLS[name], str(csv.path), name)
                for csv in self._files.values() for name in csv.absent()]

    def entities(self) -> tuple[str, ...]:
        provided = {"regions", "causes", "donors", "nonprofits", "initiatives",
                    "nonprofit_causes", "initiative_causes", "donations"}
        return tuple(name for name in LOAD_ORDER if name in provided)

    def row_hint(self, entity: str) -> int | None:
        return None

    def batches(self, entity: str, batch_size: int) -> Iterator[RawBatch]:
        yield from getattr(self, f"_{entity}")(batch_size)

    def _regions(self, size: int) -> Iterator[RawBatch]:
        seen: set[str] = set()
        for key, column in (("schools", "school state"), ("donors", "donor state")):
            csv = self._files[key]
            out = BatchBuilder("regions", csv.path, size)
            for line, row in csv.records():
                if isinstance(row, str):
                    continue  # reported with the file's own entity
                code = state_code(row.get(column))
                if code and code not in seen:
                    seen.add(code)
                    if full := out.add(line, {"id": region_id(code), "name": STATES[code]}):
                        yield full
            yield from out.rest()

    def _causes(self, size: int) -> Iterator[RawBatch]:
        csv = self._files["projects"]
        categories: dict[str, int] = {}  # name -> first line
        subcategories: dict[str, tuple[int, str | None]] = {}  # name -> (line, category)
        for line, row in csv.records():
            if isinstance(row, str):
                continue
            cats = split_tree(row.get(CATEGORY))
            for name in cats:
                categories.setdefault(name, line)
            for name in split_tree(row.get(SUBCATEGORY)):
                known = subcategories.get(name)
                # A subcategory's category is certain only on single-category projects.
                parent = cats[0] if len(cats) == 1 else None
                if known is None or (known[1] is None and parent is not None):
                    subcategories[name] = (known[0] if known else line, parent)
        out = BatchBuilder("causes", csv.path, size)
        for name, line in categories.items():
            if full := out.add(line, {"id": category_id(name), "name": name}):
                yield full
        for name, (line, parent) in subcategories.items():
            cause = {"id": subcategory_id(name), "name": name,
                     "parent_id": category_id(parent) if parent else None}
            if full := out.add(line, cause):
                yield full
        yield from out.rest()

    def _donors(self, size: int) -> Iterator[RawBatch]:
        csv = self._files["donors"]
        out = BatchBuilder("donors", csv.path, size)
        for line, row in csv.records():
            if isinstance(row, str):
                full = out.reject(line, "", row)
            else:
                code = state_code(row.get("donor state"))
                teacher = (row.get("donor is teacher") or "").strip().lower() == "yes"
                full = out.add(line, {
                    "id": row["donor id"], "city": row.get("donor city"),
                    "state": row.get("donor state"), "zip": row.get("donor zip"),
                    "region_id": region_id(code) if code else None,
                    "donor_type": "teacher" if teacher else "individual",
                })
            if full:
                yield full
        yield from out.rest()

    def _nonprofits(self, size: int) -> Iterator[RawBatch]:
        csv = self._files["schools"]
        out = BatchBuilder("nonprofits", csv.path, size)
        for line, row in csv.records():
            if isinstance(row, str):
                full = out.reject(line, "", row)
            else:
                code = state_code(row.get("school state"))
                full = out.add(line, {
                    "id": row["school id"], "name": row["school name"],
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
                full = out.add(line, {
                    "id": row["project id"], "name": row.get("project title"),
                    "nonprofit_id": row["school id"],
                    "posted_ts": row.get("project posted date"),
                })
            if full:
                yield full
        yield from out.rest()

    def _links(self, entity: str, size: int) -> Iterator[RawBatch]:
        csv = self._files["projects"]
        out = BatchBuilder(entity, csv.path, size)
        seen: set[tuple[str, str]] = set()
        for line, row in csv.records():
            if isinstance(row, str):
                continue  # reported once, with the initiatives
            if entity == "nonprofit_causes":
                owner = {"nonprofit_id": row["school id"]}
                causes = [category_id(name) for name in split_tree(row.get(CATEGORY))]
            else:
                owner = {"initiative_id": row["project id"]}
                causes = [category_id(name) for name in split_tree(row.get(CATEGORY))]
                causes += [subcategory_id(name) for name in split_tree(row.get(SUBCATEGORY))]
            for cause in causes:
                if entity == "nonprofit_causes":
                    # A school has many projects: link each category once. (Schools times
                    # categories stays small; projects appear once, so need no such set.)
                    key = (owner["nonprofit_id"], cause)
                    if key in seen:
                        continue
                    seen.add(key)
                if full := out.add(line, {**owner, "cause_id": cause}):
                    yield full
        yield from out.rest()

    def _nonprofit_causes(self, size: int) -> Iterator[RawBatch]:
        return self._links("nonprofit_causes", size)

    def _initiative_causes(self, size: int) -> Iterator[RawBatch]:
        return self._links("initiative_causes", size)

    def _schools_of_projects(self) -> dict[str, str]:
        if self._project_school is None:
            self._project_school = {
                row["project id"].strip(): row["school id"].strip()
                for _, row in self._files["projects"].records() if not isinstance(row, str)
            }
        return self._project_school

    def _donations(self, size: int) -> Iterator[RawBatch]:
        yield from donation_batches(
            self._files["donations"], size, self._schools_of_projects(), "Projects.csv",
            id="donation id", donor="donor id", project="project id",
            amount="donation amount", ts="donation received date",
        )


def donation_batches(
    csv: KnownCsv, size: int, schools: dict[str, str], projects_file: str, *,
    id: str, donor: str, project: str, amount: str, ts: str,
) -> Iterator[RawBatch]:
    """A DonorsChoose export's donations: each to its project's school, rejected when the project
    is not in `projects_file`. The keyword arguments name the export's own columns.

    Args:
        csv: the donations file; size: rows a batch.
        schools: each project's school (the nonprofit a gift goes to).
    Returns:
        Batches of canonical donations (an absent amount or date column stays absent: validation
        dates or rejects those rows).
    """
    out = BatchBuilder("donations", csv.path, size)
    for line, row in csv.records():
        if isinstance(row, str):
            full = out.reject(line, "", row)
        else:
            project_id = (row[project] or "").strip()
            school = schools.get(project_id)
            if project_id and school is None:
                full = out.reject(line, "initiative_id",
                                  f"project {project_id[:40]!r} is not in {projects_file}")
            else:
                gift = {"id": row[id], "donor_id": row[donor], "nonprofit_id": school,
                        "initiative_id": project_id or None}
                if amount in row:
                    gift["amount"] = row[amount]
                if ts in row:
                    gift["ts"] = row[ts]
                full = out.add(line, gift)
        if full:
            yield full
    yield from out.rest()
