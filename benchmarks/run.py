"""A whole send measured, side by side in one run, printed as one table.

Measures the real `smakom` command (a subprocess, as the office runs it) on a synthetic
newsletter: the January 2021 example issue and N generated subscribers, in a temporary folder.

1. Dry run: messages/s of `smakom send --dry-run`, and the time of each stage in-process.
2. Send: `smakom send --yes` to a discarding SMTP sink on 127.0.0.1 in its own process
   (Postfix's smtp-sink, then aiosmtpd), against the ceiling (the same messages sent with bare
   smtplib over reused connections) and the durable ceiling (the same, with an fsync'd journal
   line before each message), with 1, 2 and 4 connections; and a send that asks the one-click
   service (`smakom serve`) again every 0.1 s while it runs against one that does not ask.
3. Memory: peak RSS of a dry run at two list sizes.
4. Peer: mailmerge 2.3.0 doing the same job (same list, same content, same sink).
5. Start-up: `smakom --help` and `smakom preview` on the example.
6. Watch: `smakom preview --watch` on the example: a re-render after a save in the running
   process, the first render (start to the page's address printed) against `smakom preview`,
   and a save to the new version served.

`--quick` (the smoke test) uses the current interpreter, a tiny list, one run of each figure,
and skips mailmerge and the large memory run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import email.header
import email.utils
import json
import os
import platform
import re
import secrets
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smakom_cli.config import Config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
ISSUE = "issues/2021-01.md"
BIN = Path(sys.executable).parent
# Random, as the service refuses a key too regular to be one; the links signed with it lead nowhere.
SECRET = secrets.token_urlsafe(32)

FIRST = ("Anna", "Björn", "Cecilia", "David", "Elin", "Fredrik", "Göran", "Hanna", "Åsa", "Östen")
LAST = ("Åberg", "Östlund", "Ärlig", "Sjöström", "Lindqvist", "Nyström", "Håkansson", "Ekström")
ORGANISATIONS = (
    "Ragunda kommun",
    "Bjurholms kommun",
    "Dorotea kommun",
    "Sorsele kommun",
    "Åsele kommun",
    "Överkalix kommun",
    "Pajala kommun",
    "Arjeplogs kommun",
)


@dataclass
class Row:
    """One line of the table."""

    section: str
    measure: str
    result: str
    target: str = ""
    status: str = ""


@dataclass
class Settings:
    n: int
    memory_sizes: tuple[int, ...]
    repeats: int
    slow_repeats: int
    connections: tuple[int, ...]
    quick: bool
    keep: bool
    rows: list[Row] = field(default_factory=list)
    # Other work on the machine skews every figure: the table shows the load it ran under.
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)
    notes: list[str] = field(default_factory=list)


# --- helpers ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def command(name: str) -> list[str]:
    """A console script of the environment this script runs in (smakom, mailmerge)."""
    script = BIN / name
    if script.exists():
        return [str(script)]
    if name == "smakom":
        return [sys.executable, "-m", "smakom_cli"]
    found = shutil.which(name)
    return [found] if found else []


def environment() -> dict[str, str]:
    """The environment of every smakom run: the unsubscribe key from a variable, no keyring."""
    env = dict(os.environ)
    env.pop("SMAKOM_SMTP_PASSWORD", None)
    env["SMAKOM_UNSUBSCRIBE_SECRET"] = SECRET
    # Nothing may touch the keyring of the person running the benchmark.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["COLUMNS"] = "100"
    return env


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_kb: int | None = None


# Runs a command and reports its peak RSS. A child's ru_maxrss starts at the RSS of the process
# that forked it (Linux records the old address space's high-water mark at exec), so the
# command is started from this small helper, not from the benchmark holding N messages.
_PEAK_HELPER = """\
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {seconds}")
sys.exit(code)
"""


def run(cmd: list[str], cwd: Path, *, stdout: Path | None = None, peak: bool = False) -> Measured:
    """Run a command to completion: its wall time, and with `peak` its peak RSS."""
    log = cwd / ".benchmark-stderr.txt"
    report = cwd / ".benchmark-peak.txt"
    argv = [sys.executable, "-c", _PEAK_HELPER, str(report), *cmd] if peak else cmd
    with log.open("wb") as err, (stdout or Path(os.devnull)).open("wb") as out:
        start = time.perf_counter()
        result = subprocess.run(
            argv, cwd=cwd, env=environment(), stdout=out, stderr=err, check=False
        )
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed (exit {result.returncode}) in {cwd}:\n"
            f"{log.read_text()[-2000:]}"
        )
    if not peak:
        return Measured(seconds)
    maxrss, inner = report.read_text().split()
    # ru_maxrss is in KB on Linux, in bytes on macOS.
    kb = int(maxrss) // 1024 if sys.platform == "darwin" else int(maxrss)
    return Measured(float(inner), kb)


def ascii_name(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def subscribers(n: int) -> Iterator[tuple[str, str, str]]:
    """N distinct subscribers with Swedish names: (email, name, organisation)."""
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        domain = ("example.com", "example.org")[i % 2]
        address = f"{ascii_name(first)}.{ascii_name(last)}.{i}@{domain}"
        yield address, f"{first} {last}", ORGANISATIONS[i % len(ORGANISATIONS)]


def write_list(path: Path, n: int) -> Path:
    """A subscriber list as Swedish Excel writes it: semicolons, UTF-8."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, delimiter=";", lineterminator="\r\n")
        writer.writerow(("email", "name", "organisation"))
        writer.writerows(subscribers(n))
    return path


