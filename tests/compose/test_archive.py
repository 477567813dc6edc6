"""`smakom archive`: the web version as static pages, an index and an Atom feed."""

from __future__ import annotations

import csv
import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.compose.archive import ATOM, write_archive
from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.render import default_templates_dir, personal_values, render_issue
from smakom_cli.config import load_config
from smakom_cli.errors import SmakomError

A = f"{{{ATOM}}}"
_LINK = re.compile(r"""\s(?:href|src)="([^"]*)\"""")


def archive(runner: CliRunner, *args: str) -> Path:
    """Run `smakom archive --out site-out ARGS` in the newsletter folder; the site folder."""
    out = Path("site-out")
    result = runner.invoke(app, ["archive", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.resolve()


def add_issue(folder: Path, slug: str, front: str) -> None:
    (folder / "issues" / f"{slug}.md").write_text(
        f"---\nsubject: Nyhetsbrev {slug}\n{front}---\n\n# Nytt\n\nText för {slug}.\n",
        encoding="utf-8",
    )


def test_archive_writes_the_site(runner: CliRunner, newsletter: Path) -> None:
    """The example becomes a page with the issue's text, an index, a feed and the images."""
    out = archive(runner)
    page = (out / "2021-01.html").read_text(encoding="utf-8")
    assert "<h1>Nyhetsbrev Januari 2021</h1>" in page
    assert "<h2>Rapport från styrelsemöte</h2>" in page
    assert "<h3>Vindkraft</h3>" in page
    assert "Peter Lindroth, ordförande" in page
    assert "Styrelsen samlad i ett konferensrum" in page
    assert (out / "index.html").is_file()
    assert (out / "feed.xml").is_file()
    copied = {path.name.partition("-")[2] for path in (out / "images").iterdir()}
    icons = {f"social-{name}.png" for name in ("facebook", "homepage", "instagram")}
    assert copied == {"logo.png", "styrelsen.png", "utredningen.png", *icons}


def test_archive_defaults_to_site_in_the_newsletter_folder(
    runner: CliRunner, newsletter: Path
) -> None:
    """Without --out the site goes to site/ beside smakom.toml, and the output says where."""
    result = runner.invoke(app, ["archive"])
    assert "site" in result.output
    assert (newsletter / "site" / "2021-01.html").is_file()
    assert result.exit_code == 0, result.output


def test_pages_are_valid_html5_that_fit_a_phone(runner: CliRunner, newsletter: Path) -> None:
    """Every page parses as HTML5 without a single error and declares language, charset and
    the viewport a phone needs; each has one top heading."""
    out = archive(runner)
    parser = html5lib.HTMLParser(strict=True)
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        parser.parse(text)
        assert text.startswith("<!DOCTYPE html>"), page.name
        assert '<html lang="sv">' in text, page.name
        assert '<meta charset="utf-8">' in text, page.name
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
        assert text.count("<h1>") == 1, page.name


def test_links_inside_the_site_are_relative_and_resolve(
    runner: CliRunner, newsletter: Path
) -> None:
    """The folder can be uploaded anywhere: every link into the site is relative and
    points at a file that was written."""
    out = archive(runner)
    for page in out.glob("*.html"):
        for link in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"(https://|mailto:)", link):
                continue
            assert not link.startswith("/"), (page.name, link)
            assert (out / link).is_file(), (page.name, link)


def test_the_site_holds_no_personal_data(runner: CliRunner, newsletter: Path) -> None:
    """No subscriber's name or address, and no unsubscribe token, appears anywhere in the site;
    the pages link to the general unsubscribe page instead."""
    out = archive(runner)
    with (newsletter / "subscribers.csv").open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file, delimiter=";"))
    personal = {row[key].strip().casefold() for row in rows for key in ("email", "name")}
    personal.discard("")
    written = [path for path in out.rglob("*") if path.is_file()]
    assert len(written) > 3
    for path in written:
        text = path.read_bytes().decode("utf-8", errors="ignore").casefold()
        assert "token=" not in text, path.name
        for value in personal:
            assert value not in text, (path.name, value)
    page = (out / "2021-01.html").read_text(encoding="utf-8")
    assert "avregistrera?" not in page and 'href="https://www.smakom.se/avregistrera"' not in page


