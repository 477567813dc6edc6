"""Rendering: the layout, CSS inlining, personal fields, escaping, the seed issue."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.render import RenderedIssue, personal_values, render_issue
from smakom_cli.config import Config, load_config
from smakom_cli.errors import SmakomError
from tests.conftest import EXAMPLES, FIXTURES

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
    # The 2021 mail's buttons said "facebook", "homepage", "instagram"; the example's say
    # "Facebook", "Webbplats", "Instagram" (#25).
    seed = seed.replace("facebookhomepageinstagram", "FacebookWebbplatsInstagram")
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


def outside_comments(html: str) -> str:
    """The HTML every client reads: without the `<!--[if mso]>` blocks only Outlook reads."""
    return re.sub(r"<!--.*?-->", "", html, flags=re.DOTALL)


def test_css_is_inlined_and_only_the_kept_block_stays(example: RenderedIssue) -> None:
    """Visible elements carry inline styles; the one <style> left holds the client resets,
    the small-screen and the dark-mode rules, written as the template has them."""
    html, _ = personalise(example)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", outside_comments(html), re.DOTALL)
    assert len(styles) == 1
    kept = styles[0]
    assert "mso-table-lspace" in kept and "-webkit-text-size-adjust" in kept
    assert "a[x-apple-data-detectors]" in kept
    assert "@media only screen and (max-width: 600px)" in kept
    assert "@media (prefers-color-scheme: dark)" in kept
    assert "data-premailer" not in html
    for tag in ("h1", "h2", "h3", "p", "blockquote", "td"):
        assert re.search(rf"<{tag}\b[^>]*style=[\"'][^\"']+", html), tag


def test_the_mail_is_valid_html5(example: RenderedIssue) -> None:
    """The HTML part parses as HTML5 without a single error (Outlook's parts are comments)."""
    import html5lib

    html, _ = personalise(example)
    html5lib.HTMLParser(strict=True).parse(html)


def test_the_head_has_what_outlook_and_dark_mode_need(example: RenderedIssue) -> None:
    """Swedish, Outlook's namespaces and 96 dpi setting, colour-scheme metas, no phone-number
    or address detection."""
    html, _ = personalise(example)
    root = re.search(r"<html[^>]*>", html)
    assert root
    assert 'lang="sv"' in root.group(0)
    assert 'xmlns:v="urn:schemas-microsoft-com:vml"' in root.group(0)
    assert 'xmlns:o="urn:schemas-microsoft-com:office:office"' in root.group(0)
    assert re.search(
        r"<!--\[if gte mso 9\]>.*<o:OfficeDocumentSettings>.*"
        r"<o:PixelsPerInch>96</o:PixelsPerInch>.*<!\[endif\]-->",
        html,
        re.DOTALL,
    )
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    assert '<meta name="format-detection" content="telephone=no' in html
    assert '<meta name="x-apple-disable-message-reformatting">' in html


def test_outlook_gets_a_600_px_ghost_table_and_others_a_fluid_one(
    example: RenderedIssue,
) -> None:
    """Outlook for Windows ignores max-width: it gets a fixed 600 px table in an MSO
    comment; every other client a 100 % table inside a 600 px max-width box."""
    html, _ = personalise(example)
    assert re.search(r'<!--\[if mso\]><table [^>]*width="600"', html)
    assert re.search(r'<div style="max-width: ?600px; margin: ?0 auto;?"', html)
    tables = re.findall(r"<table\b[^>]*>", outside_comments(html))
    assert tables
    assert all('role="presentation"' in table for table in tables)
    assert not any(re.search(r'width="600"', table) for table in tables)


def test_one_h1_then_h2_sections_and_h3_sub_headings(example: RenderedIssue) -> None:
    """The issue title is the only <h1>; sections are <h2>, their sub-headings <h3>."""
    html, _ = personalise(example)
    assert re.findall(r"<h1\b[^>]*>([^<]*)</h1>", html) == ["Nyhetsbrev Januari 2021"]
    h2 = re.findall(r"<h2\b[^>]*>([^<]*)</h2>", html)
    assert h2[:2] == ["År 2021 – tillbaka till det ”normala”?", "Rapport från styrelsemöte"]
    assert "Följ oss i sociala medier" in h2 and "Kontakt" in h2
    assert re.findall(r"<h3\b[^>]*>([^<]*)</h3>", html)[:2] == ["Vindkraft", "Statlig service"]


def test_images_have_pixel_widths_that_fit_the_column(example: RenderedIssue) -> None:
    """Each image has a whole-pixel width no wider than the 552 px column, the height to
    match, and never the invalid height="auto"; the 560 px photo is drawn at 552."""
    html, _ = personalise(example)
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) >= 3
    for image in images:
        width = re.search(r'\swidth="(\d+)"', image)
        assert width and int(width.group(1)) <= 552, image
        assert not re.search(r'\sheight="(?!\d+")', image), image
    board = next(image for image in images if "styrelsen" in image)
    assert 'width="552"' in board and 'height="296"' in board
    assert "max-width:552px" in board.replace(" ", "")


