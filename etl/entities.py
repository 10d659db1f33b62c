"""The canonical entities every source adapter maps onto, with their columns and checks.

`etl.tables.TABLE_SCHEMAS` is what a training snapshot holds; an entity here is what a load may
carry: the same tables plus initiatives, initiative causes and optional columns (contact and
address details, types, EIN, NTEE code). Every check that `etl.validate` runs is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    ID = "id"  # non-empty text without control characters, at most MAX_ID_LEN
    TEXT = "text"  # free text (names, streets), at most MAX_TEXT_LEN
    AMOUNT = "amount"  # finite number >= 0; strings may carry `$` and thousands separators
    TIMESTAMP = "timestamp"  # epoch seconds or an ISO-8601 date/time; stored as epoch seconds
    LATITUDE = "latitude"
    LONGITUDE = "longitude"
    BOOL = "bool"
    ENUM = "enum"  # one of Column.choices, case-insensitive, stored lower case
    EMAIL = "email"
    PHONE = "phone"
    ZIP = "zip"  # US ZIP: 3 digits (a prefix, as DonorsChoose publishes), 5, or ZIP+4
    EIN = "ein"  # US employer identification number, stored as 9 digits
    NTEE = "ntee"  # NTEE code: a major-group letter, two digits, optional suffix


DONOR_TYPES = ("individual", "teacher", "organization", "foundation", "corporation")


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    # The entity whose id this column names: checked against the same load and the store.
    references: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    label: str | None = None  # graph label of a node entity (keyed by its `id` column)

    @property
    def is_node(self) -> bool:
        return self.label is not None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def _id(name: str = "id", references: str | None = None, required: bool = True) -> Column:
    return Column(name, Kind.ID, required=required, references=references)


_ADDRESS = (
    Column("street", Kind.TEXT),
    Column("city", Kind.TEXT),
    Column("state", Kind.TEXT),
    Column("zip", Kind.ZIP),
)

ENTITIES: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        Entity(
            "regions",
            (_id(), Column("name", Kind.TEXT, required=True), Column("lat", Kind.LATITUDE),
             Column("lon", Kind.LONGITUDE)),
            label="Region",
        ),
        Entity(
            "causes",
            (_id(), Column("name", Kind.TEXT, required=True),
             _id("parent_id", references="causes", required=False)),
            label="Cause",
        ),
        Entity(
            "donors",
            (
                _id(),
                Column("name", Kind.TEXT),
                Column("email", Kind.EMAIL),
                Column("phone", Kind.PHONE),
                *_ADDRESS,
                _id("region_id", references="regions", required=False),
                Column("donor_type", Kind.ENUM, choices=DONOR_TYPES),
            ),
            label="Donor",
        ),
        Entity(
            "nonprofits",
            (
                _id(),
                Column("name", Kind.TEXT, required=True),
                Column("ein", Kind.EIN),
                *_ADDRESS,
                _id("region_id", references="regions", required=False),
                Column("ntee_code", Kind.NTEE),
            ),
            label="Nonprofit",
        ),
        Entity(
            "initiatives",
            (_id(), Column("name", Kind.TEXT), _id("nonprofit_id", references="nonprofits"),
             Column("posted_ts", Kind.TIMESTAMP)),
            label="Initiative",
        ),
        Entity("donor_causes", (_id("donor_id", "donors"), _id("cause_id", "causes"))),
        Entity("nonprofit_causes", (_id("nonprofit_id", "nonprofits"), _id("cause_id", "causes"))),
        Entity(
            "initiative_causes", (_id("initiative_id", "initiatives"), _id("cause_id", "causes"))
        ),
        Entity(
            "donations",
            (
                _id(),
                _id("donor_id", references="donors"),
                _id("nonprofit_id", references="nonprofits"),
                _id("initiative_id", references="initiatives", required=False),
                Column("amount", Kind.AMOUNT, required=True),
                Column("ts", Kind.TIMESTAMP, required=True),
                Column("recurring", Kind.BOOL),
                # True when the file had no donation date and the load supplied one (the
                # initiative's posted date or the load time): see etl.validate.
                Column("ts_approximate", Kind.BOOL),
            ),
        ),
    )
}

# Referenced entities before the rows that reference them.
LOAD_ORDER: tuple[str, ...] = tuple(ENTITIES)
NODE_ENTITIES: tuple[str, ...] = tuple(name for name in LOAD_ORDER if ENTITIES[name].is_node)
# Entities with ids that no column references (donations): their accepted ids serve only to
# find duplicates, which `etl.repeats` does without remembering them all.
UNREFERENCED: tuple[str, ...] = tuple(
    name for name in LOAD_ORDER
    if "id" in ENTITIES[name].column_names
    and not any(c.references == name for spec in ENTITIES.values() for c in spec.columns)
)
