"""Packages reach each other only through front doors, and only downhill: reports <- migrate <- finetune <- quantize.

Every source file of the packages (and of ``fixtures`` and ``bench``) is parsed
with ``ast``; an import of another package's private module or name (a dotted
component starting with ``_``) or an import against the dependency direction
fails the test.  Module paths written as strings (lazy export tables,
``importlib.import_module``) count as imports.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What each top-level package may import besides itself.  fixtures (test data) and bench (scripts) sit on top.
ALLOWED = {
    "reports": set(),
    "migrate": {"reports"},
    "finetune": {"reports", "migrate"},
    "quantize": {"reports", "migrate", "finetune"},
    "fixtures": {"reports", "migrate", "finetune", "quantize"},
    "bench": {"reports", "migrate", "finetune", "quantize", "fixtures"},
}
_MODULE_STRING = re.compile(rf"({'|'.join(ALLOWED)})(\.[A-Za-z_]\w*)+(:\w+)?")


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``tree`` imports, relative imports resolved within ``package``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else node.module or ""
            if node.level and node.module:
                base = f"{package}.{node.module}"
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.fullmatch(node.value):
            found.append((node.lineno, node.value.split(":")[0]))
    return found


def violations(source: str, package: str, filename: str = "<source>") -> list[str]:
    """What ``source`` (a file of ``package``) imports that it must not, one line per problem."""
    problems = []
    for line, name in imported_modules(ast.parse(source), package):
        top, *rest = name.split(".")
        if top == package or top not in ALLOWED:
            continue  # its own modules, the standard library, third parties
        if top not in ALLOWED[package]:
            problems.append(f"{filename}:{line}: {package} imports {name} (against the dependency direction)")
        elif any(part.startswith("_") for part in rest):
            problems.append(f"{filename}:{line}: {package} imports {name} (private to {top}; "
                            "use its front door or a public module)")
    return problems


def _sources():
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            yield package, path


def test_no_private_or_upstream_imports():
    problems = []
    for package, path in _sources():
        problems += violations(path.read_text(), package, str(path.relative_to(REPO)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package, source", [
    ("finetune", "from migrate._tf import tensorflow"),
    ("finetune", "import migrate._convert as convert"),
    ("quantize", "from finetune import _run"),
    ("quantize", "def f():\n    from finetune._configure import configure"),
    ("finetune", '_LAZY = {"FinetuneReport": "reports._finetune"}'),
    ("reports", "from migrate import open_checkpoint"),
    ("migrate", "import finetune"),
    ("finetune", "from quantize import load"),
    ("migrate", "import fixtures"),
    ("finetune", "from reports._cli import run_guarded"),
])
def test_catches(package, source):
    assert violations(source, package)


@pytest.mark.parametrize("package, source", [
    ("migrate", "from ._formats._objgraph import decode"),
    ("migrate", "from . import _rulesets"),
    ("finetune", "from migrate.tf import tensorflow\nfrom reports import FinetuneReport"),
    ("quantize", "import numpy as np\nfrom finetune.data import load_label_map"),
    ("quantize", '_TASKS = {"classification": "quantize._classification:make"}'),
    ("bench", "import fixtures, quantize"),
])
def test_allows(package, source):
    assert violations(source, package) == []
