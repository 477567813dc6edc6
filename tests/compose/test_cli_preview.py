"""`smakom preview`, `smakom init` and the errors a user can make, through the real CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.conftest import EXAMPLES

SECTIONS = (
    "År 2021 – tillbaka till det ”normala”?",
    "Rapport från styrelsemöte",
    "Dialogmöte med utredningsansvariga",
    "På gång i SmåKom",
    "SKL Kommentus",
    "Följ oss i sociala medier",
    "Kontakt",
)


def test_preview_shows_envelope_sections_audience_and_size(
    runner: CliRunner, newsletter: Path
) -> None:
    """The example previews with its subject, every section, the audience and the HTML size."""
    result = runner.invoke(app, ["preview", "issues/2021-01.md"])
    assert result.exit_code == 0, result.output
    assert "SmåKom Nyhetsbrev Januari 2021" in result.output
    assert "Nyhetsbrev med senaste nytt." in result.output
    assert "charlotta@smakom.se" in result.output
    for heading in SECTIONS:
        assert heading in result.output
    assert re.search(r"Audience: 38 rows: 35 will receive it", result.output)
    assert re.search(r"HTML size: \d+\.\d KB", result.output)


def test_preview_writes_personalised_html(runner: CliRunner, newsletter: Path) -> None:
    """`--html FILE --as EMAIL` writes that subscriber's HTML, local images shown from disk."""
    result = runner.invoke(
        app,
        ["preview", "issues/2021-01.md", "--html", "out.html", "--as", "EVA.lindqvist@example.com"],
    )
    assert result.exit_code == 0, result.output
    html = (newsletter / "out.html").read_text(encoding="utf-8")
    assert "Eva Lindqvist" in result.output
    assert re.search(r'src="file://[^"]+styrelsen\.png"', html)
    assert "avregistrera?token=" in html


def test_preview_as_someone_not_on_the_list(runner: CliRunner, newsletter: Path) -> None:
    """Previewing as an unknown address is one clear error."""
    result = runner.invoke(app, ["preview", "issues/2021-01.md", "--as", "nobody@example.net"])
    assert result.exit_code == 1
    assert "nobody@example.net is not on the list" in result.output


def test_preview_does_not_show_cssutils_noise(runner: CliRunner, newsletter: Path) -> None:
    """CSS the validator does not know (mso-hide, @media) produces no warnings on screen."""
    result = runner.invoke(app, ["preview", "issues/2021-01.md"])
    assert result.exit_code == 0, result.output
    assert "cssutils" not in result.output
    assert "Unknown Property" not in result.output


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def make_config(folder: Path, text: str) -> None:
    write(folder / "smakom.toml", text)


def add_template(folder: Path, text: str, encoding: str = "utf-8") -> None:
    (folder / "templates").mkdir()
    (folder / "templates" / "newsletter.html").write_text(text, encoding=encoding)


