"""Column-mapping files (YAML under config/mappings/): a platform's columns onto canonical ones.

```yaml
csv: {delimiter: ";", encoding: utf-8}     # optional, for CSV inputs
entities:
  donors:
    files: [supporters*.csv]               # optional; default <entity>.csv|.jsonl|.parquet
    columns: {id: Supporter ID, name: Full Name, email: E-mail}   # canonical: source
    ignore: [Internal notes]               # source columns deliberately not loaded
    values: {donor_type: {P: individual, O: organization}}       # optional value maps
    defaults: {donor_type: individual}     # optional constants for absent columns
```
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etl.entities import ENTITIES
from etl.sources.base import SourceError

_TOP_KEYS = {"csv", "entities"}
# Required values whose column a file may lack: the load dates the rows (ts) or rejects each
# one (amount) instead of refusing the file, and says so (`etl.sources.base.MissingColumn`).
MAY_LACK = {"donations": ("ts", "amount")}
# Optional columns worth a note in the summary when a file lacks them.
NOTED = {"donations": ("ts", "amount"), "donors": ("region_id",), "nonprofits": ("region_id",)}
_ENTITY_KEYS = {"files", "columns", "ignore", "values", "defaults"}


@dataclass(frozen=True)
class EntityMapping:
    entity: str
    files: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source column
    ignore: frozenset[str] = frozenset()
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def matches(self, file_name: str) -> bool:
        return any(fnmatch.fnmatch(file_name, pattern) for pattern in self.files)


@dataclass(frozen=True)
class Mapping:
    path: Path | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    entities: dict[str, EntityMapping] = field(default_factory=dict)


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; every mistake names the file and the key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourceError(path, f"cannot read mapping: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(path, f"invalid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SourceError(path, "a mapping file is a YAML mapping with an `entities` key")
    _no_unknown(path, "top level", document, _TOP_KEYS)
    csv_options = document.get("csv") or {}
    if not isinstance(csv_options, dict):
        raise SourceError(path, "`csv` must be a mapping")
    _no_unknown(path, "csv", csv_options, {"delimiter", "encoding"})
    delimiter = str(csv_options.get("delimiter", ","))
    if len(delimiter) != 1:
        raise SourceError(path, f"csv.delimiter must be one character, not {delimiter!r}")
    entities = document.get("entities") or {}
    if not isinstance(entities, dict) or not entities:
        raise SourceError(path, "`entities` must map entity names to their columns")
    return Mapping(
        path=path,
        delimiter=delimiter,
        encoding=str(csv_options.get("encoding", "utf-8")),
        entities={name: _entity(path, name, spec) for name, spec in entities.items()},
    )


def _entity(path: Path, name: str, spec: Any) -> EntityMapping:
    if name not in ENTITIES:
        raise SourceError(path, f"unknown entity {name!r}; expected one of {sorted(ENTITIES)}")
    if not isinstance(spec, dict):
        raise SourceError(path, f"entities.{name} must be a mapping")
    _no_unknown(path, f"entities.{name}", spec, _ENTITY_KEYS)
    known = set(ENTITIES[name].column_names)
    columns = {str(k): str(v) for k, v in (spec.get("columns") or {}).items()}
    values = {str(k): {str(a): str(b) for a, b in (v or {}).items()}
              for k, v in (spec.get("values") or {}).items()}
    defaults = dict(spec.get("defaults") or {})
    for section, keys in (("columns", columns), ("values", values), ("defaults", defaults)):
        unknown = sorted(set(keys) - known)
        if unknown:
            raise SourceError(
                path, f"entities.{name}.{section}: unknown columns {unknown}; "
                f"{name} has {list(ENTITIES[name].column_names)}"
            )
    files = spec.get("files") or ()
    return EntityMapping(
        entity=name,
        files=tuple(str(f) for f in ([files] if isinstance(files, str) else files)),
        columns=columns,
        ignore=frozenset(str(c) for c in spec.get("ignore") or ()),
        values=values,
        defaults=defaults,
    )


def _no_unknown(path: Path, where: str, spec: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(map(str, spec)) - allowed)
    if unknown:
        raise SourceError(path, f"{where}: unknown keys {unknown}; allowed {sorted(allowed)}")


def resolve_columns(
    entity: str, source_names: list[str], mapping: EntityMapping | None, path: Path,
    *, check_required: bool = True,
) -> dict[str, str]:
    """canonical column -> source column for one file, or `SourceError` (unknown/missing)."""
    spec = ENTITIES[entity]
    canonical = {name.lower(): name for name in spec.column_names}
    resolved: dict[str, str] = {}
    mapped_sources = set()
    if mapping is not None:
        absent = sorted(src for src in mapping.columns.values() if src not in source_names)
        if absent:
            raise SourceError(path, f"mapped columns {absent} are not in the file "
                                    f"(it has {source_names})")
        resolved.update(mapping.columns)
        mapped_sources = set(mapping.columns.values())
    unknown = []
    for name in source_names:
        if name in mapped_sources or (mapping is not None and name in mapping.ignore):
            continue
        target = canonical.get(name.lower())
        if target is None or target in resolved:
            unknown.append(name)
        else:
            resolved[target] = name
    if unknown:
        hint = ("add them to the mapping's columns or ignore list" if mapping is not None
                else "pass --mapping with a column-mapping file")
        raise SourceError(
            path, f"unknown columns {unknown} for {entity} (canonical: "
            f"{', '.join(spec.column_names)}); {hint}"
        )
    defaults = mapping.defaults if mapping is not None else {}
    missing = [c for c in spec.required if c not in resolved and c not in defaults
               and c not in MAY_LACK.get(entity, ())]
    if missing and check_required:
        raise SourceError(path, f"missing required columns {missing} for {entity}")
    return resolved