def test_the_sites_way_out_works_for_anyone(runner: CliRunner, newsletter: Path) -> None:
    """The pages' footer is the unsubscribe address with a ready subject, and a line about
    the link in one's own mail (it was the one-click page without a token, which answers
    "Länken fungerar inte")."""
    page = (archive(runner) / "2021-01.html").read_text(encoding="utf-8")
    assert '<a href="mailto:avregistrera@smakom.se?subject=Avregistrera%20mig">klicka här</a>' in (
        page
    )
    assert "avregistreringslänken längst ner i nyhetsbrevet du har fått" in page


def test_check_warns_when_the_site_has_no_way_out(runner: CliRunner, newsletter: Path) -> None:
    """Without [unsubscribe] mailto the public pages can offer nobody a way out: check says so."""
    config = newsletter / "smakom.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^mailto = "avregistrera@smakom.se".*$', "", text), "utf-8")
    result = runner.invoke(app, ["check", "issues/2021-01.md", "--offline"])
    assert "the web version (`smakom archive`) has no way to unsubscribe" in " ".join(
        result.output.split()
    )


def test_the_mail_links_to_the_page_archive_writes(runner: CliRunner, newsletter: Path) -> None:
    """The mail's "Se det i webbläsaren" link is the page's path under web_base_url."""
    out = archive(runner)
    config = load_config(newsletter / "smakom.toml")
    rendered = render_issue(load_issue(newsletter / "issues" / "2021-01.md"), config)
    page = (out / "2021-01.html").relative_to(out).as_posix()
    expected = f"{config.newsletter.web_base_url}/{page}"
    assert rendered.web_url == expected
    html, text = rendered.personalise(personal_values({}, "https://example.org/u"))
    assert f'href="{expected}"' in html
    assert f"<{expected}>" in text


def test_feed_is_atom_with_one_entry_per_issue(runner: CliRunner, newsletter: Path) -> None:
    """The feed is Atom 1.0 with the required elements, newest entry first, each linking
    to its page and carrying the issue's text."""
    add_issue(newsletter, "2021-02", "preheader: Februari.\ndate: 2021-02-03\n")
    out = archive(runner)
    feed = ET.parse(out / "feed.xml").getroot()
    assert feed.tag == f"{A}feed"
    assert feed.get("{http://www.w3.org/XML/1998/namespace}base") == (
        "https://www.smakom.se/nyhetsbrev/"
    )
    assert feed.findtext(f"{A}title") == "SmåKom Nyhetsbrev"
    assert feed.findtext(f"{A}id", "").startswith("urn:uuid:")
    assert feed.findtext(f"{A}updated") == "2021-02-03T00:00:00+00:00"
    assert feed.findtext(f"{A}author/{A}name") == "SmåKom"
    assert feed.find(f"{A}link[@rel='self']") is not None
    entries = feed.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == [
        "Nyhetsbrev 2021-02",
        "Nyhetsbrev Januari 2021",
    ]
    ids = {e.findtext(f"{A}id") for e in entries}
    assert len(ids) == 2
    for entry in entries:
        assert entry.findtext(f"{A}id", "").startswith("urn:uuid:")
        dt.datetime.fromisoformat(entry.findtext(f"{A}updated", ""))
        link = entry.find(f"{A}link[@rel='alternate']")
        assert link is not None
        assert (out / link.get("href", "")).is_file()
        assert entry.findtext(f"{A}content")
    assert entries[0].findtext(f"{A}summary") == "Februari."
    assert "<h2>Rapport från styrelsemöte</h2>" in entries[1].findtext(f"{A}content", "")


def test_index_lists_issues_newest_first(runner: CliRunner, newsletter: Path) -> None:
    """The index shows the newest issue first: by its date, else by its file name."""
    add_issue(newsletter, "2021-02", "date: 2021-02-03\n")
    add_issue(newsletter, "2020-12", "title: Julbrevet\n")
    add_issue(newsletter, "2021-03", "")
    out = archive(runner)
    index = (out / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'<a href="(\d{4}-\d\d\.html)">', index)
    assert hrefs == ["2021-03.html", "2021-02.html", "2021-01.html", "2020-12.html"]
    assert ">Julbrevet</a>" in index
    assert '<time datetime="2021-02-03">' in index


