"""Rendering: the layout, CSS inlining, personal fields, escaping, the seed issue."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from smakom_cli.config import Config, load_config
from smakom_cli.errors import SmakomError
from smakom_cli.issue import load_issue
from smakom_cli.render import RenderedIssue, personal_values, render_issue

from .conftest import EXAMPLES, FIXTURES

COLUMNS = ("email", "name", "organisation")
UNSUBSCRIBE = "https://www.smakom.se/avregistrera?token=abc.DEF&list=2"


@pytest.fixture(scope="module")
def example_config() -> Config:
    return load_config(EXAMPLES / "smakom.toml")


@pytest.fixture(scope="module")
def example(example_config: Config) -> RenderedIssue:
    issue = load_issue(EXAMPLES / "issues" / "2021-01.md")
    return render_issue(issue, example_config, columns=COLUMNS)


def personalise(rendered: RenderedIssue, name: str = "Anna Åberg") -> tuple[str, str]:
    values = personal_values({"email": "anna@example.com", "name": name}, UNSUBSCRIBE)
    return rendered.personalise(values)


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def squeeze(text: str) -> str:
    """Drop all white space: the seed is an HTML-to-text copy that glued words at line
    breaks ("serviceVi ska"), so only the order of the characters can be compared."""
    return re.sub(r"\s+", "", text)


def seed_paragraphs() -> list[str]:
    seed = (FIXTURES / "seed-2021-01.txt").read_text(encoding="utf-8")
    return [block for block in re.split(r"\n\s*\n", seed) if block.strip()]


def assert_in_order(paragraphs: list[str], text: str) -> None:
    haystack = squeeze(text)
    position = 0
    for paragraph in paragraphs:
        found = haystack.find(squeeze(paragraph), position)
        assert found >= 0, f"missing or out of order: {paragraph[:80]!r}"
        position = found + len(squeeze(paragraph))


def test_plain_text_holds_every_seed_paragraph_in_order(example: RenderedIssue) -> None:
    """Every section, heading and paragraph of the January 2021 mail is in the text part."""
    _, text = personalise(example)
    without_targets = re.sub(r" ?<(?:https?://|mailto:)[^>]*>", "", text)
    assert_in_order(seed_paragraphs(), without_targets)


def test_html_holds_every_seed_paragraph_in_order(example: RenderedIssue) -> None:
    """The HTML part shows the same paragraphs in the same order."""
    html, _ = personalise(example)
    parser = _TextOf()
    parser.feed(html)
    assert_in_order(seed_paragraphs(), "".join(parser.parts))


def test_plain_text_shows_link_targets_and_headings(example: RenderedIssue) -> None:
    """A reader of the text part sees where links go, and headings stand out."""
    _, text = personalise(example)
    assert "lokal statlig service\n<https://www.regeringen.se/" in text
    assert "På gång i SmåKom\n================" in text
    assert "Vindkraft\n---------" in text
    assert all(len(line) <= 72 or "://" in line for line in text.splitlines())


def test_personal_links_survive_css_inlining(example: RenderedIssue) -> None:
    """Premailer must not URL-encode the personal unsubscribe link into `{{%20…%20}}`."""
    html, text = personalise(example)
    assert 'href="https://www.smakom.se/avregistrera?token=abc.DEF&amp;list=2"' in html
    assert f"klicka här <{UNSUBSCRIBE}>" in text
    assert "%20" not in " ".join(re.findall(r'href="([^"]*avregistrera[^"]*)"', html))
    assert "{{" not in html and "smakomfield" not in html


def test_css_is_inlined_and_only_media_rules_stay(example: RenderedIssue) -> None:
    """Visible elements carry inline styles; the one <style> left holds the @media rules."""
    html, _ = personalise(example)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 1
    assert styles[0].strip().startswith("@media")
    for tag in ("h1", "h2", "p", "blockquote", "td"):
        assert re.search(rf"<{tag}\b[^>]*style=[\"'][^\"']+", html), tag
    assert re.search(r'<div class="preheader" style="[^"]*display:none', html)


def test_the_web_version_link_comes_first(example: RenderedIssue) -> None:
    """The mail opens with the preheader and a link to the issue's web page."""
    html, _ = personalise(example)
    assert example.web_url == "https://www.smakom.se/nyhetsbrev/2021-01.html"
    link = re.search(r'Problem att visa det\? <a href="([^"]+)"', html)
    assert link and link.group(1) == example.web_url
    assert html.index("preheader") < html.index("Problem att visa det?")


