"""`smakom check`: each problem found before sending, named with where to fix it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from smakom_cli.cli import app
from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.render import default_templates_dir, render_issue
from smakom_cli.config import load_config
from smakom_cli.delivery.check import GMAIL_CLIP_BYTES, IMAGE_MAX_BYTES, Finding
from smakom_cli.delivery.mailing import prepare

ISSUE = "issues/2021-01.md"


def check(runner: CliRunner) -> Result:
    return runner.invoke(app, ["check", ISSUE, "--offline"])


def append_to_issue(folder: Path, markdown: str) -> int:
    """Add a paragraph at the end of the example issue; the file line it starts on."""
    path = folder / ISSUE
    text = path.read_text(encoding="utf-8")
    path.write_text(f"{text}\n{markdown}\n", encoding="utf-8")
    return len(text.splitlines()) + 2


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def folder_template(folder: Path, name: str, old: str = "", new: str = "") -> None:
    """The shipped template `name` copied into the folder's templates/, `old` replaced."""
    target = folder / "templates" / name
    target.parent.mkdir(exist_ok=True)
    target.write_text((default_templates_dir() / name).read_text(encoding="utf-8"), "utf-8")
    if old:
        replace_in(target, old, new)


def findings_for(folder: Path) -> list[Finding]:
    """The check's findings for the example issue, as its first subscriber would get it."""
    return prepare(load_config(folder / "smakom.toml"), folder / ISSUE, secret=bytes(32)).check()


def test_the_example_is_ready_to_send(runner: CliRunner, newsletter: Path) -> None:
    """The bundled example passes the check without a single finding."""
    result = check(runner)
    assert "is ready to send" in result.output
    assert "Error" not in result.output
    assert "Warning: 2021" not in result.output
    assert result.exit_code == 0, result.output


def test_image_without_alt_text(runner: CliRunner, newsletter: Path) -> None:
    """An image with empty alt text is an error naming the issue line."""
    line = append_to_issue(newsletter, "![](../images/styrelsen.png)")
    result = check(runner)
    assert f"Error: 2021-01.md line {line}: the image ../images/styrelsen.png has no alt" in (
        result.output
    )
    assert result.exit_code == 1, result.output


def test_relative_link(runner: CliRunner, newsletter: Path) -> None:
    """A link that is not a full address would not work in a mail; the check names it."""
    line = append_to_issue(newsletter, "Läs [mer](sida.html).")
    result = check(runner)
    assert f"2021-01.md line {line}: the link 'sida.html' is not a full" in result.output
    assert result.exit_code == 1, result.output


def test_relative_link_with_a_query_names_the_issue_line(
    runner: CliRunner, newsletter: Path
) -> None:
    """A relative link with `&` in it is shown as written and found in the issue, not
    blamed on the template."""
    line = append_to_issue(newsletter, "[Sök](sok.html?a=1&b=2)")
    result = check(runner)
    assert f"2021-01.md line {line}: the link 'sok.html?a=1&b=2' is not a full" in (result.output)
    assert result.exit_code == 1, result.output


def test_link_in_the_configuration(runner: CliRunner, newsletter: Path) -> None:
    """A web site in smakom.toml without https:// is an error pointing at the configuration."""
    replace_in(newsletter / "smakom.toml", 'website = "https://', 'website = "')
    result = check(runner)
    assert "smakom.toml: 'contact.website' must be a full address starting with https://" in (
        result.output
    )
    assert result.exit_code == 1, result.output


def test_missing_local_image(runner: CliRunner, newsletter: Path) -> None:
    """An image file that does not exist is an error naming the issue line."""
    line = append_to_issue(newsletter, "![Karta över kommunerna](../images/karta.png)")
    result = check(runner)
    assert f"2021-01.md line {line}: the image " in result.output
    assert "karta.png does not exist" in result.output
    assert result.exit_code == 1, result.output


def test_missing_logo(runner: CliRunner, newsletter: Path) -> None:
    """A logo file that does not exist is an error pointing at smakom.toml."""
    (newsletter / "images" / "logo.png").unlink()
    result = check(runner)
    assert "smakom.toml [brand] logo: the image " in result.output
    assert result.exit_code == 1, result.output


def test_large_image_is_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """An image over 1 MB goes into every message: a warning, and the check still passes."""
    (newsletter / "images" / "stor.png").write_bytes(b"\0" * (IMAGE_MAX_BYTES + 1))
    line = append_to_issue(newsletter, "![Stor bild](../images/stor.png)")
    result = check(runner)
    assert f"Warning: 2021-01.md line {line}: the image stor.png is 1.0 MB" in result.output
    assert result.exit_code == 0, result.output


