"""Every package smakom imports is declared in pyproject.toml, and psutil only where needed."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "smakom_cli"


def declared() -> dict[str, str]:
    """Each runtime dependency's normalised name, with its environment marker ("" for none)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = {}
    for requirement in project["dependencies"]:
        name, _, marker = requirement.partition(";")
        base = re.split(r"[<>=!~\[ ]", name.strip(), maxsplit=1)[0]
        found[re.sub(r"[-_.]+", "-", base).lower()] = marker.strip()
    return found


def imported() -> set[str]:
    """The top-level modules the package imports that are not the standard library's."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "smakom_cli"}


def test_every_imported_package_is_declared() -> None:
    """`pip install` of the wheel brings everything smakom imports, by its own declaration,
    not because some other package happens to depend on it."""
    distributions = packages_distributions()
    needed = declared()
    missing = []
    for module in sorted(imported()):
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        if not owners & needed.keys():
            missing.append(f"{module} ({', '.join(sorted(owners))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_psutil_is_installed_only_off_linux() -> None:
    """Linux has a boot id of its own; only Windows and macOS need psutil for the journal."""
    assert declared()["psutil"] == "sys_platform != 'linux'"
