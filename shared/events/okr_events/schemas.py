"""JSON Schema export of every contract, checked in so non-Python consumers and reviewers see
contract changes as diffs.

    python -m okr_events.schemas write [--dir DIR]   # (re)write the files
    python -m okr_events.schemas check [--dir DIR]   # exit 1 when they are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .registry import all_contracts

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name (``<cloudevents type>.json``) -> JSON Schema of that contract's data."""
    documents: dict[str, dict[str, Any]] = {}
    for contract in all_contracts():
        schema = contract.model_json_schema()
        schema.update(
            {
                "$schema": JSON_SCHEMA_DIALECT,
                "$id": contract.schema_uri(),
                "title": contract.__name__,
                "x-event-type": contract.event_type,
                "x-version": contract.version,
            }
        )
        documents[f"{contract.cloudevents_type()}.json"] = schema
    return documents


def render(document: dict[str, Any]) -> str:
    """Deterministic text, so regenerating unchanged contracts gives no diff."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path) -> list[str]:
    """Human-readable problems: missing, stale or extra schema files in ``directory``."""
    expected = {name: render(doc) for name, doc in schema_documents().items()}
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    problems = [f"missing: {name}" for name in sorted(expected.keys() - present)]
    problems += [
        f"stale: {name}"
        for name in sorted(expected.keys() & present)
        if (directory / name).read_text(encoding="utf-8") != expected[name]
    ]
    problems += [f"extra: {name}" for name in sorted(present - expected.keys())]
    return problems


def write(directory: Path) -> list[str]:
    """Write every schema and delete JSON files no contract produces; returns changed names."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = {name: render(doc) for name, doc in schema_documents().items()}
    changed = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(name)
    for path in directory.glob("*.json"):
        if path.name not in expected:
            path.unlink()
            changed.append(path.name)
    return sorted(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m okr_events.schemas", description=__doc__)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default: {DEFAULT_DIR}")
    args = parser.parse_args(argv)
    if args.command == "write":
        changed = write(args.dir)
        print(f"{len(changed)} schema file(s) changed in {args.dir}")
        for name in changed:
            print(f"  {name}")
        return 0
    problems = stale_files(args.dir)
    if problems:
        print(f"JSON Schemas in {args.dir} are out of date:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Run: python -m okr_events.schemas write", file=sys.stderr)
        return 1
    print(f"{len(schema_documents())} JSON Schemas in {args.dir} are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
