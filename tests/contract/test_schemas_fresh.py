"""The checked-in JSON Schemas are what the contracts generate today."""

from __future__ import annotations

import json
from pathlib import Path

from okr_events.schemas import DEFAULT_DIR, main, render, schema_documents

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "events" / "schemas"
FIX = "run: python -m okr_events.schemas write"


def test_checked_in_schemas_are_fresh():
    expected = schema_documents()
    present = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(expected.keys() - present) == [], f"missing schema files; {FIX}"
    assert sorted(present - expected.keys()) == [], f"schema files without a contract; {FIX}"
    stale = [
        name
        for name, document in expected.items()
        if (SCHEMA_DIR / name).read_text(encoding="utf-8") != render(document)
    ]
    assert stale == [], f"stale schema files; {FIX}"


def test_default_dir_is_the_checked_in_folder():
    assert DEFAULT_DIR == SCHEMA_DIR


def test_documents_carry_identity():
    for name, document in schema_documents().items():
        assert name == f"{document['x-event-type']}.v{document['x-version']}.json"
        assert document["$id"].endswith(name.removesuffix(".json"))
        assert document["title"] and document["description"]
        assert document["additionalProperties"] is False


def test_cli_check_and_write(tmp_path, capsys):
    assert main(["check", "--dir", str(tmp_path)]) == 1
    assert "missing: okr.goals.KRProgressUpdated.v1.json" in capsys.readouterr().err

    assert main(["write", "--dir", str(tmp_path)]) == 0
    assert main(["check", "--dir", str(tmp_path)]) == 0

    stale = tmp_path / "okr.goals.KRProgressUpdated.v1.json"
    stale.write_text(json.dumps({"title": "old"}), encoding="utf-8")
    (tmp_path / "okr.goals.Retired.v1.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stale: okr.goals.KRProgressUpdated.v1.json" in err
    assert "extra: okr.goals.Retired.v1.json" in err

    assert main(["write", "--dir", str(tmp_path)]) == 0
    assert main(["check", "--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "okr.goals.Retired.v1.json").exists()
