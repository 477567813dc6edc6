"""The README is a front door to the docs: short, linking every page, and no link leads nowhere."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from smakom_cli.config import RANGES, Range
from tests.conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
# [text](target) outside code: a relative target, maybe with an #anchor.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def load_generator() -> ModuleType:
    """docs/generate.py, the script that writes the references, as a module."""
    spec = importlib.util.spec_from_file_location("generate", DOCS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes from a page's headings."""
    found = set()
    fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_the_readme_is_short_and_links_every_page() -> None:
    """A new user finds every docs page from the README, which stays one screenful or so."""
    readme = README.read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    for page in sorted(DOCS.glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"link docs/{page.name} from the README"


def test_every_relative_link_leads_to_a_page_and_heading() -> None:
    """A link between the README and the docs names a file and heading that exist."""
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.is_file(), f"{page.name}: {target} is no file"
            if anchor:
                assert anchor in anchors(linked), f"{page.name}: {target} is no heading"


@pytest.mark.parametrize("name", ["settings", "exit-codes", "system-programs", "layout"])
def test_the_generated_references_match_the_code(name: str) -> None:
    """The settings, exit-code, system-program and layout tables are what docs/generate.py
    writes from the code and the tests now."""
    generator = load_generator()
    file, _make = generator.GENERATORS[name]
    page = (DOCS / file).read_text(encoding="utf-8")
    assert f"<!-- generated: {name} -->" in page
    assert generator.generated(page) == page, f"docs/{file} is stale: run python docs/generate.py"


def test_a_changed_setting_makes_the_settings_page_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A range changed in config.py without the docs is noticed, and `--check` exits 1."""
    generator = load_generator()
    page = (DOCS / "settings.md").read_text(encoding="utf-8")
    row = "| `smtp.connections` | whole number | `1` | a whole number from 1 to 10 |"
    assert row in page
    monkeypatch.setitem(RANGES, "smtp.connections", Range(1, 20))
    assert "from 1 to 20" in generator.generated(page)
    # The same, seen from the script: a page that no longer says what the code does.
    for file in ["generate.py", "exit-codes.md", "development.md"]:
        (tmp_path / file).write_bytes((DOCS / file).read_bytes())
    (tmp_path / "settings.md").write_text(page.replace(row, ""), encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, str(tmp_path / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1
    assert "settings.md" in checked.stderr


def test_ci_runs_the_readmes_test_command_word_for_word() -> None:
    """What the README tells a new developer to run is what CI runs (.ci/run)."""
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(python3\.11 -m venv .*)\n```", readme)
    assert len(commands) == 2, "the README's two fresh-machine commands"
    install_and_test = next(command for command in commands if "pytest" in command)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert install_and_test in ci.splitlines()
