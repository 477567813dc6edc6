"""Dovecot on 127.0.0.1 taking IMAP XOAUTH2, each token checked by the test OAuth2 server.

Dovecot's oauth2 passdb asks the OAuth2 test server (RFC 7662 introspection) whether a token
is live and carries the IMAP scope, as a real deployment asks its identity provider. It has no
mail: a test signs in and selects INBOX, which is what `smakom inbox` needs of a sign-in.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.dovecot import DovecotFolder, common_configuration, dovecot_folder, free_port, running
from tests.oauth_server import OAuthTestServer
from tests.smtp_server import Certificates


@dataclass(frozen=True)
class OAuthImapServer:
    port: int  # IMAP over TLS
    ca_file: Path
    log: Path


def _configuration(folder: DovecotFolder, port: int) -> str:
    """XOAUTH2 and OAUTHBEARER checked by the OAuth2 server, IMAP over TLS only."""
    base = folder.base
    return (
        common_configuration(folder, imaps_port=port)
        + f"""
auth_mechanisms = xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={folder.uid} gid={folder.gid} home={folder.homes}/%u
}}
"""
    )


@contextmanager
def running_oauth_dovecot(
    dovecot: str, certificates: Certificates, oauth: OAuthTestServer
) -> Iterator[OAuthImapServer]:
    """Start Dovecot in the foreground with a configuration of its own; stop it afterwards."""
    with dovecot_folder("smakom-dovecot-oauth-", certificates) as folder:
        base = folder.base
        shutil.copy(certificates.ca_file, base / "ca.pem")
        (base / "ca.pem").chmod(0o644)
        (base / "oauth2.conf.ext").write_text(
            f"introspection_url = {oauth.base_url}/introspect/imap\n"
            "introspection_mode = post\nusername_attribute = username\n"
            "active_attribute = active\nactive_value = true\n"
            f"tls_ca_cert_file = {base}/ca.pem\n",
            encoding="utf-8",
        )
        port = free_port()
        with running(dovecot, folder, _configuration(folder, port), port):
            yield OAuthImapServer(port=port, ca_file=certificates.ca_file, log=folder.log)
