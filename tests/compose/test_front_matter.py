"""Front matter an office user can write: a text value is what follows the colon, to the end
of the line, `#`, `:` and brackets included; a value in quotes (as written for YAML) reads
the same without them."""

from __future__ import annotations

import tempfile
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.compose.issue import load_issue
from smakom_cli.errors import SmakomError

OFFICE_SUBJECTS = [
    "Vårmötet #2 och mer",
    "SmåKom informerar: Vårmötet blir digitalt",
    "[TEST] Hej",
    "{Nytt} & 100 % 'säkert' – \"citat\"",
    "- punkt, !viktigt, *stjärna*, @alla, `kod`, |rör|, >pil",
]


def issue_with(tmp_path: Path, front: str) -> Path:
    path = tmp_path / "2021-03.md"
    path.write_text(f"---\n{front}---\n\n# Nytt\n\nText.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("subject", OFFICE_SUBJECTS)
def test_a_subject_is_the_text_after_the_colon(tmp_path: Path, subject: str) -> None:
    """`subject: Vårmötet #2 och mer` is that whole subject (YAML cut it at '#', refused ':'
    and '[')."""
    issue = load_issue(issue_with(tmp_path, f"subject: {subject}\npreheader: {subject}\n"))
    assert issue.subject == subject
    assert issue.preheader == subject
    assert issue.title == subject


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ('"Vårmötet #2: och mer"', "Vårmötet #2: och mer"),
        ("'Vårmötet #2: och mer'", "Vårmötet #2: och mer"),
        ("'Bo''s brev'", "Bo's brev"),
        (r'"Ett \"citat\" och \\"', 'Ett "citat" och \\'),
        ('"Hej" sa hon', '"Hej" sa hon'),
    ],
)
def test_a_value_in_quotes_reads_as_yaml_read_it(tmp_path: Path, written: str, meant: str) -> None:
    """Quotes around the whole value (the YAML way) are taken off; quotes inside are text."""
    assert load_issue(issue_with(tmp_path, f"subject: {written}\n")).subject == meant


def test_comment_lines_and_every_key(tmp_path: Path) -> None:
    """A line starting with '#' is a comment; date and images are read from the same lines."""
    issue = load_issue(
        issue_with(
            tmp_path,
            "# Mars\nsubject: Nyhetsbrev #3\n\ntitle:   Mars: våren  \ndate: 2021-03-05\n"
            "banner: [Nyhetsbrev]\nimages: link\npreheader:\n",
        )
    )
    assert (issue.subject, issue.title, issue.banner) == (
        "Nyhetsbrev #3",
        "Mars: våren",
        "[Nyhetsbrev]",
    )
    assert (str(issue.date), issue.images, issue.preheader) == ("2021-03-05", "link", "")


@pytest.mark.parametrize(
    ("front", "says"),
    [
        ("subject: Hej\nsubject: Igen\n", "line 3: 'subject' is given twice (first on line 2)"),
        ("subject: Hej\n  och mer\n", "line 3: each value is on the same line as its key"),
        ("subject Hej\n", "line 2: a front matter line is 'key: value'"),
        ("subject: Hej\u2028Bcc: x@y.z\n", "line 2: 'subject' must be one line of text"),
        ("subject: Hej\rBcc: x@y.z\n", "line 2: 'subject' must be one line of text"),
        ('subject: "Hej\\r\\nBcc: x@y.z"\n', "line 2: 'subject' must be one line of text"),
        ("preheader: Hej\x00\nsubject: Hej\n", "line 2: a NUL character, which no text has"),
        ("date: 2021-02-30\nsubject: Hej\n", "line 2: 'date' must be a date like 2021-01-15"),
        ("subject:\n", "no 'subject:' line"),
    ],
)
def test_what_cannot_be_meant_is_one_line_naming_the_line(
    tmp_path: Path, front: str, says: str
) -> None:
    """Each mistake names the file, the line and the key, and says what to write."""
    with pytest.raises(SmakomError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_issue(issue_with(tmp_path, front))


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1))
def test_any_line_of_text_is_read_back_as_written(text: str) -> None:
    """Whatever one line holds (bar spaces at its ends and quotes around all of it)."""
    text = text.strip(" \t")
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"
    if not text or quoted or not text.isprintable():
        return
    with tempfile.TemporaryDirectory() as folder:
        assert load_issue(issue_with(Path(folder), f"subject: {text}\n")).subject == text


def test_the_subjects_go_out_as_written(runner: CliRunner, newsletter: Path) -> None:
    """Through the CLI: the dry run's messages carry the subject exactly as written."""
    path = newsletter / "issues" / "2021-01.md"
    text = path.read_text(encoding="utf-8")
    old = "subject: SmåKom Nyhetsbrev Januari 2021\n"
    assert old in text
    path.write_text(text.replace(old, f"subject: {OFFICE_SUBJECTS[1]} #2 [TEST]\n"), "utf-8")
    result = runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run"])
    assert "Traceback" not in result.output
    first = sorted((newsletter / "outbox" / "2021-01").glob("*.eml"))[0]
    message = BytesParser(policy=policy.default).parsebytes(first.read_bytes())
    assert message["Subject"] == f"{OFFICE_SUBJECTS[1]} #2 [TEST]"
