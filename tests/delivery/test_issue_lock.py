"""One send of an issue at a time, whatever its file is called (#19).

Two `smakom send` processes of the same issue, one through a renamed copy, started a random
0-200 ms apart: one sends, the other is refused before it plans or finds the issue sent;
nobody gets it twice. The processes are forked from a server that has already imported
smakom, so twenty races take seconds, not the minute twenty cold starts would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from smakom_cli.delivery.journal import JournalHeader, hold_issue
from smakom_cli.errors import SmakomError
from tests.smtp_server import SmtpTestServer, use_server

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="forked smakom processes need a POSIX forkserver"
)

ROUNDS = 20
RECIPIENTS = 6
# A short issue: the race is in the planning and sending, not in rendering the seed's text.
SHORT_ISSUE = "---\nsubject: Nyhetsbrev Januari 2021\n---\n\n## På gång\n\nKort om januari.\n"
# What a send imports, loaded once in the server the sends are forked from.
PRELOAD = [
    "smakom_cli.cli",
    "smakom_cli.delivery.workflow",
    "smakom_cli.delivery.mailing",
    "smakom_cli.delivery.sender",
    "smakom_cli.delivery.check",
    "smakom_cli.compose.render",
    "smakom_cli.signin.credentials",
    "premailer",
]
SECRET = "en-hemlig-nyckel-for-lankarna-2021-ragunda"


def _smakom(folder: str, args: list[str], env: dict[str, str], start: float, out: str) -> None:
    """One `smakom` command in this (forked) process, its output in `out`, its exit code ours."""
    os.environ.update(env)
    os.chdir(folder)
    with Path(out).open("wb") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
    time.sleep(max(0.0, start - time.time()))
    from smakom_cli.cli import app

    try:
        app(args, prog_name="smakom")
    except SystemExit as exit:
        sys.stdout.flush()
        os._exit(exit.code if isinstance(exit.code, int) else 1)
    os._exit(0)


def _round_folder(template: Path, folder: Path, number: int) -> None:
    """A newsletter folder with a small list of its own and a renamed copy of the issue."""
    shutil.copytree(template, folder, ignore=shutil.ignore_patterns("sent", "outbox", ".smakom"))
    rows = [f"r{number}.p{n}@example.org;Person {n};Kommun {n}" for n in range(RECIPIENTS)]
    (folder / "subscribers.csv").write_text(
        "email;name;organisation\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    for name in ("2021-01.md", "2021-01-final.md"):
        (folder / "issues" / name).write_text(SHORT_ISSUE, encoding="utf-8")


@pytest.mark.slow
def test_a_renamed_copy_sent_at_the_same_time_mails_nobody_twice(
    tmp_path: Path, newsletter: Path, live: SmtpTestServer
) -> None:
    """cp 2021-01.md 2021-01-final.md; both sent at once, 20 times with random offsets:
    each address gets the issue once, and the refused send names the run that holds it."""
    live.faults.delay_data = 0.02  # six messages take over 120 ms: the sends overlap
    env = {
        "SMAKOM_SMTP_PASSWORD": live.password,
        "SMAKOM_UNSUBSCRIBE_SECRET": SECRET,
        "COLUMNS": "200",
    }
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    chance = random.Random()
    refused = 0
    for number in range(ROUNDS):
        folder = tmp_path / f"round-{number}"
        _round_folder(newsletter, folder, number)
        use_server(folder, live)
        offset = chance.uniform(0.0, 0.2)
        start = time.time() + 0.05
        children = []
        for issue, delay in (("2021-01.md", 0.0), ("2021-01-final.md", offset)):
            args = ["send", f"issues/{issue}", "--no-sync", "--yes"]
            out = str(folder / f"{issue}.out")
            child = context.Process(
                target=_smakom, args=(str(folder), args, env, start + delay, out)
            )
            child.start()
            children.append((child, out))
        for child, _ in children:
            child.join(timeout=60)
        outputs = [Path(out).read_text(encoding="utf-8") for _, out in children]
        codes = [child.exitcode for child, _ in children]
        mine = [r for r in live.recipients() if r.startswith(f"r{number}.")]
        assert sorted(mine) == sorted(set(mine)), (offset, outputs)
        assert len(mine) == RECIPIENTS, (offset, outputs)
        assert sorted(codes) in ([0, 0], [0, 1]), (offset, codes, outputs)
        if 1 in codes:
            refusal = " ".join(outputs[codes.index(1)].split())
            assert "Another smakom is sending this issue right now" in refusal, refusal
            assert "process" in refusal and "Nothing was sent" in refusal, refusal
            refused += 1
    assert refused, "no two sends ever overlapped: the race was not tested"


def test_the_lock_names_the_issue_by_its_name_and_by_its_text(tmp_path: Path) -> None:
    """An edited issue under the same name, or the same text under another, is held too;
    another issue is not, and a lock let go can be taken again."""
    first = JournalHeader("2021-01", "Nyhetsbrev", "f" * 64)
    same_name = JournalHeader("2021-01", "Nyhetsbrev (rättad)", "e" * 64)
    same_text = JournalHeader("2021-01-final", "Nyhetsbrev", "f" * 64)
    other = JournalHeader("2021-02", "Februari", "d" * 64)
    with hold_issue(tmp_path, first, issue_file=Path("issues/2021-01.md")):
        for header in (same_name, same_text):
            with (
                pytest.raises(SmakomError, match=r"issues/2021-01\.md, process \d+"),
                hold_issue(tmp_path, header, issue_file=Path("x.md")),
            ):
                pass
        with hold_issue(tmp_path, other, issue_file=Path("issues/2021-02.md")):
            pass
    with hold_issue(tmp_path, same_text, issue_file=Path("issues/2021-01-final.md")):
        pass
