"""Nothing left in English: the main paths of every command, run as the office runs them with
SMAKOM_LANG=sv, show no English word; with SMAKOM_LANG=en they stay English.

The language is decided when smakom starts, so each language runs in a process of its own:
one process per language runs every path (typer's CliRunner inside it), which keeps this fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.smtp_server import SmtpTestServer

ISSUE = "issues/2021-01.md"
SECRET = "s" * 32

# Words of the English interface (its messages, panels, help and click's own), none of them
# Swedish: any of them in a Swedish run is a string that was not marked or not translated.
ENGLISH = frozenset(
    re.findall(
        r"\w+",
        "the and is are was were not with from this that will would has have been for of to in "
        "on at by or an be it its yes no send sent sending error errors warning warnings usage "
        "options option commands command show found file line lines folder issue issues "
        "message messages recipient recipients subscriber subscribers unsubscribed unsubscribe "
        "written nothing every could cannot run again report failed skipped dry preview check "
        "help exit aborted try missing invalid value address addresses rows row receive size "
        "images linked embedded plain text envelope subject audience finished deferred retried "
        "uncertain interrupted stopped password keyring sign login logged stored removed "
        "mailbox bounce bounces reply replies sorted left place person fix repair "
        "damaged since source reason kind done why list lists nobody everyone already unknown "
        "key keys settings environment",
    )
)
# Words of the Swedish interface that an English run must not show.
SWEDISH = frozenset(
    re.findall(
        r"\w+",
        "användning flaggor kommandon fel varning mottagare prenumerant prenumeranter skickade "
        "provkörning utskick utskicket avbrutet inte och skicka nummerfil avregistrerade",
    )
)

# What is not interface text: code, names of files, options, settings, addresses, links.
_NOT_WORDS = re.compile(
    r"`[^`]*`"  # commands and code, as the messages quote them
    r"|\S+://\S+|\S+@\S+"  # links and addresses
    r"|--?[\w-]+"  # options
    r"|\[[\w.]+\]"  # [smtp] sections
    r"|\S*[\w-][./\\][\w.<>/\\-]+"  # file names and paths
    r"|\b\w+_\w+\b|\b\w+-\w+(?:-\w+)*\b"  # setting keys, header names, compound names
    r"|\bsmakom \w+"  # a command named without quotes
    r"|(?m:^  [a-z]+(?=  ))"  # the commands in the list of `smakom --help`
    r"|\b\w+/"  # folder names: sent/
    r"|'[^'\n]*'"  # quoted values and names
    r"|\b[2-5]\d\d [2-5]\.\d+\.\d+[^)\n]*"  # a mail server's own reply
    r"|\b[A-Z]{2,}\w*\b"  # METAVARS, TOML, HTML, SMTP
)

_RUN_EVERY_PATH = """
import json, os, sys
from typer.testing import CliRunner
import typer.main
from smakom_cli.cli import app

