"""docs/architecture.md names every module under src/medalign (run this file to print the index rows)."""

from __future__ import annotations

import ast
from pathlib import Path

import medalign

PACKAGE = Path(medalign.__file__).parent
DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


def module_rows() -> dict[str, str]:
    """``medalign/<path>.py`` → its index row (the first line of its docstring)."""
    rows = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        doc = (ast.get_docstring(ast.parse(path.read_text())) or "").strip().split("\n")[0].replace("|", "\\|")
        rows[name] = f"| `{name}` | {doc} |"
    return rows


def test_every_module_is_named_in_the_architecture_doc():
    text = DOC.read_text()
    missing = [row for name, row in module_rows().items() if f"`{name}`" not in text]
    assert not missing, "docs/architecture.md lacks these modules; add their rows to its module index:\n" + "\n".join(missing)


def test_the_doc_names_no_module_that_is_gone():
    import re

    named = set(re.findall(r"`(medalign/[\w/]+\.py)`", DOC.read_text()))
    assert named - set(module_rows()) == set()


if __name__ == "__main__":
    print("\n".join(module_rows().values()))
