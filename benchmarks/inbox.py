"""`smakom inbox` sorting 200 new messages, with an empty and with a 20,000-line `inbox.jsonl`.

A run's cost must grow with its new messages, not with the log (issue #21: 5 s against 92 s
before the log appended). Measures the real command (a subprocess) against a real Dovecot on
127.0.0.1 (the tests' `tests/imap_server.py`), with a fresh mailbox for every run: bounces,
soft bounces, auto-replies, requests and replies from the test fixtures, each with a
Message-ID of its own. Prints one Markdown row per log size and the ratio (target: 1.5).

    .venv/bin/python benchmarks/inbox.py [--messages 200] [--log-lines 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from smakom_cli.delivery.journal import Journal, JournalHeader  # noqa: E402
from smakom_cli.delivery.outcome import Outcome  # noqa: E402
from tests.imap_server import PASSWORD, DovecotServer, running_dovecot  # noqa: E402
from tests.returns.test_bounces import SECRET  # noqa: E402
from tests.smtp_server import HOST, make_certificates  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "bounces"
TARGET = 1.5


def newsletter(work: Path, dovecot: DovecotServer, user: str, log_lines: int) -> Path:
    """The example newsletter, its issue sent to everyone, the mailbox and a log of this size."""
    folder = work / f"newsletter-{log_lines}-{user.partition('@')[0]}"
    shutil.copytree(REPO / "examples", folder)
    config = folder / "smakom.toml"
    values = {
        "host": HOST,
        "port": dovecot.imaps_port,
        "security": "tls",
        "username": user,
        "ca_file": str(dovecot.ca_file),
    }
    table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    text = config.read_text(encoding="utf-8").partition("\n[inbox]\n")[0]
    config.write_text(f"{text}\n[inbox]\n{table}\n", encoding="utf-8")
    rows = (folder / "subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    keys = sorted({row.split(";")[0].strip().lower() for row in rows if "@example." in row})
    header = JournalHeader("2021-01", "Nyhetsbrev 2021-01", "2021-01" * 8)
    with Journal.open(folder / "sent" / "2021-01.jsonl", header, list_name="subscribers.csv") as j:
        for key in keys:
            j.mark_ending(j.mark_in_flight(key))
            j.record(Outcome.SENT, key)
        j.mark_complete()
    with (folder / "inbox.jsonl").open("w", encoding="utf-8") as log:
        for number in range(1, log_lines + 1):
            entry = {
                "time": "2020-06-01T08:00:00Z",
                "folder": "INBOX",
                "uidvalidity": 1,
                "uid": number,
                "message_id": f"<old-{number}@example.net>",
                "kind": "soft" if number % 3 else "auto-reply",
                "addresses": [keys[number % len(keys)]],
                "issue": f"2020-{number % 12 + 1:02d}",
                "reason": "552 5.2.2 mailbox full",
                "action": "move",
                "to": "smakom/studsar",
            }
            log.write(json.dumps(entry) + "\n")
    return folder


def fill(dovecot: DovecotServer, user: str, count: int) -> None:
    """`count` messages made from the fixtures, each with a Message-ID of its own."""
    shapes = sorted(FIXTURES.glob("*.eml"))
    with dovecot.client(user) as client:
        for number in range(count):
            raw = shapes[number % len(shapes)].read_bytes()
            unique = f"Message-ID: <bench-{number}@example.net>".encode()
            raw = re.sub(rb"^Message-I[Dd]: \S+", unique, raw, count=1, flags=re.MULTILINE)
            client.append("INBOX", raw)


def timed_run(folder: Path) -> float:
    env = dict(os.environ, SMAKOM_IMAP_PASSWORD=PASSWORD, SMAKOM_UNSUBSCRIBE_SECRET=SECRET.decode())
    smakom = [sys.executable, "-m", "smakom_cli", "inbox"]
    start = time.perf_counter()
    result = subprocess.run(
        smakom, cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"smakom inbox failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--log-lines", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dovecot_program = shutil.which("dovecot") or "/usr/sbin/dovecot"
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    work = Path(tempfile.mkdtemp(prefix="smakom-inbox-benchmark-"))
    try:
        certificates = make_certificates(work)
        with running_dovecot(dovecot_program, doveadm, certificates) as dovecot:
            times: dict[int, list[float]] = {0: [], args.log_lines: []}
            for _repeat in range(args.repeats):
                for lines, measured in times.items():
                    user = dovecot.new_user()
                    folder = newsletter(work, dovecot, user, lines)
                    fill(dovecot, user, args.messages)
                    measured.append(timed_run(folder))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    empty, full = (statistics.median(t) for t in times.values())
    ratio = full / empty
    print("| Measure | Result | Target |")
    print("|---|---|---|")
    print(f"| `smakom inbox`, {args.messages} new messages, empty inbox.jsonl | {empty:.2f} s | |")
    print(
        f"| `smakom inbox`, {args.messages} new messages, {args.log_lines:,}-line inbox.jsonl "
        f"| {full:.2f} s ({ratio:.2f}× the empty log) | ≤ {TARGET}× "
        f"({'met' if ratio <= TARGET else 'MISSED'}) |"
    )


if __name__ == "__main__":
    main()