def test_the_preheader_is_hidden_without_colour_tricks(example: RenderedIssue) -> None:
    """The preheader is hidden by display, height and overflow (and mso-hide for Outlook),
    never by text coloured like the background, which spam filters score against."""
    html, _ = personalise(example)
    found = re.search(r'<div class="preheader"[^>]*style="([^"]*)"[^>]*>([^<]*)</div>', html)
    assert found
    style = found.group(1).replace(" ", "")
    for rule in ("display:none", "max-height:0", "overflow:hidden", "mso-hide:all"):
        assert rule in style
    assert "color" not in style and "font-size" not in style and "opacity" not in style
    assert found.group(2).startswith("Nyhetsbrev med senaste nytt.\u200c\xa0\u200c\xa0")


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
    icons = [f"social-{name}.png" for name in ("facebook", "homepage", "instagram")]
    assert names == ["logo.png", *icons, "styrelsen.png", "utredningen.png"]
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


def render_body(folder: Path, body: str) -> tuple[str, str]:
    """The example folder with an issue of this body; its HTML and text for a subscriber."""
    (folder / "issues" / "2021-01.md").write_text(
        f"---\nsubject: Prov\n---\n\n# Avsnitt\n\n{body}\n", encoding="utf-8"
    )
    return personalise(render_folder(folder))


def test_plain_text_keeps_emphasis_and_strong(newsletter: Path) -> None:
    """`*Ingen*` and `**viktigt**` stay marked in the text part, as plain-text readers know."""
    html, text = render_body(newsletter, "*Ingen* kommun är för liten, **det är viktigt**.")
    assert "*Ingen* kommun är för liten, **det är viktigt**." in text
    assert "<em>Ingen</em>" in html and "<strong>det är viktigt</strong>" in html


def test_plain_text_shows_images_by_their_alt_text(newsletter: Path) -> None:
    """A photo leaves `[Bild: what it shows]` and its caption; an inline one its alt text."""
    _, text = render_body(
        newsletter,
        '![Styrelsen samlad](../images/styrelsen.png "Styrelsen, fr v; Kristine Hästmark")\n\n'
        "Se kartan ![Karta över länet](../images/utredningen.png) här.",
    )
    assert "[Bild: Styrelsen samlad]\nStyrelsen, fr v; Kristine Hästmark" in text
    assert "Se kartan [Bild: Karta över länet] här." in text


def test_links_read_with_swedish_letters_but_stay_valid(newsletter: Path) -> None:
    """The text part shows `Småland` and `exämpel.se` as written; the HTML link itself is
    percent-encoded (and the domain in punycode), so every mail program can open it."""
    html, text = render_body(
        newsletter,
        "Läs om [Småland](https://sv.wikipedia.org/wiki/Småland_(landskap)) och "
        "[en sida med mellanslag](https://www.smakom.se/a%20b/ö) eller www.exämpel.se/sjö.",
    )
    assert "Småland <https://sv.wikipedia.org/wiki/Småland_(landskap)>" in text
    assert "<https://www.smakom.se/a%20b/ö>" in text
    assert "www.exämpel.se/sjö" in text and "xn--" not in text and "%C3" not in text
    assert 'href="https://sv.wikipedia.org/wiki/Sm%C3%A5land_(landskap)"' in html
    assert 'href="http://www.xn--exmpel-cua.se/sj%C3%B6"' in html


@given(st.text(max_size=40))
def test_a_readable_link_still_names_the_same_address(path: str) -> None:
    """Whatever a link's path holds, the text part's readable form turns back into exactly
    the percent-encoded link the HTML carries (RFC 3987's mapping of an IRI to a URI)."""
    from markdown_it import MarkdownIt

    from smakom_cli.compose.content import readable_url

    href = MarkdownIt().normalizeLink(f"https://www.smakom.se/{path}")
    shown = readable_url(href)
    assert "".join(quote(c) if ord(c) > 127 else c for c in shown) == href
    assert not re.search(r"%C3%(A5|A4|B6|85|84|96)", shown), shown


@given(st.sampled_from(["embed", "link", "länk", "", "1", "[embed]", "{a: b}"]))
def test_the_images_key_of_an_issue_is_checked(value: str) -> None:
    """`images:` in the front matter is embed or link, or an error naming the line."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.md"
        path.write_text(f"---\nsubject: Hej\nimages: {value}\n---\n", encoding="utf-8")
        if value in ("embed", "link"):
            assert load_issue(path).images == value
        elif value == "":
            assert load_issue(path).images is None
        else:
            with pytest.raises(SmakomError, match=r"x\.md line 3: 'images' must be embed"):
                load_issue(path)


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