EXAMPLE = "issues/2021-01.md"
BAD_INPUT = {
    "missing-issue": (lambda f: None, "issues/x.md", "no such issue file"),
    "not-key-value": (
        lambda f: write(f / "issues/x.md", "---\nsubject: Hej\nVårmötet\n---\nText\n"),
        "issues/x.md",
        r"x\.md line 3: a front matter line is 'key: value'",
    ),
    "no-subject": (
        lambda f: write(f / "issues/x.md", "---\ntitle: Hej\n---\nText\n"),
        "issues/x.md",
        "no 'subject:' line",
    ),
    "unknown-key": (
        lambda f: write(f / "issues/x.md", "---\nsubject: Hej\nauthor: Bo\n---\n"),
        "issues/x.md",
        r"x\.md line 3: unknown key 'author'",
    ),
    "unknown-template-variable": (
        lambda f: add_template(f, "{{ subjekt }}"),
        EXAMPLE,
        "unknown variable: 'subjekt' is undefined",
    ),
    "template-division-by-zero": (
        lambda f: add_template(f, "<p>\n{{ 1 / 0 }}</p>"),
        EXAMPLE,
        r"template newsletter\.html line 2: division by zero\.",
    ),
    "template-unknown-filter-in-a-branch": (
        lambda f: add_template(f, "{% if issue %}{{ issue.subject | kapitäler }}{% endif %}"),
        EXAMPLE,
        r"template newsletter\.html line 1: No filter named 'kapitäler' found\.",
    ),
    "template-saved-as-utf-16": (
        lambda f: add_template(f, "<p>{{ issue.subject }}</p>", encoding="utf-16"),
        EXAMPLE,
        r"template newsletter\.html: is not UTF-8 text; save it as UTF-8",
    ),
    "no-config": (lambda f: (f / "smakom.toml").unlink(), EXAMPLE, "No smakom.toml found"),
    "config-unknown-key": (
        lambda f: make_config(f, "[smtp]\nhots = 'x'\n"),
        EXAMPLE,
        "unknown key 'smtp.hots'",
    ),
    "config-wrong-type": (
        lambda f: make_config(f, "[smtp]\nport = 'femhundra'\n"),
        EXAMPLE,
        "'smtp.port' must be a whole number",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_clear_line(
    runner: CliRunner, newsletter: Path, case: tuple[Callable[[Path], object], str, str]
) -> None:
    """Each mistake gives one red line and exit 1, never a traceback."""
    prepare, issue, expected = case
    prepare(newsletter)
    result = runner.invoke(app, ["preview", issue])
    assert result.exit_code == 1, result.output
    assert re.search(expected, result.output), result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")


def test_debug_shows_the_traceback(runner: CliRunner, newsletter: Path) -> None:
    """`--debug` lets the exception through for whoever investigates."""
    result = runner.invoke(app, ["--debug", "preview", "issues/none.md"])
    assert result.exit_code == 1
    assert result.exception is not None
    assert "no such issue file" in str(result.exception)


def test_init_creates_a_folder_that_previews(runner: CliRunner, tmp_path: Path) -> None:
    """`smakom init DIR` makes a newsletter folder whose first issue previews as it is."""
    result = runner.invoke(app, ["init", str(tmp_path / "brev")])
    assert result.exit_code == 0, result.output
    issues = list((tmp_path / "brev" / "issues").glob("*.md"))
    assert len(issues) == 1
    assert (tmp_path / "brev" / "subscribers.csv").read_text(encoding="utf-8").startswith("email")
    config = str(tmp_path / "brev" / "smakom.toml")
    result = runner.invoke(app, ["--config", config, "preview", str(issues[0])])
    assert "Rubrik på första artikeln" in result.output
    assert "0 rows" in result.output
    # Its [unsubscribe] url is still to be filled in: the preview says what a send would do.
    assert result.exit_code == 1, result.output
    assert "no https [unsubscribe] url" in result.output
    assert "a real send would stop: 1 error (see above)" in " ".join(result.output.split())
    # Nothing to sync from in a folder that has sent nothing.
    assert "synced never" not in result.output

    result = runner.invoke(
        app, ["--config", config, "send", str(issues[0]), "--dry-run", "--outbox", "ut"]
    )
    assert result.exit_code == 1, result.output
    assert "a real send would stop: 1 error" in " ".join(result.output.split())
    assert "Dry run: nothing was sent" in result.output


def test_init_example_is_the_bundled_example(runner: CliRunner, tmp_path: Path) -> None:
    """`smakom init DIR --example` copies the January 2021 example's own files, not an outbox
    a dry run left beside them, and never over a file that is there."""
    folder = tmp_path / "prov"
    result = runner.invoke(app, ["init", str(folder), "--example"])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    bundled = sorted(
        p.relative_to(EXAMPLES).as_posix()
        for p in EXAMPLES.rglob("*")
        if p.is_file() and p.relative_to(EXAMPLES).parts[0] not in {"outbox", "sent", "site"}
    )
    assert written == bundled
    assert "issues/2021-01.md" in written
    result = runner.invoke(app, ["init", str(folder), "--example"])
    assert result.exit_code == 1
    assert "never overwrites" in result.output


def test_init_says_which_issue_it_made_and_how_to_preview_it(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue `smakom init` makes is this month's, and its last line is the command that
    previews it (the README's workflow named a January 2021 file a new folder does not have)."""
    import datetime as dt

    result = runner.invoke(app, ["init", str(tmp_path / "brev")])

    assert result.exit_code == 0, result.output
    month = f"issues/{dt.date.today():%Y-%m}.md"
    assert (tmp_path / "brev" / month).is_file()
    last = result.output.strip().splitlines()[-1]
    assert last.endswith(f"`smakom preview {month}`.")
    monkeypatch.chdir(tmp_path / "brev")
    preview = runner.invoke(app, ["preview", month])
    assert "Envelope" in preview.output, preview.output


def test_init_never_overwrites(runner: CliRunner, tmp_path: Path) -> None:
    """A second `smakom init` into the same folder refuses and changes nothing."""
    folder = tmp_path / "brev"
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    (folder / "smakom.toml").write_text("# mine\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 1
    assert "never overwrites" in result.output
    assert (folder / "smakom.toml").read_text(encoding="utf-8") == "# mine\n"


def test_every_command_has_help(runner: CliRunner) -> None:
    """Each command explains itself in `--help`."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = re.findall(r"(?m)^  (\w+)\s{2,}\S", result.output.split("Commands:")[1])
    assert {"preview", "send", "init", "check", "unsubscribe"} <= set(commands)
    for command in commands:
        help_result = runner.invoke(app, [command, "--help"])
        assert help_result.exit_code == 0, command
        assert "Usage:" in help_result.output


def finding_lines(output: str) -> list[str]:
    """The findings, without the preview's closing line that a send would stop."""
    lines = output.splitlines()
    return sorted(
        line
        for line in lines
        if line.startswith(("Error:", "Warning:")) and "a real send would stop" not in line
    )


def append_to_example(folder: Path, markdown: str) -> None:
    path = folder / EXAMPLE
    write(path, path.read_text(encoding="utf-8") + f"\n{markdown}\n")


def copy_template(folder: Path, old: str, new: str) -> None:
    from smakom_cli.compose.render import default_templates_dir

    text = (default_templates_dir() / "newsletter.html").read_text(encoding="utf-8")
    assert old in text
    add_template(folder, text.replace(old, new))


AGREEMENT_CASES = {
    "large-image": lambda f: (
        (f / "images" / "stor.png").write_bytes(b"\0" * 1_400_000),
        append_to_example(f, "![Stor bild](../images/stor.png)"),
    ),
    "missing-image": lambda f: append_to_example(f, "![Karta](../images/karta.png)"),
    "broken-css": lambda f: copy_template(f, "p { margin: 0 0 14px 0; }", "p { margin 0 }"),
    "relative-link-and-no-preheader": lambda f: (
        append_to_example(f, "Läs [mer](sida.html)."),
        write(
            f / EXAMPLE,
            (f / EXAMPLE)
            .read_text(encoding="utf-8")
            .replace("preheader: Nyhetsbrev med senaste nytt.\n", ""),
        ),
    ),
}


@pytest.mark.parametrize("case", AGREEMENT_CASES.values(), ids=AGREEMENT_CASES.keys())
def test_preview_shows_every_finding_check_makes(
    runner: CliRunner, newsletter: Path, case: Callable[[Path], object]
) -> None:
    """`smakom preview` and `smakom check` list the same errors and warnings for an issue
    (a 1.4 MB image, a broken CSS rule, a relative link) — never "No problems found" there.
    Only `check` also asks the one-click service over the network, unless --offline."""
    case(newsletter)
    previewed = runner.invoke(app, ["preview", EXAMPLE])
    checked = runner.invoke(app, ["check", EXAMPLE, "--offline"])
    # Exit 1 for both when there is an error, as a real send would stop.
    assert previewed.exit_code == checked.exit_code, previewed.output
    assert ("a real send would stop" in previewed.output) == (checked.exit_code == 1)
    assert finding_lines(checked.output), checked.output
    assert finding_lines(previewed.output) == finding_lines(checked.output)
    assert "No problems found" not in previewed.output


def test_preview_shows_the_message_size_and_decoded_headers(
    runner: CliRunner, newsletter: Path
) -> None:
    """The envelope shows From as a reader sees it (SmåKom, not =?utf-8?q?…), and the size
    of the whole message with its embedded images grows with a large photo."""
    result = runner.invoke(app, ["preview", EXAMPLE])
    assert result.exit_code == 0, result.output
    assert "From       SmåKom <nyhetsbrev@smakom.se>" in result.output
    assert "=?utf-8?" not in result.output
    small = re.search(r"Message size: (\d+\.\d) KB \(images embedded\)", result.output)
    assert small and 30 < float(small.group(1)) < 100, result.output
    (newsletter / "images" / "stor.png").write_bytes(b"\0" * 1_400_000)
    append_to_example(newsletter, "![Stor bild](../images/stor.png)")
    result = runner.invoke(app, ["preview", EXAMPLE])
    large = re.search(r"Message size: (\d+\.\d) MB \(images embedded\)", result.output)
    assert large and float(large.group(1)) == pytest.approx(1.9, abs=0.1), result.output


def test_open_without_a_browser_says_where_the_html_is(newsletter: Path, tmp_path: Path) -> None:
    """`preview --open` where no browser can be started: one red line naming the file, exit 1
    (was exit 0, silently)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    # No program on the PATH, and a BROWSER that does not exist: nothing can open the page.
    env |= {"PATH": str(tmp_path), "BROWSER": "no-such-browser"}
    done = subprocess.run(
        [sys.executable, "-m", "smakom_cli", "preview", EXAMPLE, "--open"],
        cwd=newsletter,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "no web browser could be opened on this computer" in said
    assert "2021-01.preview.html" in said
    assert (newsletter / "outbox" / "2021-01.preview.html").is_file()


def test_preview_check_and_dry_run_name_the_rows_they_leave_out(
    runner: CliRunner, newsletter: Path
) -> None:
    """The invalid and the repeated rows by line number, the first five, and how to see
    all, the same way in each (preview and check said only "1 invalid row(s) left out")."""
    expected = [
        "line 16: 'lars.angstrom@' is not an e-mail address",
        "line 9: ANNA.ABERG@Example.com is on the list already (line 2); it gets one message.",
    ]
    outputs = [
        " ".join(runner.invoke(app, args).output.split())
        for args in (
            ["preview", EXAMPLE],
            ["check", EXAMPLE, "--offline"],
            ["send", EXAMPLE, "--dry-run"],
        )
    ]
    for said in outputs:
        for line in expected:
            assert line in said, said
        assert "more rows like these" not in said

    with (newsletter / "subscribers.csv").open("a", encoding="utf-8") as rows:
        rows.write("".join(f"fel{n}@\n" for n in range(5)))
    said = " ".join(runner.invoke(app, ["check", EXAMPLE, "--offline"]).output.split())
    assert "line 16: 'lars.angstrom@'" in said
    assert "and 2 more rows like these: `smakom subscribers` lists every one." in said
    listed = " ".join(runner.invoke(app, ["subscribers"]).output.split())
    assert "line 9: ANNA.ABERG@Example.com (first on line 2)" in listed
