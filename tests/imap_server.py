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
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.dovecot import DovecotFolder, common_configuration, dovecot_folder, free_port, running
from tests.smtp_server import HOST, Certificates

PASSWORD = "Fjällräv-i-Malå-2021"
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


def _configuration(folder: DovecotFolder, passwd: Path, ports: tuple[int, int]) -> str:
    """Users from a passwd-file, IMAP with STARTTLS on one port and over TLS on the other."""
    return (
        common_configuration(folder, imaps_port=ports[1], imap_port=ports[0])
        + f"""
auth_mechanisms = plain
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
"""
    )


@contextmanager
def running_dovecot(
    dovecot: str, doveadm: str, certificates: Certificates
) -> Iterator[DovecotServer]:
    """Start Dovecot in the foreground with a configuration of its own; stop it afterwards."""
    with dovecot_folder("smakom-dovecot-", certificates) as folder:
        uid, gid = folder.uid, folder.gid
        passwd = folder.base / "passwd"
        lines = []
        for number, kind in itertools.product(range(1, _USERS + 1), CAPABILITIES):
            name = _user(number, kind)
            home = folder.homes / name
            home.mkdir()
            os.chown(home, uid, gid)
            extra = f"userdb_imap_capability={CAPABILITIES[kind]}" if kind else ""
            lines.append(f"{name}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}::{extra}\n")
        passwd.write_text("".join(lines), encoding="utf-8")
        passwd.chmod(0o644)
        ports = (free_port(), free_port())
        with running(dovecot, folder, _configuration(folder, passwd, ports), ports[1]):
            yield DovecotServer(
                doveadm=doveadm,
                config_file=folder.config_file,
                passwd_file=passwd,
                homes=folder.homes,
                imap_port=ports[0],
                imaps_port=ports[1],
                ca_file=certificates.ca_file,
                uid=uid,
                gid=gid,
            )
