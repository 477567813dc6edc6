"""What the test Dovecots share: a folder of their own, the settings every one needs, and
starting one in the foreground until it listens."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import stop, wait_until_listening
from tests.smtp_server import HOST, Certificates

_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class DovecotFolder:
    """Where one Dovecot keeps everything: `base`, with the users' homes in `homes`."""

    base: Path
    homes: Path
    uid: int
    gid: int

    @property
    def config_file(self) -> Path:
        return self.base / "dovecot.conf"

    @property
    def log(self) -> Path:
        return self.base / "dovecot.log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def mail_user() -> tuple[str, int, int]:
    """Who owns the mailboxes: this user, or (Dovecot refuses root) an unprivileged one."""
    import pwd  # POSIX only, like Dovecot: imported here so collecting on Windows works

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


@contextmanager
def dovecot_folder(prefix: str, certificates: Certificates) -> Iterator[DovecotFolder]:
    """A folder with the server's certificate and the homes; removed afterwards."""
    _name, uid, gid = mail_user()
    # Outside pytest's temp folder, which only root may enter: the mail user must reach it.
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        base.chmod(0o755)
        homes = base / "homes"
        homes.mkdir()
        os.chown(homes, uid, gid)
        certificates.server_cert.private_key_pem.write_to_path(str(base / "key.pem"))
        certificates.server_cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
        yield DovecotFolder(base=base, homes=homes, uid=uid, gid=gid)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def common_configuration(folder: DovecotFolder, imaps_port: int, imap_port: int = 0) -> str:
    """Dovecot 2.3 settings with nothing outside the folder: IMAP over TLS on 127.0.0.1, and
    IMAP with STARTTLS too unless its port is 0."""
    import grp
    import pwd

    name, _uid, gid = mail_user()
    login_user = "dovenull" if os.getuid() == 0 else name
    try:
        pwd.getpwnam(login_user)
    except KeyError:
        login_user = "nobody"
    base = folder.base
    return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {folder.log}
listen = {HOST}
protocols = imap
default_internal_user = {name}
default_internal_group = {grp.getgrgid(gid).gr_name}
default_login_user = {login_user}
first_valid_uid = 1
ssl = required
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
# A refused sign-in is answered at once, so the test of one is fast.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


@contextmanager
def running(dovecot: str, folder: DovecotFolder, configuration: str, port: int) -> Iterator[None]:
    """Dovecot in the foreground with this configuration, until it listens on `port`;
    stopped afterwards."""
    folder.config_file.write_text(configuration, encoding="utf-8")
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(folder.config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def why_not() -> str:
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
        log = folder.log.read_text(errors="replace") if folder.log.exists() else ""
        return f"{output} {log}"

    try:
        wait_until_listening(process, port, why_not, _START_TIMEOUT)
        yield
    finally:
        stop(process)
