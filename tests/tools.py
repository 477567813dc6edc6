"""What many tests need: the real programs (Dovecot, Chromium, smtp-sink), found on the PATH,
a fingerprint of every file in a folder, and the one red line of a failed command.

Where a program is missing a test skips and says why; in CI (`CI=true`) a missing one is a failure,
because `.ci/run` installs them all and a skip there would hide a broken install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

# Debian installs some daemons outside a normal user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/usr/lib/postfix/sbin", "/usr/lib/dovecot")


def require_program(name: str, package: str) -> str:
    """The full path of `name`; skips the test (fails it in CI) when it is not installed."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_EXTRA_DIRS))
    if found:
        return found
    reason = f"{name} is not installed (Debian package {package}; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI every real server must run: {reason}")
    pytest.skip(reason)


def file_digests(root: Path) -> dict[str, str]:
    """Every file under `root` by its content: equal before and after when nothing was written.

    Empty lock files are left out: a lock taken and let go (a send's, before its prompt)
    holds no data.
    """
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not (path.suffix == ".lock" and path.stat().st_size == 0)
    }


def one_error_line(output: str) -> str:
    """The command's one "Error:" line (exactly one, and no traceback)."""
    [line] = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in output
    return line
