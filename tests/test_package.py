"""The package as a user installs and runs it: `python -m smakom_cli`, and a built wheel and
sdist installed as a program in an environment of their own, outside the repository."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, encoding="utf-8", env=env, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@dataclass(frozen=True)
class Installed:
    """The wheel and sdist built from the checkout, and the wheel installed in a fresh venv."""

    wheel: Path
    sdist: Path
    smakom: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built once a session with the standard frontend (`python -m build`: the sdist, then the
    wheel from the sdist), and the wheel installed as a user's pipx would, in its own venv."""
    root = tmp_path_factory.mktemp("package")
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], root)
    [wheel] = dist.glob("smakom-*.whl")
    [sdist] = dist.glob("smakom-*.tar.gz")
    target = root / "fresh-venv"
    venv.create(target, with_pip=False)
    bin_dir = target / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    fresh_site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root
    ).strip()
    # The dependencies come from this environment's site-packages, the package only from the
    # wheel: a .pth line adds the first after the second, and no network is needed.
    (Path(fresh_site) / "deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    run([*pip, "--no-deps", str(wheel)], root)
    env = {**os.environ, "PYTHONPATH": "", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return Installed(wheel, sdist, bin_dir / ("smakom.exe" if os.name == "nt" else "smakom"), env)


def test_python_dash_m_runs_the_preview(newsletter: Path) -> None:
    """`python -m smakom_cli preview` works in a real process."""
    out = run([sys.executable, "-m", "smakom_cli", "preview", "issues/2021-01.md"], newsletter)
    assert "SmåKom Nyhetsbrev Januari 2021" in out
    assert "Peter Lindroth, ordförande" in out


@pytest.mark.slow
def test_the_installed_program_starts_a_newsletter_and_dry_runs_it(
    installed: Installed, tmp_path: Path
) -> None:
    """Installed from the wheel, outside the repository: `smakom init x`, then a dry run in it,
    which writes the outbox and names what smakom.toml still lacks for a real send."""
    out = run([str(installed.smakom), "init", "x"], tmp_path, installed.env)
    assert "smakom.toml" in out
    folder = tmp_path / "x"
    [issue] = (folder / "issues").glob("*.md")
    completed = subprocess.run(
        [str(installed.smakom), "send", f"issues/{issue.name}", "--dry-run"],
        cwd=folder,
        env=installed.env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Dry run" in completed.stdout
    assert "[unsubscribe] url" in completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    assert (folder / "outbox" / issue.stem).is_dir()


@pytest.mark.slow
def test_the_installed_program_carries_the_example(installed: Installed, tmp_path: Path) -> None:
    """`smakom init prov --example` from the wheel, then a dry run, as the README says: a
    message per reader, exit 0."""
    run([str(installed.smakom), "init", "prov", "--example"], tmp_path, installed.env)
    folder = tmp_path / "prov"
    run([str(installed.smakom), "send", "issues/2021-01.md", "--dry-run"], folder, installed.env)
    written = sorted((folder / "outbox" / "2021-01").glob("*.eml"))
    assert written
    message = email.message_from_bytes(written[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "SmåKom Nyhetsbrev Januari 2021"


@pytest.mark.slow
def test_the_installed_program_renders_the_example_from_any_folder(
    installed: Installed, newsletter: Path, tmp_path: Path
) -> None:
    """The wheel carries the default templates: installed elsewhere, it renders the example."""
    where = run(
        [str(installed.smakom.parent / "python"), "-c", "import smakom_cli; print(smakom_cli)"],
        tmp_path,
        installed.env,
    )
    assert str(REPO) not in where
    html = tmp_path / "o.html"
    out = run(
        [str(installed.smakom), "preview", "issues/2021-01.md", "--html", str(html)],
        newsletter,
        installed.env,
    )
    assert "Rapport från styrelsemöte" in out
    assert "Styrelsen, fr v;" in html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_version_comes_from_the_package_metadata(installed: Installed, tmp_path: Path) -> None:
    """`smakom --version` prints pyproject.toml's version, the one in the wheel's name."""
    assert f"smakom-{VERSION}-" in installed.wheel.name
    out = run([str(installed.smakom), "--version"], tmp_path, installed.env)
    assert out.strip() == f"smakom {VERSION}"


@pytest.mark.slow
def test_the_installed_program_speaks_swedish(installed: Installed, tmp_path: Path) -> None:
    """The wheel's compiled catalog works: `smakom --help` is Swedish with SMAKOM_LANG=sv."""
    out = run([str(installed.smakom), "--help"], tmp_path, {**installed.env, "SMAKOM_LANG": "sv"})
    assert out.startswith("Användning: smakom [FLAGGOR] KOMMANDO [ARGUMENT]..."), out
    assert "Visa den här hjälpen och avsluta." in out


@pytest.mark.slow
def test_the_wheel_and_sdist_carry_what_runs_and_what_is_read(installed: Installed) -> None:
    """The wheel has every file of the package (the compiled translation catalogs too) and every
    template; the sdist the docs, the example and the tests besides."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    package = REPO / "smakom_cli"
    for file in package.rglob("*"):
        if file.is_file() and "__pycache__" not in file.parts:
            assert file.relative_to(REPO).as_posix() in names
    assert any(name.endswith("/sv/LC_MESSAGES/smakom.mo") for name in names)
    templates = REPO / "templates"
    for template in templates.rglob("*"):
        if template.is_file():
            assert f"smakom_cli/templates/{template.relative_to(templates).as_posix()}" in names
    with tarfile.open(installed.sdist) as sdist:
        inside = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in ["README.md", "docs/user-guide.md", "pyproject.toml", "tests/conftest.py"]:
        assert needed in inside
    for example in EXAMPLES.rglob("*"):
        if example.is_file() and not {"outbox", "sent", "site"} & set(example.parts):
            assert f"examples/{example.relative_to(EXAMPLES).as_posix()}" in inside
