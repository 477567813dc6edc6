"""The example message as a spam filter sees it: Debian's SpamAssassin, local rules only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.tools import require_program


def test_the_example_fires_no_spam_rule_with_a_positive_score(
    runner: CliRunner, newsletter: Path, tmp_path: Path
) -> None:
    """`spamassassin -L -t` scores the example's first message at 0 or below, with no rule
    adding points (the hidden preheader used to fire HTML_FONT_LOW_CONTRAST)."""
    spamassassin = require_program("spamassassin", "spamassassin")
    outbox = tmp_path / "outbox"
    result = runner.invoke(app, ["send", "issues/2021-01.md", "--dry-run", "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    message = sorted(outbox.glob("*.eml"))[0].read_bytes()
    home = tmp_path / "home"  # SpamAssassin writes user preferences there
    home.mkdir()
    scored = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=message,
        capture_output=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    report = scored.stdout.decode("utf-8", "replace")
    total = re.search(r"Content analysis details:\s+\((-?\d+\.\d+) points", report)
    assert total, report[-2000:]
    table = report[report.index("pts rule name") :]
    rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", table, re.MULTILINE)
    assert rules, table
    assert [(name, points) for points, name in rules if float(points) > 0] == []
    assert float(total.group(1)) <= 0
