"""medgan.viz is a leaf: any layer may draw, so viz itself imports nothing of medgan but its errors."""

from __future__ import annotations

import ast
from pathlib import Path

import medgan.viz

ALLOWED = {"medgan.errors"}


def _medgan_imports(source: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] == "medgan" and not name.startswith("medgan.viz")}


def test_viz_imports_only_medgan_errors() -> None:
    sources = sorted(Path(medgan.viz.__file__).parent.rglob("*.py"))
    assert sources
    for source in sources:
        assert _medgan_imports(source) <= ALLOWED, source.name