def test_local_images_are_embedded_once_with_captions(example: RenderedIssue) -> None:
    """The board photo and the logo are referenced by cid, and the caption follows the photo."""
    html, _ = personalise(example)
    names = sorted(image.path.name for image in example.images)
    assert names == ["logo.png", "styrelsen.png", "utredningen.png"]
    assert all(image.src.startswith("cid:") for image in example.images)
    assert re.search(r'<img[^>]+src="cid:[^"]+styrelsen.png@smakom"[^>]+alt="Styrelsen', html)
    assert re.search(r'class="caption"[^>]*>Styrelsen, fr v; Kristine Hästmark', html)


def write_template(folder: Path, name: str, text: str) -> None:
    (folder / "templates").mkdir(exist_ok=True)
    (folder / "templates" / name).write_text(text, encoding="utf-8")


def render_folder(folder: Path) -> RenderedIssue:
    config = load_config(folder / "smakom.toml")
    return render_issue(load_issue(folder / "issues" / "2021-01.md"), config, columns=COLUMNS)


def test_subscriber_fields_are_escaped_in_html(newsletter: Path) -> None:
    """A subscriber called `Ann & Bo <x>` is shown literally, never as markup."""
    write_template(
        newsletter, "newsletter.html", "<p>Hej {{ subscriber.name }}!</p>{{ unsubscribe_url }}"
    )
    write_template(newsletter, "newsletter.txt", "Hej {{ subscriber.name }}!{{ unsubscribe_url }}")
    html, text = personalise(render_folder(newsletter), name="Ann & Bo <x>")
    assert "Hej Ann &amp; Bo &lt;x&gt;!" in html
    assert "Hej Ann & Bo <x>!" in text


def test_an_empty_name_takes_the_default(newsletter: Path) -> None:
    """`{{ subscriber.name | default("vän") }}` greets a subscriber with no name."""
    greeting = 'Hej {{ subscriber.name | default("vän") }}! {{ unsubscribe_url }}'
    write_template(newsletter, "newsletter.html", f"<p>{greeting}</p>")
    write_template(newsletter, "newsletter.txt", greeting)
    rendered = render_folder(newsletter)
    assert personalise(rendered, name="")[1].startswith("Hej vän!")
    assert personalise(rendered, name="Eva")[1].startswith("Hej Eva!")


def test_an_unknown_template_variable_fails_before_anything_is_sent(newsletter: Path) -> None:
    """StrictUndefined: a mistyped variable is an error naming it, not an empty gap."""
    write_template(newsletter, "newsletter.html", "<p>{{ isue.subject }}</p>")
    with pytest.raises(SmakomError, match="isue"):
        render_folder(newsletter)


def test_an_unknown_subscriber_column_fails(newsletter: Path) -> None:
    """`{{ subscriber.telefon }}` fails when the list has no such column."""
    write_template(newsletter, "newsletter.html", "<p>{{ subscriber.telefon }}</p>")
    with pytest.raises(SmakomError, match="telefon"):
        render_folder(newsletter)


def test_a_filtered_personal_field_is_refused(newsletter: Path) -> None:
    """A filter that would change a personal field is an error, not a broken marker."""
    write_template(newsletter, "newsletter.html", "<p>{{ subscriber.name | upper }}</p>")
    with pytest.raises(SmakomError, match="personal field"):
        render_folder(newsletter)


def test_a_floated_image_in_a_custom_layout_keeps_its_align_for_outlook(newsletter: Path) -> None:
    """An image floated by the layout's CSS also gets `align`, which Outlook understands."""
    write_template(
        newsletter,
        "newsletter.html",
        "<html><head><style>img.side { float: right; }</style></head><body>"
        '<img class="side" src="https://www.smakom.se/a.png" alt="A">{{ unsubscribe_url }}'
        "</body></html>",
    )
    html, _ = personalise(render_folder(newsletter))
    assert re.search(r'<img[^>]+align="right"', html)
