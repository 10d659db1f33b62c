"""The anonymized analyst graph: a copy of the source graph that identifies nobody.

- Donors and donations get keyed HMAC-SHA256 pseudonyms (the secret comes from the
  environment and is never written anywhere); pseudonyms use letters only, so no digit run of a
  ZIP or an id can hide in one.
- Names, e-mails, phone numbers, streets and cities of donors are never read; nonprofit streets
  are not copied; ZIP codes keep their first 3 digits; amounts are rounded to buckets
  (`bucket_step`); timestamps to the day. Donor interests are not copied (they would be further
  quasi-identifiers).
- k-anonymity over the donor quasi-identifiers (ZIP3, region, donor type, first donation year):
  each released combination covers at least k donors. Smaller groups are generalized step by
  step (`LEVELS`); donors still in a group under k are suppressed: their node is not released
  and their donations go to one placeholder donor, so aggregates stay whole.
The analyst graph is rebuilt from scratch on each run (same secret, same source: same graph).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from etl.entities import ENTITIES
from etl.writer import complete, write_batch
from graph_store import GraphStore, statement

ANALYST_LOAD_ID = "anonymized"
SUPPRESSED_DONOR = "donor_suppressed"
MIN_SECRET_BYTES = 16
PAGE = 2_000
# Generalization levels: which quasi-identifiers each level still releases.
LEVELS = (
    ("zip3", "region", "type", "year"),
    ("region", "type", "year"),
    ("region", "type", "year5"),
    ("region", "type"),
    ("region",),
    (),
)
QUASI_IDENTIFIERS = ("zip3", "region_id", "donor_type", "first_year")


class AnonymizeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    secret: SecretStr = Field(SecretStr(""), validation_alias="DONOR_MATCH_ANON_SECRET")
    k: int = Field(5, ge=1, validation_alias="DONOR_MATCH_ANON_K")


class AnonymizeError(ValueError):
    pass


@dataclass
class AnonymizeReport:
    k: int
    donors: int = 0
    released_by_level: dict[int, int] = field(default_factory=dict)
    generalized: int = 0  # released at level 1 or above
    suppressed: int = 0
    groups: int = 0
    smallest_group: int = 0
    donations: int = 0
    copied: dict[str, int] = field(default_factory=dict)
    # Largest |source - analyst| of per-cause and per-region amounts, and the rounding bound.
    aggregate_difference: float = 0.0
    aggregate_bound: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "quasi_identifiers": list(QUASI_IDENTIFIERS),
                "levels": [list(level) for level in LEVELS]}


def bucket_step(amount: float) -> float:
    """Rounding step of an amount: coarser for larger gifts (relative error at most ~25%)."""
    for limit, step in ((10, 1.0), (100, 5.0), (1_000, 25.0), (10_000, 100.0)):
        if amount < limit:
            return step
    return 1_000.0


def round_amount(amount: float) -> float:
    step = bucket_step(amount)
    return float(round(amount / step) * step)


def to_day(ts: int) -> int:
    return ts - ts % 86_400


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """`<kind>_` and 24 letters from HMAC-SHA256(secret, kind:value)."""
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    letters = []
    for _ in range(24):  # 26^24 > 2^112: collisions are out of reach
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    return f"{kind}_{''.join(letters)}"


def zip3(value: Any) -> str | None:
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    return digits[:3] if len(digits) >= 3 else None


@dataclass
class _Donor:
    pseudonym: str
    zip3: str | None
    region_id: str | None
    donor_type: str | None
    year: int | None
    level: int = 0

    def released(self, level: int | None = None) -> tuple[Any, ...]:
        keep = LEVELS[self.level if level is None else level]
        year: str | None = None
        if self.year is not None and "year" in keep:
            year = str(self.year)
        elif self.year is not None and "year5" in keep:
            start = self.year - self.year % 5
            year = f"{start}-{start + 4}"
        return (
            self.zip3 if "zip3" in keep else None,
            self.region_id if "region" in keep else None,
            self.donor_type if "type" in keep else None,
            year,
        )


def k_anonymize(donors: list[_Donor], k: int) -> set[int]:
    """Raise levels until every released combination covers >= k donors; return the indexes
    of donors that stay in smaller groups at the last level (to be suppressed)."""
    top = len(LEVELS) - 1
    while True:
        counts = Counter(d.released() for d in donors)
        small = [d for d in donors if counts[d.released()] < k and d.level < top]
        if not small:
            return {i for i, d in enumerate(donors) if counts[d.released()] < k}
        for donor in small:
            donor.level += 1


def anonymize(source: GraphStore, analyst: GraphStore, secret: str, k: int = 5,
              progress: Callable[[str, int], None] | None = None) -> AnonymizeReport:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise AnonymizeError(f"DONOR_MATCH_ANON_SECRET must hold at least {MIN_SECRET_BYTES} "
                             "bytes (it keys the pseudonyms; keep it out of the repo)")
    if k < 1:
        raise AnonymizeError("k must be at least 1")
    started = time.monotonic()
    report = AnonymizeReport(k=k)
    _clear(analyst)
    analyst.apply_schema()

    copied: dict[str, list[dict[str, Any]]] = {}
    for entity in ("regions", "causes", "nonprofits", "initiatives", "nonprofit_causes",
                   "initiative_causes"):
        rows = [_public(entity, row) for row in _pages(source, f"anonymize/source_{entity}")]
        _write(analyst, entity, rows, progress)
        report.copied[entity] = len(rows)
        copied[entity] = rows

    donors, ids = _read_donors(source, key)
    suppressed = k_anonymize(donors, k)
    report.donors = len(donors)
    report.suppressed = len(suppressed)
    released = [d for i, d in enumerate(donors) if i not in suppressed]
    report.released_by_level = dict(sorted(Counter(d.level for d in released).items()))
    report.generalized = sum(1 for d in released if d.level > 0)
    groups = Counter(d.released() for d in released)
    report.groups = len(groups)
    report.smallest_group = min(groups.values(), default=0)
    rows = [_donor_row(d) for d in released]
    if suppressed:
        rows.append(_donor_row(_Donor(SUPPRESSED_DONOR, None, None, None, None, len(LEVELS))))
    _write(analyst, "donors", rows, progress)
    for start in range(0, len(rows), PAGE):
        analyst.write(statement("anonymize/donor_generalization"), {"rows": [
            {"id": r["id"], "first_year": r["first_year"], "level": r["level"]}
            for r in rows[start:start + PAGE]
        ]})

    hidden = {ids[i] for i in suppressed}
    # Per nonprofit: how far rounding may move its total.
    slack: defaultdict[str, float] = defaultdict(float)
    for start in range(0, len(ids), PAGE):
        page = ids[start:start + PAGE]
        gifts = source.read(statement("anonymize/source_donations"), {"donor_ids": page})
        out = [_donation_row(key, gift, gift["donor_id"] in hidden) for gift in gifts]
        for gift in gifts:
            slack[gift["nonprofit_id"]] += bucket_step(float(gift["amount"])) / 2
        _write(analyst, "donations", out, progress)
        report.donations += len(out)

    report.aggregate_difference, report.aggregate_bound = _compare_aggregates(
        source, analyst, slack, copied)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _clear(store: GraphStore) -> None:
    while store.write(statement("anonymize/clear"), {"limit": 10_000})[0]["deleted"]:
        pass


def _pages(store: GraphStore, name: str) -> Iterator[dict[str, Any]]:
    export = statement(name)
    skip = 0
    while True:
        page = store.read(export, {"skip": skip, "limit": PAGE})
        yield from page
        skip += len(page)
        if len(page) < PAGE:
            return


def _public(entity: str, row: dict[str, Any]) -> dict[str, Any]:
    """Organizations are public; still, no street, and ZIP codes to 3 digits."""
    if entity == "nonprofits":
        return {**row, "street": None, "zip": zip3(row.get("zip"))}
    return row


def _write(store: GraphStore, entity: str, rows: list[dict[str, Any]],
           progress: Callable[[str, int], None] | None) -> None:
    for start in range(0, len(rows), PAGE):
        batch = complete(entity, rows[start:start + PAGE])
        write_batch(store, entity, batch, ANALYST_LOAD_ID)
        if progress:
            progress(entity, len(batch))


def _read_donors(source: GraphStore, key: bytes) -> tuple[list[_Donor], list[str]]:
    donors: list[_Donor] = []
    ids: list[str] = []
    after = ""
    while True:
        page = source.read(statement("anonymize/source_donors"), {"after": after,
                                                                   "limit": PAGE})
        for row in page:
            ts = row.get("first_ts")
            year = None if ts is None else datetime.fromtimestamp(int(ts), UTC).year
            donors.append(_Donor(pseudonym(key, "donor", str(row["id"])), zip3(row.get("zip")),
                                 row.get("region_id"), row.get("donor_type"), year))
            ids.append(str(row["id"]))
        if len(page) < PAGE:
            return donors, ids
        after = ids[-1]


def _donor_row(donor: _Donor) -> dict[str, Any]:
    zip_, region, donor_type, year = (donor.released() if donor.level < len(LEVELS)
                                      else (None,) * 4)
    row = dict.fromkeys(ENTITIES["donors"].column_names)
    row.update(id=donor.pseudonym, zip=zip_, region_id=region, donor_type=donor_type,
               first_year=year, level=donor.level)
    return row


def _donation_row(key: bytes, gift: dict[str, Any], suppressed: bool) -> dict[str, Any]:
    donor = SUPPRESSED_DONOR if suppressed else pseudonym(key, "donor", str(gift["donor_id"]))
    return {
        "id": pseudonym(key, "gift", str(gift["id"])),
        "donor_id": donor,
        "nonprofit_id": gift["nonprofit_id"],
        "initiative_id": gift.get("initiative_id"),
        "amount": round_amount(float(gift["amount"])),
        "ts": to_day(int(gift["ts"])),
        "recurring": gift.get("recurring"),
    }


def aggregates(store: GraphStore) -> dict[str, dict[str, tuple[int, float]]]:
    """(donations, amount) per cause and per region of the receiving nonprofit."""
    return {
        kind: {str(r["key"]): (int(r["donations"]), float(r["amount"] or 0.0))
               for r in store.read(statement(f"anonymize/donations_by_{kind}"))}
        for kind in ("cause", "region")
    }


def _compare_aggregates(
    source: GraphStore, analyst: GraphStore, slack: Mapping[str, float],
    copied: dict[str, list[dict[str, Any]]],
) -> tuple[float, float]:
    """Check that donations per cause and per region agree: counts exactly, amounts within the
    rounding (half a bucket step per donation). Returns the largest difference and its bound."""
    members: dict[str, dict[str, list[str]]] = {"cause": {}, "region": {}}
    for row in copied["nonprofit_causes"]:
        members["cause"].setdefault(row["cause_id"], []).append(row["nonprofit_id"])
    for row in copied["nonprofits"]:
        if row.get("region_id"):
            members["region"].setdefault(row["region_id"], []).append(row["id"])
    src, out = aggregates(source), aggregates(analyst)
    worst = bound_of_worst = 0.0
    for kind, groups in src.items():
        for name, (count, amount) in groups.items():
            got_count, got_amount = out[kind].get(name, (0, 0.0))
            bound = sum(slack.get(n, 0.0) for n in members[kind].get(name, ())) + 1e-6
            difference = abs(got_amount - amount)
            if got_count != count or difference > bound:
                raise AnonymizeError(
                    f"{kind} {name}: analyst graph has {got_count} donations / {got_amount:.2f}, "
                    f"source {count} / {amount:.2f} (allowed difference {bound:.2f})"
                )
            if difference >= worst:
                worst, bound_of_worst = difference, bound
    return round(worst, 2), round(bound_of_worst, 2)