def test_archive_of_chosen_issues_lists_only_those(runner: CliRunner, newsletter: Path) -> None:
    """Naming issues publishes only them, so a draft in the issues folder stays off the web."""
    add_issue(newsletter, "2021-02", "")
    out = archive(runner, "issues/2021-01.md", "issues/2021-01.md")
    assert sorted(path.name for path in out.glob("*.html")) == ["2021-01.html", "index.html"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count('<a href="2021-01.html">') == 1
    feed = ET.parse(out / "feed.xml").getroot()
    assert len(feed.findall(f"{A}entry")) == 1


def test_a_folder_template_overrides_the_page(runner: CliRunner, newsletter: Path) -> None:
    """A web.html in the folder's templates/ is used instead of the shipped one."""
    shipped = (default_templates_dir() / "web.html").read_text(encoding="utf-8")
    (newsletter / "templates").mkdir()
    (newsletter / "templates" / "web.html").write_text(
        shipped.replace("<article>", "<article><p>Vår egen mall</p>"), encoding="utf-8"
    )
    out = archive(runner)
    assert "<p>Vår egen mall</p>" in (out / "2021-01.html").read_text(encoding="utf-8")


def test_a_page_template_cannot_use_subscriber_fields(runner: CliRunner, newsletter: Path) -> None:
    """A web template that asks for a subscriber's name fails with a clear message instead
    of putting someone's name on a public page."""
    (newsletter / "templates").mkdir()
    (newsletter / "templates" / "web.html").write_text(
        "Hej {{ subscriber.name }}!", encoding="utf-8"
    )
    result = runner.invoke(app, ["archive", "--out", "site-out"])
    assert "template web.html: unknown variable" in result.output
    assert "same for every reader" in result.output
    assert not (newsletter / "site-out" / "2021-01.html").exists()
    assert result.exit_code == 1, result.output


def test_a_missing_image_names_the_issue_line(runner: CliRunner, newsletter: Path) -> None:
    """An image file that does not exist is reported with the issue file and line."""
    issue = newsletter / "issues" / "2021-01.md"
    issue.write_text(
        issue.read_text(encoding="utf-8") + "\n![Karta](../images/karta.png)\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["archive", "--out", "site-out"])
    assert re.search(r"2021-01\.md line \d+: the image .*karta\.png does not exist", result.output)
    assert result.exit_code == 1, result.output


def test_archive_without_issues_says_so(newsletter: Path) -> None:
    """An empty issues folder is an error naming the folder, not an empty site."""
    for issue in (newsletter / "issues").glob("*.md"):
        issue.unlink()
    config = load_config(newsletter / "smakom.toml")
    with pytest.raises(SmakomError, match="no issues"):
        write_archive(config, (), newsletter / "site-out")


def test_two_issues_with_one_name_are_refused(newsletter: Path) -> None:
    """Two issue files that would both become the same page are an error naming both."""
    other = newsletter / "old" / "2021-01.md"
    other.parent.mkdir()
    other.write_bytes((newsletter / "issues" / "2021-01.md").read_bytes())
    config = load_config(newsletter / "smakom.toml")
    with pytest.raises(SmakomError, match=r"would both become 2021-01\.html"):
        write_archive(config, (newsletter / "issues" / "2021-01.md", other))


BROKEN_TEMPLATES = {
    "syntax": ("<p>Hej</p>\n{% if %}\n", r"^Error: template .*templates/{} line 2: "),
    "unclosed-block": (
        "{% for s in sections %}\n{{ s.title }}\n",
        r"^Error: template .*templates/{} line 2: Unexpected end of template",
    ),
    "missing-include": (
        '{% include "sidfot.html" %}\n',
        r"^Error: template sidfot\.html not found",
    ),
}


@pytest.mark.parametrize("case", BROKEN_TEMPLATES.values(), ids=BROKEN_TEMPLATES.keys())
def test_a_broken_template_reads_the_same_in_preview_and_archive(
    runner: CliRunner, newsletter: Path, case: tuple[str, str]
) -> None:
    """The same mistake in the mail's template and in the web page's gives the same error
    line from `smakom preview` and `smakom archive`, naming the file and line."""
    text, expected = case
    templates = newsletter / "templates"
    templates.mkdir()
    (templates / "newsletter.html").write_text(text, encoding="utf-8")
    preview = runner.invoke(app, ["preview", "issues/2021-01.md"])
    (templates / "newsletter.html").unlink()
    (templates / "web.html").write_text(text, encoding="utf-8")
    archived = runner.invoke(app, ["archive", "--out", "site-out"])
    assert (preview.exit_code, archived.exit_code) == (1, 1), preview.output + archived.output
    assert re.search(expected.format("newsletter.html"), preview.output), preview.output
    assert archived.output == preview.output.replace("newsletter.html", "web.html")
