"""The README is a front door to the docs: short, linking every page, and no link leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
# [text](target) outside code: a relative target, maybe with an #anchor.
LINK = re.compile(r"\]\(([^)\s]+)\)")


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
