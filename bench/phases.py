"""Print a trained version's per-phase profile (phases.json) as a Markdown table.

    PYTHONPATH=. .venv/bin/python bench/phases.py MODELS_DIR/VERSION [MODELS_DIR/VERSION ...]

Phases that repeat (training steps, evaluations during training) are summed, with their count
and their median; with several versions the columns sit side by side (e.g. before and after).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def summary(version: Path) -> dict[str, dict[str, float]]:
    rows = json.loads((version / "phases.json").read_text())["phases"]
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        entry = out.setdefault(row["name"], {"n": 0, "s": 0.0, "cpu": 0.0, "peak": 0.0,
                                             "all": []})
        entry["n"] += 1
        entry["s"] += row["seconds"]
        entry["cpu"] += row.get("cpu_s", float("nan"))
        entry["peak"] = max(entry["peak"], row["peak_rss_gb"])
        entry["all"].append(row["seconds"])
    return out


def main(versions: list[Path]) -> None:
    tables = [summary(v) for v in versions]
    names: list[str] = []
    for table in tables:
        names += [n for n in table if n not in names]
    header = "| phase |" + "".join(
        f" {v.parent.name}/{v.name[:8]}: wall s (CPU s), peak GB |" for v in versions
    )
    print(header)
    print("| --- |" + " --- |" * len(versions))
    for name in names:
        cells = []
        for table in tables:
            e = table.get(name)
            if e is None:
                cells.append(" - |")
                continue
            count = f" x{e['n']}, median {statistics.median(e['all']):.2f} s" if e["n"] > 1 else ""
            cpu = "" if e["cpu"] != e["cpu"] else f" ({e['cpu']:.1f})"
            cells.append(f" {e['s']:.1f}{cpu}{count}, {e['peak']:.2f} |")
        print(f"| {name} |" + "".join(cells))
    for version, table in zip(versions, tables, strict=True):
        wall = sum(e["s"] for e in table.values())
        cpu = sum(e["cpu"] for e in table.values())
        print(f"\n{version}: {wall:.0f} s wall, {cpu:.0f} s CPU in the phases")


if __name__ == "__main__":
    main([Path(arg) for arg in sys.argv[1:]])
