"""The package as a user installs and runs it: `python -m smakom_cli` and a built wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, encoding="utf-8", env=env, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_python_dash_m_runs_the_preview(newsletter: Path) -> None:
    """`python -m smakom_cli preview` works in a real process."""
    out = run([sys.executable, "-m", "smakom_cli", "preview", "issues/2021-01.md"], newsletter)
    assert "SmåKom Nyhetsbrev Januari 2021" in out
    assert "Peter Lindroth, ordförande" in out


@pytest.mark.slow
def test_a_built_wheel_renders_the_example_from_any_folder(
    newsletter: Path, tmp_path: Path
) -> None:
    """The wheel carries the default templates: installed elsewhere, it renders the example."""
    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(REPO),
        ],
        tmp_path,
    )
    wheel = next(dist.glob("smakom-*.whl"))
    target = tmp_path / "fresh-venv"
    venv.create(target, with_pip=False)
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    fresh_site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
    ).strip()
    # The dependencies come from this environment's site-packages, the package only from the
    # wheel: a .pth line adds the first after the second, and no network is needed.
    (Path(fresh_site) / "deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            fresh_site,
            str(wheel),
        ],
        tmp_path,
    )
    where = run([str(python), "-c", "import smakom_cli; print(smakom_cli.__file__)"], tmp_path)
    assert where.startswith(fresh_site)
    assert (Path(fresh_site) / "smakom_cli" / "templates" / "newsletter.html").is_file()
    env = {**os.environ, "PYTHONPATH": ""}
    out = run(
        [
            str(python),
            "-m",
            "smakom_cli",
            "preview",
            "issues/2021-01.md",
            "--html",
            str(tmp_path / "o.html"),
        ],
        newsletter,
        env,
    )
    assert "Rapport från styrelsemöte" in out
    assert "Styrelsen, fr v;" in (tmp_path / "o.html").read_text(encoding="utf-8")
