"""Dovecot on 127.0.0.1 taking IMAP XOAUTH2, each token checked by the test OAuth2 server.

Dovecot's oauth2 passdb asks the OAuth2 test server (RFC 7662 introspection) whether a token
is live and carries the IMAP scope, as a real deployment asks its identity provider. It has no
mail: a test signs in and selects INBOX, which is what `smakom inbox` needs of a sign-in.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .oauth_server import OAuthTestServer
from .smtp_server import HOST, Certificates

_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class OAuthImapServer:
    port: int  # IMAP over TLS
    ca_file: Path
    log: Path


def _mail_user() -> tuple[str, int, int]:
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _configuration(base: Path, homes: Path, port: int) -> str:
    import grp
    import pwd

    name, uid, gid = _mail_user()
    login_user = "dovenull" if os.getuid() == 0 else name
    try:
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
default_internal_group = {grp.getgrgid(gid).gr_name}
default_login_user = {login_user}
first_valid_uid = 1
ssl = required
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={homes}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {port}
    ssl = yes
  }}
}}
"""


@contextmanager
def running_oauth_dovecot(
    dovecot: str, certificates: Certificates, oauth: OAuthTestServer
) -> Iterator[OAuthImapServer]:
    """Start Dovecot in the foreground with a configuration of its own; stop it afterwards."""
    _name, uid, gid = _mail_user()
    # Outside pytest's temp folder, which only root may enter: the mail user must reach it.
    base = Path(tempfile.mkdtemp(prefix="smakom-dovecot-oauth-"))
    try:
        base.chmod(0o755)
        homes = base / "homes"
        homes.mkdir()
        os.chown(homes, uid, gid)
        certificates.server_cert.private_key_pem.write_to_path(str(base / "key.pem"))
        certificates.server_cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
        shutil.copy(certificates.ca_file, base / "ca.pem")
        (base / "ca.pem").chmod(0o644)
        (base / "oauth2.conf.ext").write_text(
            f"introspection_url = {oauth.base_url}/introspect/imap\n"
            "introspection_mode = post\nusername_attribute = username\n"
            "active_attribute = active\nactive_value = true\n"
            f"tls_ca_cert_file = {base}/ca.pem\n",
            encoding="utf-8",
        )
        port = _free_port()
        config = base / "dovecot.conf"
        config.write_text(_configuration(base, homes, port), encoding="utf-8")
        process = subprocess.Popen(
            [dovecot, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            _wait_for(process, port, base / "dovecot.log")
            yield OAuthImapServer(port=port, ca_file=certificates.ca_file, log=base / "dovecot.log")
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