def test_oversized_body(runner: CliRunner, newsletter: Path) -> None:
    """An issue whose HTML is over 102 KB, where Gmail cuts it, is an error."""
    paragraph = "Ett långt stycke text som fyller ut brevet tills Gmail klipper det. " * 4
    append_to_issue(newsletter, f"{paragraph}\n\n" * (GMAIL_CLIP_BYTES // len(paragraph)))
    result = check(runner)
    assert "Error: 2021-01.md: the HTML is" in result.output
    assert "Gmail cuts messages over 102 KB" in result.output
    assert result.exit_code == 1, result.output


def test_long_subject_is_only_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """A subject longer than inboxes show is a warning; the issue can still be sent."""
    subject = "SmåKom Nyhetsbrev Januari 2021 – om möten, utredningar, vindkraft, posten och mer"
    replace_in(newsletter / ISSUE, "subject: SmåKom Nyhetsbrev Januari 2021", f"subject: {subject}")
    result = check(runner)
    assert f"Warning: 2021-01.md: the subject is {len(subject)} characters" in result.output
    assert "is ready to send" in result.output
    assert result.exit_code == 0, result.output


def test_missing_preheader_is_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """An issue without a preheader gets a warning and still passes."""
    replace_in(newsletter / ISSUE, "preheader: Nyhetsbrev med senaste nytt.\n", "")
    result = check(runner)
    assert "Warning: 2021-01.md: no preheader" in result.output
    assert result.exit_code == 0, result.output


def test_logo_without_alt_text_is_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """A logo without alt text is a warning pointing at smakom.toml."""
    replace_in(newsletter / "smakom.toml", 'logo_alt = "SmåKom"', 'logo_alt = ""')
    result = check(runner)
    assert "Warning: smakom.toml: [brand] logo_alt is empty" in result.output
    assert result.exit_code == 0, result.output


def test_leftover_placeholder_in_a_folder_template(runner: CliRunner, newsletter: Path) -> None:
    """Template text such as {{ x }} left in the mail is an error blaming the template."""
    folder_template(
        newsletter, "newsletter.html", "</body>", "<p>{% raw %}{{ x }}{% endraw %}</p></body>"
    )
    result = check(runner)
    assert "Error: the template: a template placeholder ({{ … }}) was left" in result.output
    assert result.exit_code == 1, result.output


def test_empty_plain_text(runner: CliRunner, newsletter: Path) -> None:
    """A plain-text template that renders nothing is an error, as is its missing unsubscribe
    link."""
    (newsletter / "templates").mkdir()
    (newsletter / "templates" / "newsletter.txt").write_text("{# nothing #}\n", "utf-8")
    result = check(runner)
    assert "Error: the template: the plain-text part is empty." in result.output
    assert "Error: the template: the plain text has no {{ unsubscribe_url }}" in result.output
    assert result.exit_code == 1, result.output


def test_html_without_unsubscribe_link(runner: CliRunner, newsletter: Path) -> None:
    """A mail template whose footer lost the personal unsubscribe link is an error."""
    folder_template(
        newsletter, "newsletter.html", "{{ unsubscribe_url }}", "https://www.smakom.se/"
    )
    result = check(runner)
    assert "Error: the template: the HTML has no {{ unsubscribe_url }}" in result.output
    assert result.exit_code == 1, result.output


def test_no_unsubscribe_configured(runner: CliRunner, newsletter: Path) -> None:
    """Without [unsubscribe] the check names what to set and exits 1."""
    replace_in(newsletter / "smakom.toml", 'mailto = "avregistrera@smakom.se"', "")
    replace_in(newsletter / "smakom.toml", 'url = "https://www.smakom.se/avregistrera"', "")
    result = check(runner)
    assert "Error: smakom.toml: no [unsubscribe] mailto or url" in result.output
    assert result.exit_code == 1, result.output


def test_no_unsubscribe_configured_is_a_finding(newsletter: Path) -> None:
    """Without [unsubscribe] the check's findings say the List-Unsubscribe header is missing."""
    replace_in(newsletter / "smakom.toml", 'mailto = "avregistrera@smakom.se"', "")
    replace_in(newsletter / "smakom.toml", 'url = "https://www.smakom.se/avregistrera"', "")
    assert Finding(
        "error",
        "smakom.toml",
        "no [unsubscribe] mailto or url: the List-Unsubscribe header would be missing.",
    ) in findings_for(newsletter)


def test_invalid_sender_addresses(runner: CliRunner, newsletter: Path) -> None:
    """An invalid sender or reply-to address is an error naming the key in smakom.toml."""
    replace_in(newsletter / "smakom.toml", '"charlotta@smakom.se"\n', '"charlotta.smakom.se"\n')
    result = check(runner)
    assert "smakom.toml: 'sender.reply_to' must be an e-mail address, not 'charlotta.smakom" in (
        result.output
    )
    assert result.exit_code == 1, result.output
    replace_in(newsletter / "smakom.toml", 'email = "nyhetsbrev@smakom.se"', 'email = "nyhet@"')
    result = check(runner)
    assert "smakom.toml: 'sender.email' must be an e-mail address, not 'nyhet@'" in result.output
    assert result.exit_code == 1, result.output


def test_missing_sender_address(newsletter: Path) -> None:
    """A newsletter without a sender address cannot be sent: an error naming the key."""
    replace_in(newsletter / "smakom.toml", 'email = "nyhetsbrev@smakom.se"', "")
    assert Finding("error", "smakom.toml", "'sender.email' is not set.") in findings_for(newsletter)


def test_no_web_base_url_is_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """Without web_base_url the mail has no web-version link: a warning, still sendable."""
    replace_in(newsletter / "smakom.toml", 'web_base_url = "https://www.smakom.se/nyhetsbrev"', "")
    result = check(runner)
    assert "Warning: smakom.toml: [newsletter] web_base_url is not set" in result.output
    assert result.exit_code == 0, result.output


def test_findings_for_the_example_are_empty(newsletter: Path) -> None:
    """The library call behind `smakom check` finds nothing wrong with the example."""
    assert findings_for(newsletter) == []


def test_a_broken_css_rule_in_a_folder_template_is_a_warning(
    runner: CliRunner, newsletter: Path
) -> None:
    """A rule the CSS parser cannot read (here a missing colon) is named with the folder's
    template instead of being dropped in silence; the issue can still be sent."""
    folder_template(newsletter, "newsletter.html", "p { margin: 0 0 14px 0; }", "p { margin 0 }")
    result = check(runner)
    assert (
        "Warning: templates/newsletter.html: a CSS rule cannot be read and is left out: "
        'Property: No ":" after name found: margin 0'
    ) in result.output
    assert result.exit_code == 0, result.output


def test_a_broken_rule_in_the_kept_style_block_is_a_warning(newsletter: Path) -> None:
    """The dark-mode and small-screen rules are kept as written, and checked all the same."""
    folder_template(
        newsletter, "newsletter.html", ".im { color: inherit !important; }", ".im { color inherit }"
    )
    findings = findings_for(newsletter)
    assert [f.where for f in findings] == ["templates/newsletter.html"] * len(findings)
    assert any("color inherit" in f.message for f in findings), findings


def test_the_shipped_template_has_no_css_problems(newsletter: Path) -> None:
    """Copied unchanged into the folder (so it is checked), the shipped template has no CSS
    problems: Outlook's and Apple's own properties (mso-*, -webkit-*) are not errors."""
    folder_template(newsletter, "newsletter.html")
    config = load_config(newsletter / "smakom.toml")
    rendered = render_issue(load_issue(newsletter / ISSUE), config)
    assert rendered.template_name == "templates/newsletter.html"
    assert rendered.css_problems == ()


def test_a_large_message_is_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """Embedded images that make the message over 500 KB: a warning suggesting to link them."""
    (newsletter / "images" / "stor.png").write_bytes(b"\0" * 600_000)
    append_to_issue(newsletter, "![Stor bild](../images/stor.png)")
    result = check(runner)
    assert "Warning: 2021-01.md: the message is 8" in result.output
    assert "KB and goes to every subscriber (keep it under 500 KB); link the images" in (
        result.output
    )
    assert result.exit_code == 0, result.output


def test_a_message_over_the_providers_limit_is_an_error(
    runner: CliRunner, newsletter: Path
) -> None:
    """Over `[smtp] max_message_mb` the provider would refuse every message: an error."""
    replace_in(newsletter / "smakom.toml", "retry_attempts = 5", "max_message_mb = 0.5")
    (newsletter / "images" / "stor.png").write_bytes(b"\0" * 600_000)
    append_to_issue(newsletter, "![Stor bild](../images/stor.png)")
    result = check(runner)
    assert "Error: 2021-01.md: the message is 8" in result.output
    assert "over the mail provider's limit of 0.5 MB ([smtp] max_message_mb)" in result.output
    assert result.exit_code == 1, result.output


def test_a_bad_provider_limit_is_refused(runner: CliRunner, newsletter: Path) -> None:
    """`max_message_mb = 0` is an error naming the key, before anything is rendered."""
    replace_in(newsletter / "smakom.toml", "retry_attempts = 5", "max_message_mb = 0")
    result = check(runner)
    assert "'smtp.max_message_mb' must be a number above 0" in result.output
    assert result.exit_code == 1, result.output


def test_an_unsubscribe_link_too_long_for_any_server_is_an_error(
    runner: CliRunner, newsletter: Path
) -> None:
    """An unsubscribe link over 998 characters cannot be folded and every server would
    refuse the message: an error naming the header and where to shorten it."""
    path = "/avregistrera?kampanj=" + "nyhetsbrev-januari-" * 55
    replace_in(
        newsletter / "smakom.toml",
        'url = "https://www.smakom.se/avregistrera"',
        f'url = "https://www.smakom.se{path}"',
    )
    result = check(runner)
    assert "Error: smakom.toml: the List-Unsubscribe header has a line of" in result.output
    assert "Shorten [unsubscribe] url and mailto." in result.output
    assert result.exit_code == 1, result.output


def test_a_2000_character_subject_is_only_a_warning(runner: CliRunner, newsletter: Path) -> None:
    """A very long subject is folded over lines, so it stays a warning about its length."""
    subject = " ".join(["Nyhetsbrev från SmåKom"] * 87)
    replace_in(newsletter / ISSUE, "subject: SmåKom Nyhetsbrev Januari 2021", f"subject: {subject}")
    result = check(runner)
    assert f"Warning: 2021-01.md: the subject is {len(subject)} characters" in result.output
    assert "Error" not in result.output
    assert result.exit_code == 0, result.output
