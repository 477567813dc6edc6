"""A real IMAP server for tests: Dovecot on 127.0.0.1 with its own configuration in a temp folder.

It listens for IMAP with STARTTLS and for IMAP over TLS (the trustme certificate of
smtp_server.py), authenticates users from a passwd-file, and keeps each user's mail in a
Maildir. Every test takes a user of its own (`new_user`), so tests share one running server
and still start with an empty mailbox. `kick` drops a user's connections from the server
side, as a server restart or a network failure would.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

from .smtp_server import HOST, Certificates

PASSWORD = "Fjällräv-i-Malå-2021"
_START_TIMEOUT = 15.0
# Every user is in the passwd-file from the start: Dovecot notices a changed file by its
# modification time, to the second, so users added one by one were not always seen.
_USERS = 40


# What the server says it can do after login, per kind of user (tab-separated: passwd-file
# splits its extra fields at spaces). "" is everything Dovecot can.
CAPABILITIES = {
    "": "",
    "no-move": "IMAP4rev1\tUIDPLUS",
    "old": "IMAP4rev1",
}


def _user(number: int, kind: str = "") -> str:
    return f"kansli{'-' + kind if kind else ''}{number}@smakom.se"


@dataclass
class DovecotServer:
    """One running Dovecot; its users, ports and CA file."""

    doveadm: str
    config_file: Path
    passwd_file: Path
    homes: Path
    imap_port: int
    imaps_port: int
    ca_file: Path
    uid: int
    gid: int
    _numbers: dict[str, Iterator[int]] = field(
        default_factory=lambda: {kind: itertools.count(1) for kind in CAPABILITIES}
    )

    def new_user(self, kind: str = "") -> str:
        """A user whose mailbox no test has touched yet.

        For a "no-move" user the server offers UIDPLUS but not MOVE; for an "old" one
        nothing but IMAP4rev1 (no MOVE, UIDPLUS or NAMESPACE), as some older servers do.
        """
        number = next(self._numbers[kind])
        if number > _USERS:
            raise RuntimeError(f"the test server has only {_USERS} such users; raise _USERS")
        return _user(number, kind)

    @contextmanager
    def client(self, user: str) -> Iterator[IMAPClient]:
        """A logged-in connection of the test's own, to put mail in and look at folders."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient(HOST, self.imaps_port, ssl=True, ssl_context=context, timeout=10)
        client.plain_login(user, PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def kick(self, user: str) -> None:
        """Drop every connection of `user` from the server's side."""
        subprocess.run(
            [self.doveadm, "-c", str(self.config_file), "kick", user],
            check=True,
            capture_output=True,
            timeout=10,
        )


def require_dovecot_2_3(dovecot: str) -> None:
    """The configuration here is Dovecot 2.3's (Debian 12); 2.4 renamed many settings."""
    version = subprocess.run(
        [dovecot, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    if version.startswith("2.3."):
        return
    reason = f"the test Dovecot configuration is written for 2.3, and this is {version or '?'}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI every real server must run: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _mail_user() -> tuple[str, int, int]:
    """Who owns the mailboxes: this user, or (Dovecot refuses root) its own system user."""
    import pwd

    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return me.pw_name, me.pw_uid, me.pw_gid
    for name in ("dovecot", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, entry.pw_uid, entry.pw_gid
    raise RuntimeError("no unprivileged user to own the test mailboxes")


def _configuration(
    base: Path,
    homes: Path,
    passwd: Path,
    certificates: Certificates,
    ports: tuple[int, int],
) -> str:
    """A Dovecot 2.3 configuration with nothing outside `base` and `homes`."""
    name, _uid, _gid = _mail_user()
    key = base / "key.pem"
    cert = base / "cert.pem"
    certificates.server_cert.private_key_pem.write_to_path(str(key))
    certificates.server_cert.cert_chain_pems[0].write_to_path(str(cert))
    login_user = name if os.getuid() != 0 else "dovenull"
    try:
        import pwd

        pwd.getpwnam(login_user)
    except KeyError:
        login_user = "nobody"
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
listen = {HOST}
protocols = imap
default_internal_user = {name}
default_internal_group = {_group(name)}
default_login_user = {login_user}
first_valid_uid = 1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
# A refused password is answered at once, so the test of one is fast.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  # Not "/": the tool must use the server's own delimiter for smakom/studsar.
  separator = .
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {ports[0]}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {ports[1]}
    ssl = yes
  }}
}}
"""


def _group(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


@contextmanager
def running_dovecot(
    dovecot: str, doveadm: str, certificates: Certificates
) -> Iterator[DovecotServer]:
    """Start Dovecot in the foreground with a configuration of its own; stop it afterwards."""
    _name, uid, gid = _mail_user()
    # Outside pytest's temp folder, which only root may enter: the mail user must reach it.
    base = Path(tempfile.mkdtemp(prefix="smakom-dovecot-"))
    try:
        homes = base / "homes"
        homes.mkdir()
        base.chmod(0o755)
        os.chown(homes, uid, gid)
        passwd = base / "passwd"
        lines = []
        for number, kind in itertools.product(range(1, _USERS + 1), CAPABILITIES):
            name = _user(number, kind)
            home = homes / name
            home.mkdir()
            os.chown(home, uid, gid)
            extra = f"userdb_imap_capability={CAPABILITIES[kind]}" if kind else ""
            lines.append(f"{name}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}::{extra}\n")
        passwd.write_text("".join(lines), encoding="utf-8")
        passwd.chmod(0o644)
        ports = (_free_port(), _free_port())
        config_file = base / "dovecot.conf"
        config_file.write_text(
            _configuration(base, homes, passwd, certificates, ports),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [dovecot, "-F", "-c", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(process, ports[1], base / "dovecot.log")
            yield DovecotServer(
                doveadm=doveadm,
                config_file=config_file,
                passwd_file=passwd,
                homes=homes,
                imap_port=ports[0],
                imaps_port=ports[1],
                ca_file=certificates.ca_file,
                uid=uid,
                gid=gid,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            details = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"dovecot stopped at start-up: {output} {details}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {HOST}:{port} within {_START_TIMEOUT} s")
