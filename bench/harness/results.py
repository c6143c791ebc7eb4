"""Figures: what a run measured, printed as a table and merged by name into
bench/results/latest.json (a JSON list of {"name", "value", "unit", "params"}): entries a run
writes replace those of the same name, every other entry is kept."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "results" / "latest.json"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    params: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, float):
            value = None if value != value else round(value, 3)  # NaN -> null
        return {"name": self.name, "value": value, "unit": self.unit, "params": self.params}


@dataclass
class Figures:
    common: dict[str, Any]
    items: list[Figure] = field(default_factory=list)

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        target: tuple[str, float] | None = None,
        **params: Any,
    ) -> None:
        merged = self.common | params
        if target is not None:
            op, limit = target
            merged["target"] = f"{op} {limit:g}"
            merged["meets_target"] = bool(value >= limit if op == ">=" else value <= limit)
        self.items.append(Figure(name, value, unit, merged))

    def get(self, name: str) -> Figure | None:
        return next((f for f in self.items if f.name == name), None)


def write_results(path: Path, figures: Figures) -> None:
    """Merge by name: this run's entries replace those of the same name; others are kept."""
    existing: list[dict[str, Any]] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, list):
                existing = [e for e in loaded if isinstance(e, dict) and "name" in e]
        except json.JSONDecodeError:
            print(f"warning: {path} was not valid JSON; rewriting it", file=sys.stderr)
    new = {f.name: f.as_json() for f in figures.items}
    merged = [new.pop(e["name"]) if e["name"] in new else e for e in existing]
    merged += list(new.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def format_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:
        return "n/a"
    return f"{value:,.3f}" if unit == "ratio" else f"{value:,.1f}"


def print_table(figures: Figures) -> None:
    print()
    print(f"{'figure':<52} {'value':>12}  {'unit':<12} target")
    print("-" * 92)
    for f in figures.items:
        mark = ""
        if "target" in f.params:
            mark = f"{f.params['target']}  {'ok' if f.params['meets_target'] else 'MISSED'}"
        print(f"{f.name:<52} {format_value(f.value, f.unit):>12}  {f.unit:<12} {mark}")
    print()
