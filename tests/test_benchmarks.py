"""The benchmark still runs: `benchmarks/run.py --quick` end to end, in this environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

EXPECTED_ROWS = (
    "`smakom send --dry-run`, N=20",
    "once per issue: Markdown",
    "once per issue: layout",
    "once per issue: CSS inlining",
    "per message: reading the list",
    "per message: personalisation",
    "per message: MIME assembly",
    "per message: writing the .eml file",
    "aiosmtpd sink: smakom's fixed cost",
    "aiosmtpd sink, 1 connection(s): smakom / bare smtplib",
    "aiosmtpd sink, 2 connection(s): smakom / bare smtplib",
    "aiosmtpd sink, 4 connection(s): smakom / bare smtplib",
    "aiosmtpd sink, 1 connection(s): durable ceiling",
    "aiosmtpd sink, 4 connection(s): durable ceiling",
    "aiosmtpd sink, 1 connection: asking the one-click service every 60 s",
    "aiosmtpd sink, 1 connection: asking the one-click service every 0.1 s",
    "peak RSS, dry run N=20 ",
    "peak RSS, dry run N=200 ",
    "`smakom --help`",
    "`smakom preview issues/2021-01.md`",
    "`preview --watch`: re-render after a save, in the running process",
    "`smakom preview --watch`: start to the page's address printed",
    "`smakom preview --watch`: a save to the new version served",
)


@pytest.mark.slow
def test_quick_benchmark_prints_every_row(tmp_path: Path) -> None:
    """--quick measures a dry run, sends to a local sink, memory, start-up and the watched
    preview, in one table."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # it takes about 8 s on two cores; a hang must not stall the suite
        check=False,
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "cores" in table
    assert "Python" in table
    for row in EXPECTED_ROWS:
        assert row in table, f"missing row {row!r} in:\n{table}"
    assert "| 4 Peer" not in table  # --quick leaves mailmerge out
