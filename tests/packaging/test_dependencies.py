"""A fresh machine gets everything the server imports.

Two checks, because each alone has a blind spot:
- every module under app/ imports here (CI runs in its own new virtualenv, so a dependency that is only installed
  machine-wide is missing there and this fails);
- every third-party module app/ imports belongs to a distribution requirements.txt declares itself, not one that
  only arrives as another package's dependency (this fails even where the module happens to be installed).
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

import app

ROOT = Path(app.__file__).resolve().parent.parent
# __main__ runs the command line when imported: its imports are cli's, which is on the list.
MODULES = sorted(info.name for info in pkgutil.walk_packages(app.__path__, prefix="app.")
                 if not info.name.endswith("__main__"))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {normalized(re.split(r"[<>=!~\[; ]", line.strip())[0]) for line in lines
            if line.strip() and not line.lstrip().startswith("#")}


def third_party_imports() -> dict[str, str]:
    """Top-level module name → the first file that imports it, for every non-stdlib import in app/."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("app", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module):
    importlib.import_module(module)


def test_every_third_party_import_is_declared():
    declared = declared_distributions()
    providers = metadata.packages_distributions()
    missing = []
    for module, where in third_party_imports().items():
        distributions = {normalized(d) for d in providers.get(module, [])} or {normalized(module)}
        if not distributions & declared:
            missing.append(f"{module} (imported by {where}; distribution {'/'.join(sorted(distributions))})")
    assert not missing, "requirements.txt does not declare: " + ", ".join(missing)
