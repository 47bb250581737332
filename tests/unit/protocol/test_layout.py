"""The Python schema description (layout.TABLES) must match the .fbs files exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mindfed.protocol.layout import SCALAR_SIZES, TABLES, Kind

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "python" / "mindfed" / "protocol" / "schema"


def _parse_fbs() -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """Returns {table: [(field, type text)]} and {enum: underlying type} of both .fbs files."""
    text = "".join(re.sub(r"//[^\n]*", "", p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.fbs")))
    enums = dict(re.findall(r"enum\s+(\w+)\s*:\s*(\w+)", text))
    tables: dict[str, list[tuple[str, str]]] = {}
    for name, body in re.findall(r"table\s+(\w+)\s*\{([^}]*)\}", text):
        fields = []
        for decl in filter(None, (d.strip() for d in body.split(";"))):
            field, type_text = (s.strip() for s in decl.split(":", 1))
            fields.append((field, type_text.split("=")[0].strip()))
        tables[name] = fields
    return tables, enums


def _expected_kind(type_text: str, tables: set[str], enums: dict[str, str]) -> tuple[Kind, str | None]:
    if type_text.startswith("["):
        elem = enums.get(type_text[1:-1], type_text[1:-1])
        if elem == "string":
            return Kind.STRING_VECTOR, None
        return (Kind.TABLE_VECTOR, elem) if elem in tables else (Kind.SCALAR_VECTOR, elem)
    elem = enums.get(type_text, type_text)
    if elem == "string":
        return Kind.STRING, None
    return (Kind.TABLE, elem) if elem in tables else (Kind.SCALAR, elem)


def test_layout_lists_every_fbs_table_and_nothing_else() -> None:
    # Prepare
    fbs_tables, _ = _parse_fbs()

    # Assert
    assert set(TABLES) == set(fbs_tables)
    assert len(fbs_tables) == 49


@pytest.mark.parametrize("table", sorted(_parse_fbs()[0]))
def test_layout_fields_match_fbs_names_order_and_types(table: str) -> None:
    # Prepare
    fbs_tables, enums = _parse_fbs()
    expected = [(name, *_expected_kind(t, set(fbs_tables), enums)) for name, t in fbs_tables[table]]

    # Execute
    actual = [(f.name, f.kind, f.elem) for f in TABLES[table]]

    # Assert
    assert actual == expected


def test_every_scalar_type_in_layout_has_a_size() -> None:
    used = {f.elem for fields in TABLES.values() for f in fields if f.kind in (Kind.SCALAR, Kind.SCALAR_VECTOR)}
    assert used <= set(SCALAR_SIZES)