def set_smtp(folder: Path, *, port: int, connections: int) -> None:
    """Point smakom.toml at the sink: no TLS, no login, no rate limit."""
    config = folder / "smakom.toml"
    smtp = (
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'security = "none"\n'
        'username = ""\n'
        f"connections = {connections}\n"
        "rate_per_minute = 0\n"
        "rate_per_hour = 0\n"
        "retry_attempts = 0\n"
        "timeout = 30.0\n\n"
    )
    text = re.sub(r"(?ms)^\[smtp\]\n.*?(?=^\[)", smtp, config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("outbox", "sent", "site"))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the SMTP sink stopped at once (exit {proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise SystemExit(f"the SMTP sink did not listen on port {port}")


@contextlib.contextmanager
def aiosmtpd_sink() -> Iterator[int]:
    """The Python sink (benchmarks/sink.py) in its own process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "sink.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


SMTP_SINK_PLACES = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def find_smtp_sink(*, install: bool) -> str | None:
    """Postfix's smtp-sink; as root on Debian, installs the postfix package when it is missing.

    "No configuration" is preseeded, so no mail service is set up and nothing is asked.
    """
    found = shutil.which("smtp-sink") or next(
        (place for place in SMTP_SINK_PLACES if os.access(place, os.X_OK)), None
    )
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    preseed = "postfix postfix/main_mailer_type select No configuration\n"
    subprocess.run(["debconf-set-selections"], input=preseed, text=True, env=env, check=True)
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return find_smtp_sink(install=False)


@contextlib.contextmanager
def postfix_sink(program: str) -> Iterator[int]:
    """Postfix's smtp-sink (C, accepts and discards) on 127.0.0.1; yields its port."""
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
    proc = subprocess.Popen(
        [program, *user, f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# --- 1. dry run ---------------------------------------------------------------------------


ONE = "subscribers-one.csv"  # a list of one: what a run costs besides its messages


def dry_run(s: Settings, folder: Path, smakom: list[str]) -> tuple[Path, float]:
    """The CLI's messages/s writing N .eml files, and the outbox of the last run."""
    outbox = folder / "outbox-bench"
    times, fixed = [], []
    for _ in range(s.repeats):
        shutil.rmtree(outbox, ignore_errors=True)
        command = [*smakom, "send", ISSUE, "--dry-run", "--outbox", str(outbox)]
        fixed.append(run([*command, "--subscribers", ONE], folder).seconds)
        shutil.rmtree(outbox, ignore_errors=True)
        times.append(run(command, folder).seconds)
    seconds, fixed_seconds = median(times), median(fixed)
    files = sorted(outbox.glob("*.eml"))
    if len(files) != s.n:
        raise SystemExit(f"the dry run wrote {len(files)} messages, not {s.n}")
    size = sum(f.stat().st_size for f in files) / len(files)
    per_second = s.n / seconds
    steady = (s.n - 1) / max(seconds - fixed_seconds, 1e-9)
    s.rows += [
        Row(
            "1 Dry run",
            f"`smakom send --dry-run`, N={s.n:,}, wall (start-up included), "
            f"median of {s.repeats} (range)",
            f"{per_second:,.0f} msg/s ({seconds:.2f} s; {min(times):.2f}–{max(times):.2f})",
            "≥ 2,000 msg/s",
            verdict(per_second >= 2000),
        ),
        Row(
            "1 Dry run",
            f"its fixed cost (a dry run to a list of one), median of {s.repeats}",
            f"{fixed_seconds:.2f} s",
        ),
        Row("1 Dry run", "without the fixed cost", f"{steady:,.0f} msg/s"),
        Row("1 Dry run", "average message size", f"{size / 1024:.1f} KB"),
    ]
    return outbox, per_second


STAGES = {
    "markdown": "once per issue: Markdown (content.render_content)",
    "layout": "once per issue: layout (Jinja, HTML and text templates)",
    "inline": "once per issue: CSS inlining (premailer)",
    "render": "once per issue: all of render_issue, for comparison",
    "list": "per message: reading the list (CSV, address check, unsubscribed check)",
    "personal": "per message: personalisation (personal_values, link_for: the signed link)",
    "build": "per message: MIME assembly (MessageBuilder.build: fills the fields, joins)",
    "write": "per message: writing the .eml file",
}


def time_render(config: Config, issue_path: Path, columns: tuple[str, ...]) -> list[float]:
    """Seconds of each once-per-issue stage, calling render_issue's steps one by one."""
    from smakom_cli.compose import render
    from smakom_cli.compose.content import render_content
    from smakom_cli.compose.issue import load_issue

    issue = load_issue(issue_path)
    resolve = render._image_resolver("embed", config, {})
    t0 = time.perf_counter()
    content = render_content(
        issue, lambda ref: resolve(ref.src, ref.local_path, f"line {ref.line}")
    )
    t1 = time.perf_counter()
    env = render.template_environment(config)
    context = render._context(issue, config, content, resolve)
    html = render._render(env, render.HTML_TEMPLATE, context, columns)
    render._render(env, render.TEXT_TEMPLATE, context, columns)
    t2 = time.perf_counter()
    render._inline_css(html, diagnose=False)
    t3 = time.perf_counter()
    render.render_issue(issue, config, columns=columns)
    t4 = time.perf_counter()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]


def time_messages(config: Config, issue_path: Path, out: Path) -> list[float]:
    """Seconds per message of each per-recipient stage: the loop of Mailing.messages and
    write_outbox, with a clock between the steps."""
    from smakom_cli.audience.unsubscribe_links import link_for
    from smakom_cli.compose.message import MessageBuilder, Recipient
    from smakom_cli.compose.render import personal_values
    from smakom_cli.delivery.mailing import prepare

    secret = SECRET.encode()
    mailing = prepare(config, issue_path, secret=secret)
    builder = MessageBuilder(mailing.rendered, config)
    sums = [0.0] * 4
    recipients = mailing.recipients()
    count = 0
    while True:
        a = time.perf_counter()
        subscriber = next(recipients, None)
        if subscriber is None:
            break
        b = time.perf_counter()
        recipient = Recipient(
            address=subscriber.address,
            name=subscriber.name,
            values=personal_values(subscriber.fields, ""),
        )
        link = link_for(config, secret, subscriber.key)
        c = time.perf_counter()
        message = builder.build(recipient, link)
        d = time.perf_counter()
        count += 1
        (out / f"{count:05d}-{subscriber.address}.eml").write_bytes(message)
        e = time.perf_counter()
        for index, seconds in enumerate((b - a, c - b, d - c, e - d)):
            sums[index] += seconds
    return [total / count for total in sums]


def stages(s: Settings, folder: Path) -> None:
    """Each stage of the dry run timed in this process, with the functions the CLI calls."""
    from smakom_cli.audience.subscribers import read_columns
    from smakom_cli.compose.issue import load_issue
    from smakom_cli.compose.render import render_issue
    from smakom_cli.config import load_config

    config = load_config(folder / "smakom.toml")
    issue_path = folder / ISSUE
    columns = read_columns(config.subscribers_path)
    out = folder / "outbox-stages"
    # Imports and first-use caches (cssutils compiles its grammar) belong to start-up, which
    # the CLI figures include; the stages are timed warm.
    render_issue(load_issue(issue_path), config, columns=columns)
    runs = []
    for _ in range(s.repeats):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        runs.append(
            time_render(config, issue_path, columns) + time_messages(config, issue_path, out)
        )
    shutil.rmtree(out, ignore_errors=True)
    medians = [median(list(values)) for values in zip(*runs, strict=True)]
    per_message = 0.0
    for (key, label), seconds in zip(STAGES.items(), medians, strict=True):
        if key in ("markdown", "layout", "inline", "render"):
            s.rows.append(Row("1 Dry run", label, f"{seconds * 1000:.1f} ms"))
        else:
            per_message += seconds
            s.rows.append(Row("1 Dry run", label, f"{seconds * 1e6:.0f} µs"))
    s.rows.append(
        Row(
            "1 Dry run",
            "per message, all four stages in-process (no start-up, no render)",
            f"{1 / per_message:,.0f} msg/s ({per_message * 1e6:.0f} µs)",
        )
    )


# --- 2. send ------------------------------------------------------------------------------


def prerendered(outbox: Path) -> list[tuple[str, bytes]]:
    """The dry run's messages with their recipients: the ceiling sends exactly these."""
    messages = []
    for path in sorted(outbox.glob("*.eml")):
        address = path.stem.split("-", 1)[1]
        messages.append((address, path.read_bytes()))
    return messages


def ceiling(
    messages: list[tuple[str, bytes]],
    port: int,
    connections: int,
    sender: str,
    *,
    journal: Path | None = None,
) -> float:
    """Bare smtplib: one thread per connection, each connection reused for its share.

    With `journal`, the durable ceiling: before each message a line is appended to that
    file and forced to disk, then the message is sent, one after the other (what never
    sending twice costs without overlapping the fsync with the transaction).
    """
    failures: list[BaseException] = []
    descriptor = (
        os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if journal else None
    )

    def send(share: list[tuple[str, bytes]]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for address, message in share:
                    if descriptor is not None:
                        line = f'{{"event":"in-flight","key":"{address}"}}\n'
                        os.write(descriptor, line.encode())
                        os.fsync(descriptor)
                    smtp.sendmail(sender, [address], message)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=send, args=(messages[i::connections],)) for i in range(connections)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if descriptor is not None:
        os.close(descriptor)
        assert journal is not None
        journal.unlink()
    if failures:
        raise SystemExit(f"the ceiling run failed: {failures[0]!r}")
    return seconds


def smakom_send(folder: Path, smakom: list[str], n: int, *, subscribers: str = "") -> float:
    """`smakom send --yes` from a fresh journal; checks that every message was sent."""
    shutil.rmtree(folder / "sent", ignore_errors=True)
    # The witness would (rightly) refuse a send whose journal was deleted: it goes with it.
    shutil.rmtree(folder / ".smakom", ignore_errors=True)
    option = ["--subscribers", subscribers] if subscribers else []
    # No one-click service runs here: the send path is measured without its one HTTP sync.
    seconds = run([*smakom, "send", ISSUE, "--yes", "--no-sync", *option], folder).seconds
    journal = next((folder / "sent").glob("*.jsonl"))
    sent = sum(json.loads(line)["event"] == "sent" for line in journal.read_text().splitlines())
    if sent != n:
        raise SystemExit(f"smakom sent {sent} messages, not {n}")
    return seconds


def sends(
    s: Settings,
    folder: Path,
    smakom: list[str],
    outbox: Path,
    sinks: list[tuple[str, Callable[[], contextlib.AbstractContextManager[int]]]],
    peer: Mailmerge | None,
) -> tuple[dict[str, float], dict[str, float]]:
    """smakom against the ceiling, interleaved run by run; mailmerge with one connection.

    Returns smakom's messages/s with one connection and mailmerge's, per sink.
    """
    messages = prerendered(outbox)
    sender = "nyhetsbrev@smakom.se"
    ours: dict[str, float] = {}
    mailmerge_rates: dict[str, float] = {}
    for sink_name, sink in sinks:
        with sink() as port:
            # What a send costs besides the messages: start-up, render, check, connecting.
            set_smtp(folder, port=port, connections=1)
            fixed = median(
                [smakom_send(folder, smakom, 1, subscribers=ONE) for _ in range(s.repeats)]
            )
            s.rows.append(
                Row(
                    "2 Send",
                    f"{sink_name}: smakom's fixed cost (a send to a list of one), "
                    f"median of {s.repeats}",
                    f"{fixed:.2f} s",
                )
            )
            for connections in s.connections:
                set_smtp(folder, port=port, connections=connections)
                smakom_times, bare_times, durable_times = [], [], []
                journal = folder / "durable-ceiling.jsonl"
                for _ in range(s.repeats):
                    smakom_times.append(smakom_send(folder, smakom, s.n))
                    bare_times.append(ceiling(messages, port, connections, sender))
                    durable_times.append(
                        ceiling(messages, port, connections, sender, journal=journal)
                    )
                ours_rate, bare_rate = s.n / median(smakom_times), s.n / median(bare_times)
                durable_rate = s.n / median(durable_times)
                # The messages alone: the fixed cost taken off.
                steady = (s.n - 1) / max(median(smakom_times) - fixed, 1e-9)
                share = ours_rate / bare_rate
                if connections == 1:
                    ours[sink_name] = ours_rate
                s.rows.append(
                    Row(
                        "2 Send",
                        f"{sink_name}, {connections} connection(s): smakom / bare smtplib "
                        f"(smakom without its fixed cost), N={s.n:,}, median of {s.repeats}",
                        f"{ours_rate:,.0f} / {bare_rate:,.0f} msg/s = {share:.0%} "
                        f"({steady:,.0f} msg/s = {steady / bare_rate:.0%})",
                        "≥ 80 %",
                        verdict(share >= 0.8),
                    )
                )
                s.rows.append(
                    Row(
                        "2 Send",
                        f"{sink_name}, {connections} connection(s): durable ceiling (bare "
                        "smtplib, an fsync'd journal line before each message, in series); "
                        "smakom (without its fixed cost) / it",
                        f"{durable_rate:,.0f} msg/s = {durable_rate / bare_rate:.0%} of bare; "
                        f"{ours_rate / durable_rate:.0%} ({steady / durable_rate:.0%})",
                    )
                )
            if peer is not None:
                mailmerge_rates[sink_name] = peer.send(port, s.slow_repeats)
    return ours, mailmerge_rates


# --- 2b. the one-click service asked again during a send --------------------------------


# Random, as the service refuses a key too regular to be one.
SERVICE_KEY = secrets.token_urlsafe(32)
LISTEN_EVERY = 0.1  # seconds: 600 times as often as a real send asks (once a minute)


@contextlib.contextmanager
def one_click_service(work: Path, smakom: list[str]) -> Iterator[str]:
    """`smakom serve` in its own process on 127.0.0.1; yields its base address."""
    port = free_port()
    env = {**environment(), "SMAKOM_SERVICE_KEY": SERVICE_KEY}
    proc = subprocess.Popen(
        [*smakom, "serve", "--host", "127.0.0.1", "--port", str(port), "--data",
         str(work / "service.sqlite3")],
        env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def core_send(folder: Path, n: int, *, listen_every: float | None) -> float:
    """The run of `send_issue` in-process from a fresh journal, asking the service every
    `listen_every` seconds (None: no sync at all, as --no-sync); checks that all were sent."""
    from smakom_cli.config import load_config
    from smakom_cli.delivery.mailing import prepare
    from smakom_cli.delivery.send import SendOptions, send_issue
    from smakom_cli.signin.resolver import Resolver

    shutil.rmtree(folder / "sent", ignore_errors=True)
    shutil.rmtree(folder / ".smakom", ignore_errors=True)  # the witness goes with the journal
    (folder / "unsubscribed.sync.json").unlink(missing_ok=True)
    config = load_config(folder / "smakom.toml")
    mailing = prepare(config, folder / ISSUE, secret=None)
    signin = Resolver(config, {**environment(), "SMAKOM_SERVICE_KEY": SERVICE_KEY})
    options = SendOptions(sync=listen_every is not None)
    started: list[float] = []

    def start(_starting: object) -> Callable[[object], None]:
        started.append(time.perf_counter())  # the run alone: sync, check and plan are before
        return lambda _event: None

    outcome = send_issue(
        mailing,
        signin,
        options,
        confirm=lambda _plan: True,
        on_start=start,
        refresh_seconds=listen_every or 60.0,
    )
    seconds = time.perf_counter() - started[0]
    if outcome.delivery is None or outcome.delivery.send.sent != n:
        raise SystemExit(f"the send with listen_every={listen_every} did not send all {n}")
    return seconds


def listening(
    s: Settings,
    folder: Path,
    work: Path,
    smakom: list[str],
    sinks: list[tuple[str, Callable[[], contextlib.AbstractContextManager[int]]]],
) -> None:
    """A send that asks the one-click service again while it runs, against one that does not
    ask at all, interleaved run by run, one connection, through the core call."""
    sink_name, sink = sinks[0]
    config = folder / "smakom.toml"
    original = config.read_text(encoding="utf-8")
    with one_click_service(work, smakom) as base, sink() as port:
        url = 'url = "https://www.smakom.se/avregistrera"'
        config.write_text(original.replace(url, f'{url}\nservice = "{base}"', 1), "utf-8")
        set_smtp(folder, port=port, connections=1)
        stressed, asking, silent = [], [], []
        for _ in range(s.repeats):
            stressed.append(core_send(folder, s.n, listen_every=LISTEN_EVERY))
            asking.append(core_send(folder, s.n, listen_every=60.0))
            silent.append(core_send(folder, s.n, listen_every=None))
    config.write_text(original, encoding="utf-8")
    silent_rate = s.n / median(silent)
    for seconds, times, target in ((60.0, asking, 0.95), (LISTEN_EVERY, stressed, None)):
        rate = s.n / median(times)
        s.rows.append(
            Row(
                "2 Send",
                f"{sink_name}, 1 connection: asking the one-click service every {seconds:g} s "
                f"during the send (and before its last message; about "
                f"{median(times) / seconds:.0f} times) / not asking at all, N={s.n:,}, "
                f"median of {s.repeats}",
                f"{rate:,.0f} / {silent_rate:,.0f} msg/s = {rate / silent_rate:.0%}",
                "≥ 95 %" if target else "",
                verdict(rate / silent_rate >= target) if target else "",
            )
        )


# --- 3. memory ----------------------------------------------------------------------------


def memory(s: Settings, folder: Path, smakom: list[str]) -> None:
    """Peak RSS of a dry run at each list size; the outbox is deleted right after each."""
    peaks = {}
    for size in s.memory_sizes:
        write_list(folder / "subscribers-memory.csv", size)
        outbox = folder / "outbox-memory"
        need = size * 45_000 * 1.2
        free = shutil.disk_usage(folder).free
        if free < need:
            s.rows.append(
                Row(
                    "3 Memory",
                    f"peak RSS, dry run N={size:,}",
                    f"not measured: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed",
                )
            )
            continue
        repeats = s.repeats if size <= 10_000 else 1
        values = []
        for _ in range(repeats):
            shutil.rmtree(outbox, ignore_errors=True)
            measured = run(
                [
                    *smakom,
                    "send",
                    ISSUE,
                    "--dry-run",
                    "--outbox",
                    str(outbox),
                    "--subscribers",
                    "subscribers-memory.csv",
                ],
                folder,
                peak=True,
            )
            assert measured.peak_rss_kb is not None
            values.append((measured.peak_rss_kb, measured.seconds))
        shutil.rmtree(outbox, ignore_errors=True)
        peak = median([v[0] for v in values])
        seconds = median([v[1] for v in values])
        peaks[size] = peak
        how = f"median of {repeats}" if repeats > 1 else "one run"
        s.rows.append(
            Row(
                "3 Memory",
                f"peak RSS, dry run N={size:,} ({how}; {size / seconds:,.0f} msg/s)",
                f"{peak / 1024:.1f} MB",
            )
        )
    if len(peaks) >= 2:
        small, large = min(peaks), max(peaks)
        ratio = peaks[large] / peaks[small]
        s.rows.append(
            Row(
                "3 Memory",
                f"peak RSS at N={large:,} / at N={small:,}",
                f"{ratio:.2f}×",
                "≤ 1.3×",
                verdict(ratio <= 1.3),
            )
        )


# --- 4. mailmerge ---------------------------------------------------------------------------


def mailmerge_folder(folder: Path, work: Path, n: int) -> Path:
    """mailmerge's files for the same job: smakom's rendered issue as a Jinja template.

    The template is the same multipart/alternative (text and the inlined HTML) with the same
    personal fields, and the same images as inline attachments (mailmerge swaps the `src` of
    an <img> for a cid: when it names an attachment). mailmerge has no signed unsubscribe
    links, so each subscriber's link is a column of its database, made by smakom.
    """
    from smakom_cli.audience.unsubscribe_links import link_for
    from smakom_cli.compose.render import PersonalText
    from smakom_cli.config import load_config
    from smakom_cli.delivery.mailing import prepare

    config = load_config(folder / "smakom.toml")
    secret = SECRET.encode()
    rendered = prepare(config, folder / ISSUE, secret=secret).rendered
    target = work / "mailmerge"
    shutil.copytree(folder / "images", target / "images")
    sources = {image.src: f"images/{image.path.name}" for image in rendered.images}

    def template(text: PersonalText) -> str:
        out = []
        for index, raw in enumerate(text.chunks):
            chunk = raw
            for src, path in sources.items():
                chunk = chunk.replace(src, path)
            if text.is_html:
                # mailmerge re-serialises the HTML when it swaps image paths for cids, every
                # non-ASCII letter as an entity and no transfer encoding: a line can outgrow
                # SMTP's 1,000 characters and the server refuses the message. A break after
                # each tag keeps lines short and renders the same.
                chunk = chunk.replace(">", ">\n")
            out.append("{% raw %}" + chunk + "{% endraw %}")
            if index < len(text.fields):
                slot = text.fields[index]
                name = slot.name.removeprefix("subscriber.")
                fallback = f" or {json.dumps(slot.fallback)}" if slot.fallback else ""
                out.append(f"{{{{ {name}{fallback} }}}}")
        return "".join(out)

    sender = email.utils.formataddr((config.sender.name, config.sender.email), "utf-8")
    subject = email.header.Header(rendered.issue.subject, "utf-8").encode()
    headers = [
        "TO: {{ email }}",
        f"FROM: {sender}",
        f"REPLY-TO: {config.sender.reply_to}",
        f"SUBJECT: {subject}",
        f"LIST-ID: <{config.list_id}>",
        "LIST-UNSUBSCRIBE: <{{ unsubscribe_url }}>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="smakom-benchmark"',
        *(f"ATTACHMENT: {path}" for path in sources.values()),
    ]
    body = [
        "--smakom-benchmark",
        'Content-Type: text/plain; charset="utf-8"',
        "",
        template(rendered.text),
        "--smakom-benchmark",
        'Content-Type: text/html; charset="utf-8"',
        "",
        template(rendered.html),
        "--smakom-benchmark--",
    ]
    (target / "mailmerge_template.txt").write_text(
        "\n".join(headers) + "\n\n" + "\n".join(body) + "\n", encoding="utf-8"
    )
    with (target / "mailmerge_database.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(("email", "name", "organisation", "unsubscribe_url"))
        for address, name, organisation in subscribers(n):
            link = link_for(config, secret, address.lower()).footer_url
            writer.writerow((address, name, organisation, link))
    return target


class Mailmerge:
    """mailmerge 2.3.0 run on its files for the job, as its README shows."""

    def __init__(self, program: list[str], folder: Path, n: int) -> None:
        self.cmd = [*program, "--no-limit", "--output-format", "raw"]
        self.folder = folder
        self.n = n

    def configure(self, port: int) -> None:
        (self.folder / "mailmerge_server.conf").write_text(
            f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\nratelimit = 0\n",
            encoding="utf-8",
        )

    def send(self, port: int, repeats: int) -> float:
        """Messages/s sending to the sink; it prints every message, here to /dev/null."""
        self.configure(port)
        runs = [run([*self.cmd, "--no-dry-run"], self.folder).seconds for _ in range(repeats)]
        return self.n / median(runs)

    def dry_run(self, repeats: int) -> tuple[float, float]:
        """Messages/s printing every message to a file, and the average message size."""
        self.configure(25)  # a dry run connects to nothing
        out = self.folder / "dry-run.txt"
        runs = [
            run([*self.cmd, "--dry-run"], self.folder, stdout=out).seconds for _ in range(repeats)
        ]
        return self.n / median(runs), out.stat().st_size / self.n


def peer_rows(
    s: Settings,
    mailmerge: Mailmerge,
    ours_dry: float,
    ours_send: dict[str, float],
    theirs_send: dict[str, float],
) -> None:
    dry_rate, size = mailmerge.dry_run(s.slow_repeats)
    s.rows.append(
        Row(
            "4 Peer",
            f"mailmerge 2.3.0 `--dry-run --output-format raw` to a file, N={s.n:,}, "
            f"median of {s.slow_repeats}; smakom's dry run / mailmerge's",
            f"{dry_rate:,.0f} msg/s; {ours_dry / dry_rate:.1f}×",
        )
    )
    s.rows.append(
        Row("4 Peer", "mailmerge's average message size (its output / N)", f"{size / 1024:.1f} KB")
    )
    for sink_name, theirs in theirs_send.items():
        ratio = ours_send[sink_name] / theirs
        s.rows.append(
            Row(
                "4 Peer",
                f"mailmerge 2.3.0 send, {sink_name} (its one way: a new connection per "
                f"message), median of {s.slow_repeats}; smakom (1 connection) / mailmerge",
                f"{theirs:,.0f} msg/s; {ratio:.1f}×",
                "≥ 5×",
                verdict(ratio >= 5),
            )
        )


# --- 5. start-up --------------------------------------------------------------------------


def startup(s: Settings, work: Path, smakom: list[str]) -> None:
    example = copy_example(work / "example")
    repeats = max(s.repeats, 5) if not s.quick else s.repeats
    for measure, cmd, limit in (
        ("`smakom --help`", [*smakom, "--help"], 0.15),
        ("`smakom preview issues/2021-01.md` (the example)", [*smakom, "preview", ISSUE], 0.4),
    ):
        run(cmd, example)  # warm the file cache; not counted
        times = [run(cmd, example).seconds for _ in range(repeats)]
        seconds = median(times)
        s.rows.append(
            Row(
                "5 Start-up",
                f"{measure}, median of {repeats} (range)",
                f"{seconds:.3f} s ({min(times):.2f}–{max(times):.2f})",
                f"< {limit} s",
                verdict(seconds < limit),
            )
        )


# --- 6. watch ----------------------------------------------------------------------------

WATCH_RENDERS = 11


def save(issue: Path, number: int) -> None:
    """What an editor's save does: the issue file written anew, one word changed."""
    text = issue.read_text(encoding="utf-8")
    text = re.sub(r"^# (Sparad \d+ )?", f"# Sparad {number} ", text, count=1, flags=re.M)
    issue.write_text(text, encoding="utf-8")


def watching(s: Settings, work: Path, smakom: list[str]) -> None:
    """A re-render in the running process, the first render, and a save to the page."""
    from smakom_cli.delivery.watch import POLL_SECONDS, IssueWatcher

    example = copy_example(work / "watched")
    issue = example / ISSUE
    watcher = IssueWatcher(example / "smakom.toml", issue, None, None, SECRET.encode())
    watcher.render()  # the first render compiles the templates: the next rows time it
    times, cpu = [], []
    for number in range(WATCH_RENDERS):
        save(issue, number)
        assert watcher.changed()
        used = time.process_time()
        rendering = watcher.render()
        cpu.append(time.process_time() - used)
        assert not rendering.error, rendering.error
        times.append(rendering.seconds)
    seconds = median(times)
    s.rows.append(
        Row(
            "6 Watch",
            "`preview --watch`: re-render after a save, in the running process "
            f"(IssueWatcher.render), median of {WATCH_RENDERS} (range; CPU time)",
            f"{seconds * 1000:.0f} ms ({min(times) * 1000:.0f}–{max(times) * 1000:.0f}; "
            f"CPU {median(cpu) * 1000:.0f} ms)",
            "≤ 100 ms",
            verdict(seconds <= 0.1),
        )
    )
    # The first render against `smakom preview`, run by run in turn, so that other work on
    # the machine weighs on both alike.
    starts, previews, served = [], [], []
    repeats = max(s.repeats, 5) if not s.quick else s.repeats
    for _ in range(repeats):
        previews.append(run([*smakom, "preview", ISSUE], example).seconds)
        start, saves = watched_run(smakom, example, issue)
        starts.append(start)
        served += saves
    first, preview = median(starts), median(previews)
    s.rows.append(
        Row(
            "6 Watch",
            "`smakom preview --watch`: start to the page's address printed (the first render "
            f"included), median of {repeats}, in turn with `smakom preview`",
            f"{first:.3f} s",
            f"≤ `smakom preview` ({preview:.3f} s)",
            verdict(first <= preview),
        )
    )
    s.rows.append(
        Row(
            "6 Watch",
            "`smakom preview --watch`: a save to the new version served (the files polled "
            f"every {POLL_SECONDS} s), median of {len(served)}",
            f"{median(served) * 1000:.0f} ms",
        )
    )


def watched_run(smakom: list[str], folder: Path, issue: Path) -> tuple[float, list[float]]:
    """One `smakom preview --watch`: seconds to its address, and from saves to the page."""
    import urllib.request

    started = time.perf_counter()
    proc = subprocess.Popen(
        [*smakom, "preview", ISSUE, "--watch"],
        cwd=folder,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                url = found.group(0)
                break
        else:
            raise SystemExit("smakom preview --watch printed no address")
        start = time.perf_counter() - started

        def version() -> str:
            with urllib.request.urlopen(url + "version", timeout=10) as answer:
                return str(answer.read().decode())

        saves = []
        for number in range(3):
            before = version()
            saved = time.perf_counter()
            save(issue, 100 + number)
            while version() == before:
                time.sleep(0.002)
            saves.append(time.perf_counter() - saved)
        return start, saves
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the table ----------------------------------------------------------------------------


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.platform()}"
    )


def table(s: Settings) -> str:
    head = ("Section", "Measure", "Result", "Target", "Status")
    rows = [head, *((r.section, r.measure, r.result, r.target, r.status) for r in s.rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [
        f"smakom benchmark — {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} — {machine()}",
        f"load average (1 min) at the start {s.load[0]:.2f}, at the end {os.getloadavg()[0]:.2f}",
        f"N={s.n:,} subscribers, the January 2021 example issue"
        + (" (--quick: smoke test, not a measurement)" if s.quick else ""),
        "",
        line(head),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(row) for row in rows[1:]),
    ]
    out += [f"\n{note}" for note in s.notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark a whole smakom send.")
    parser.add_argument("--n", type=int, help="subscribers (default 2000; --quick: 20)")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 3; --quick: 1)")
    parser.add_argument(
        "--memory-n",
        default="",
        help="list sizes for the memory runs (default 1000,100000; --quick: N,10N)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the smoke test: current interpreter, tiny N, no mailmerge, no large memory run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    n = args.n or (20 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = args.memory_n or (f"{n},{10 * n}" if args.quick else "1000,100000")
    s = Settings(
        n=n,
        memory_sizes=tuple(int(size) for size in sizes.split(",")),
        repeats=repeats,
        slow_repeats=1 if args.quick else min(repeats, 2),
        connections=(1, 2, 4),
        quick=args.quick,
        keep=args.keep,
    )
    smakom = command("smakom")
    mailmerge = [] if s.quick else command("mailmerge")
    smtp_sink = None if s.quick else find_smtp_sink(install=True)
    sinks: list[tuple[str, Callable[[], contextlib.AbstractContextManager[int]]]] = []
    if smtp_sink:
        sinks.append(("Postfix smtp-sink", lambda: postfix_sink(smtp_sink)))
    sinks.append(("aiosmtpd sink", aiosmtpd_sink))
    if s.quick:
        s.notes.append("--quick: the aiosmtpd sink only, no mailmerge, small memory runs.")
    elif not smtp_sink:
        s.notes.append(
            "Postfix's smtp-sink is not installed (as root, benchmarks/run.py installs Debian's "
            "postfix): the aiosmtpd sink only."
        )
    if not mailmerge and not s.quick:
        s.notes.append("mailmerge is not installed (benchmarks/run installs it): no peer.")

    work = Path(tempfile.mkdtemp(prefix="smakom-benchmark-"))
    try:
        folder = copy_example(work / "newsletter")
        write_list(folder / "subscribers.csv", n)
        write_list(folder / ONE, 1)
        (folder / "unsubscribed.csv").unlink()  # everyone on the generated list gets the issue
        peer = Mailmerge(mailmerge, mailmerge_folder(folder, work, n), n) if mailmerge else None

        startup(s, work, smakom)
        watching(s, work, smakom)
        outbox, ours_dry = dry_run(s, folder, smakom)
        stages(s, folder)
        ours_send, theirs_send = sends(s, folder, smakom, outbox, sinks, peer)
        listening(s, folder, work, smakom, sinks)
        if peer is not None:
            peer_rows(s, peer, ours_dry, ours_send, theirs_send)
        memory(s, folder, smakom)
    finally:
        if s.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    s.rows.sort(key=lambda r: r.section[0])
    print(table(s))


if __name__ == "__main__":
    main()