results = []
for args, answer, env in json.loads(sys.argv[1]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        result = CliRunner().invoke(app, args, input=answer, prog_name="smakom")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    results.append({"args": args, "code": result.exit_code, "output": result.output})
names = sorted(typer.main.get_command(app).commands)
for name in names:
    result = CliRunner().invoke(app, [name, "--help"], prog_name="smakom")
    results.append({"args": [name, "--help"], "code": result.exit_code, "output": result.output})
print(json.dumps(results))
"""

# The main paths: help, preview, check, dry run, a proof and a send to the test server,
# unsubscribing and the lists, the inbox and the sync refusing, a refused login, refusals.
PATHS: list[tuple[list[str], str, dict[str, str]]] = [
    (["--help"], "", {}),
    (["preview", ISSUE], "", {}),
    (["check", ISSUE, "--offline"], "", {}),
    (["send", ISSUE, "--dry-run"], "", {}),
    (["send", ISSUE, "--to", "redaktor@example.net"], "", {}),
    (["send", ISSUE, "--no-sync"], "kanske\nn\n", {}),
    (["send", ISSUE, "--no-sync", "--yes"], "", {}),
    (["send", ISSUE, "--no-sync", "--yes"], "", {}),
    (["unsubscribe", "ringde@kommun.se", "--reason", "ringde"], "", {}),
    (["unsubscribed"], "", {}),
    (["unsubscribed", "--check"], "", {}),
    (["subscribers"], "", {}),
    (["inbox", "--dry-run"], "", {}),
    (["sync"], "", {}),
    (["login", "--check"], "", {"SMAKOM_SMTP_PASSWORD": "fel-lösenord"}),
    (["send", ISSUE, "--dry-run", "--again"], "", {}),
    (["send", "issues/finns-inte.md", "--dry-run"], "", {}),
    (["preview", ISSUE, "--bogus"], "", {}),
    (["sendd"], "", {}),
    (["send"], "", {}),
    (["doctor", "--offline"], "", {}),
    (["resubscribe", "ringde@kommun.se"], "", {}),
    (["archive"], "", {}),
    (["init", "nytt"], "", {}),
    (["logout"], "", {}),
]


def _run_every_path(folder: Path, language: dict[str, str]) -> list[dict[str, object]]:
    unset = ("SMAKOM_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    environment = {k: v for k, v in os.environ.items() if k not in unset} | language
    environment["SMAKOM_UNSUBSCRIBE_SECRET"] = SECRET
    completed = subprocess.run(
        [sys.executable, "-c", _RUN_EVERY_PATH, json.dumps(PATHS)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=True,
    )
    results: list[dict[str, object]] = json.loads(completed.stdout.splitlines()[-1])
    return results


def _words(text: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Za-zÅÄÖåäöÉé]+", _NOT_WORDS.sub(" ", text))}


def _interface_text(output: str, issue_text: set[str]) -> set[str]:
    """The words of an output that the interface wrote (the issue's own words taken out)."""
    return _words(output) - issue_text


@pytest.fixture
def issue_words(newsletter: Path) -> set[str]:
    """The words of the example issue, its settings and lists: they are the newsletter's, not
    the interface's (the preview, the proof and the tables show them)."""
    settings = (newsletter / "smakom.toml").read_text(encoding="utf-8")
    lists = "".join(
        (newsletter / name).read_text(encoding="utf-8-sig")
        for name in ("subscribers.csv", "unsubscribed.csv")
    )
    return _words((newsletter / ISSUE).read_text(encoding="utf-8") + settings + lists)


def _report_files(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("sent/*.txt")))


@pytest.mark.slow
def test_every_path_is_swedish(
    newsletter: Path, live: SmtpTestServer, issue_words: set[str]
) -> None:
    """With SMAKOM_LANG=sv no command's help, output, error or report shows an English word."""
    results = _run_every_path(newsletter, {"SMAKOM_LANG": "sv"})
    english = {}
    for result in results:
        output = str(result["output"])
        found = _interface_text(output, issue_words) & ENGLISH
        if found:
            english[" ".join(map(str, result["args"]))] = sorted(found)
    reports = _report_files(newsletter)
    assert "Skickade: " in reports
    found = _interface_text(reports, issue_words) & ENGLISH
    if found:
        english["sent/*.txt"] = sorted(found)
    assert not english, json.dumps(english, ensure_ascii=False, indent=1)
    # The paths did what they say: the proof and the send reached the server.
    assert "redaktor@example.net" in live.recipients()
    assert len(set(live.recipients())) > 30
    unsubscribed = (newsletter / "unsubscribed.csv").read_text(encoding="utf-8")
    assert "ringde@kommun.se" in unsubscribed
    settings = (newsletter / "nytt" / "smakom.toml").read_text(encoding="utf-8")
    assert settings.startswith("# smakom.toml: allt som är likadant i varje nummer")


@pytest.mark.slow
def test_every_path_stays_english(
    newsletter: Path, live: SmtpTestServer, issue_words: set[str]
) -> None:
    """With SMAKOM_LANG=en (on a Swedish computer) the same paths show no Swedish word."""
    results = _run_every_path(newsletter, {"SMAKOM_LANG": "en", "LANG": "sv_SE.UTF-8"})
    swedish = {}
    for result in results:
        found = _interface_text(str(result["output"]), issue_words) & SWEDISH
        if found:
            swedish[" ".join(map(str, result["args"]))] = sorted(found)
    assert not swedish, swedish
    assert str(results[0]["output"]).startswith("Usage: ")
    assert "Sent: " in _report_files(newsletter)
    settings = (newsletter / "nytt" / "smakom.toml").read_text(encoding="utf-8")
    assert settings.startswith("# smakom.toml: everything that is the same in every issue")


def test_init_writes_the_same_settings_in_either_language() -> None:
    """`smakom init`'s smakom.toml says the same in Swedish as in English; only comments differ."""
    init = REPO / "templates" / "init"
    english = tomllib.loads((init / "smakom.toml").read_text(encoding="utf-8"))
    swedish = tomllib.loads((init / "smakom.sv.toml").read_text(encoding="utf-8"))
    assert english == swedish
