"""The engine's floors never import the lab (test media, corpus, benchmarks, demo)."""

import ast
from pathlib import Path

import avwatch

PACKAGE = Path(avwatch.__file__).parent
# The front doors (cli/) may use the lab; nothing the engine runs may.
ENGINE = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("lab", "cli")]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_engine_is_where_it_is_expected():
    rooms = {p.relative_to(PACKAGE).parts[0] for p in ENGINE}
    assert {"input", "decode", "transport", "detectors", "analysis", "service"} <= rooms


def test_no_engine_module_imports_the_lab():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(path) if "avwatch.lab" in m
        )
        for path in ENGINE
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_finds_a_lab_import(tmp_path):
    # The scan itself must see imports inside functions, or the test above proves nothing.
    module = tmp_path / "sneaky.py"
    module.write_text("def f():\n    from avwatch.lab.synth import make_clip\n")
    assert "avwatch.lab.synth" in imported_modules(module)
