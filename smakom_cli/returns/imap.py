"""The IMAP session of `smakom inbox`: connecting with checked TLS, signing in, reading
messages without marking them read, and moving them without ever deleting one."""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from smakom_cli.config import InboxConfig
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.returns.bounces import MAX_BYTES
from smakom_cli.signin.resolver import Login

# Marks a message copied to its folder on a server that can neither MOVE nor expunge one UID.
SORTED_KEYWORD = "$SmakomSorted"
# What is read of one message: a bounce or a request is far smaller; of a reply with large
# attachments the headers and the text at the top are enough.
READ_BYTES = MAX_BYTES
CONNECTION_ERRORS = (imaplib.IMAP4.abort, OSError, EOFError)
_FETCH_BATCH = 25


def connect(inbox: InboxConfig) -> IMAPClient:
    """A connection with TLS from the first byte, or upgraded by STARTTLS; certificates checked."""
    where = f"{inbox.host}:{inbox.server_port}"
    try:
        context = ssl.create_default_context(cafile=inbox.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            _("inbox.ca_file {ca_file} cannot be read ({exc}).").format(
                ca_file=inbox.ca_file, exc=exc
            )
        ) from None
    try:
        if inbox.security == "tls":
            return IMAPClient(
                inbox.host, inbox.server_port, ssl=True, ssl_context=context, timeout=inbox.timeout
            )
        client = IMAPClient(inbox.host, inbox.server_port, ssl=False, timeout=inbox.timeout)
        try:
            client.starttls(context)
        except BaseException:
            close(client)
            raise
    except ssl.SSLCertVerificationError as exc:
        raise SmakomError(
            _(
                "the certificate of the mail server {where} could not be verified "
                "({verify_message}); check inbox.host, or set inbox.ca_file for a "
                "server with a private certificate."
            ).format(where=where, verify_message=exc.verify_message)
        ) from None
    except IMAPClientError as exc:
        raise SmakomError(
            _(
                "the mail server {where} does not offer STARTTLS ({describe}); try "
                'security = "tls" (port 993).'
            ).format(where=where, describe=describe(exc))
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise SmakomError(
            _(
                "could not connect to the mail server {where} ({describe}); check "
                "inbox.host, inbox.port and inbox.security."
            ).format(where=where, describe=describe(exc))
        ) from None
    return client


def check_login(inbox: InboxConfig, login: Login) -> None:
    """Connect and sign in to the mailbox, and nothing else."""
    client = connect(inbox)
    try:
        sign_in(client, inbox, login)
    except CONNECTION_ERRORS as exc:
        raise SmakomError(
            _("the connection to {host} was lost ({describe}).").format(
                host=inbox.host, describe=describe(exc)
            )
        ) from None
    finally:
        close(client)


def sign_in(client: IMAPClient, inbox: InboxConfig, login: Login) -> None:
    """Sign in with the password, or with an OAuth2 token (XOAUTH2, Microsoft 365)."""
    try:
        if login.method == "xoauth2":
            client.oauth2_login(login.username, login.secret)
        elif login.secret.isascii():
            client.login(login.username, login.secret)
        else:
            # LOGIN can only carry ASCII; AUTHENTICATE PLAIN sends UTF-8 (RFC 4616), so a
            # Swedish password with å, ä or ö works.
            client.plain_login(login.username, login.secret)
    except LoginError:
        raise SmakomError(
            _("the mail server {host} refused the login for {username}: {remedy}").format(
                host=inbox.host, username=login.username, remedy=login.remedy
            )
        ) from None


class Session:
    """The IMAP commands of one run: its folders by their names on this server, and moves
    that never delete a message."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        self._folders: dict[str, str] = {}
        self._existing: set[str] | None = None
        self._namespace: tuple[str, str] | None = None

    def select(self, folder: str, *, readonly: bool) -> tuple[int, list[int]]:
        """The folder's UIDVALIDITY and its messages' UIDs, in order."""
        try:
            selected = self.client.select_folder(self.server_name(folder), readonly=readonly)
        except IMAPClientError as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise SmakomError(
                _("the mailbox has no folder '{folder}' ({describe}); check inbox.folder.").format(
                    folder=folder, describe=describe(exc)
                )
            ) from None
        return int(selected.get(b"UIDVALIDITY", 0)), sorted(self.client.search("ALL"))

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes, bool]]:
        """Each message's first `READ_BYTES` unread (BODY.PEEK), and whether it carries the
        keyword of a copy already sorted; in batches, skipping what was expunged meanwhile."""
        for start in range(0, len(uids), _FETCH_BATCH):
            batch = list(uids[start : start + _FETCH_BATCH])
            fetched = self.client.fetch(batch, [f"BODY.PEEK[]<0.{READ_BYTES}>", "FLAGS"])
            for uid in batch:
                data = fetched.get(uid)
                if data is None:
                    continue  # expunged by someone else since the search
                flags = {flag(f) for f in data.get(b"FLAGS", ())}
                raw = data.get(b"BODY[]<0>", b"")
                yield uid, raw if isinstance(raw, bytes) else b"", SORTED_KEYWORD.lower() in flags

    def finish_moves(self, pending: Sequence[tuple[int, str]]) -> int:
        """Moves an earlier run recorded but did not get to (its connection was lost).

        A message with the keyword was copied already: it is only expunged, where the
        server can expunge that one UID, and otherwise stays, sorted, where it is.
        """
        if not pending:
            return 0
        finished = 0
        flags = self.client.get_flags([uid for uid, _folder in pending])
        for uid, folder in pending:
            if SORTED_KEYWORD.lower() not in {flag(f) for f in flags.get(uid, ())}:
                self.move(uid, folder)
                finished += 1
            elif b"UIDPLUS" in self.client.capabilities():
                self.client.add_flags([uid], [b"\\Deleted"])
                self.client.uid_expunge([uid])
                finished += 1
        return finished

    def move(self, uid: int, folder: str) -> None:
        """Move one message, never deleting it: MOVE, or COPY and expunge that UID alone."""
        target = self.server_folder(folder)
        capabilities = self.client.capabilities()
        if b"MOVE" in capabilities:
            self.client.move([uid], target)
            return
        self.client.copy([uid], target)
        if b"UIDPLUS" in capabilities:
            self.client.add_flags([uid], [b"\\Deleted", SORTED_KEYWORD.encode()])
            self.client.uid_expunge([uid])
        else:
            # A plain EXPUNGE would also remove what a person marked deleted: leave it.
            self.client.add_flags([uid], [b"\\Seen", SORTED_KEYWORD.encode()])

    def server_name(self, name: str) -> str:
        """The folder's name on this server: its prefix ("INBOX." on some) and delimiter."""
        if self._namespace is None:
            self._namespace = personal_namespace(self.client)
        prefix, delimiter = self._namespace
        parts = [part for part in name.split("/") if part]
        server_name = delimiter.join(parts) if delimiter else "/".join(parts)
        if prefix and not server_name.startswith(prefix) and server_name.upper() != "INBOX":
            server_name = prefix + server_name
        return server_name

    def server_folder(self, name: str) -> str:
        """The folder to move mail to, by its name on this server, created when missing."""
        if name in self._folders:
            return self._folders[name]
        server_name = self.server_name(name)
        if self._existing is None:
            self._existing = {str(f[2]) for f in self.client.list_folders()}
        if server_name not in self._existing:
            self.client.create_folder(server_name)
            self.client.subscribe_folder(server_name)
            self._existing.add(server_name)
        self._folders[name] = server_name
        return server_name


def personal_namespace(client: IMAPClient) -> tuple[str, str]:
    """The prefix and hierarchy delimiter of the user's own folders ("", "/" or "INBOX.", ".")."""
    try:
        personal = client.namespace().personal
    except IMAPClientError:
        personal = None
    if personal:
        prefix, delimiter = personal[0]
        return _str(prefix), _str(delimiter)
    folders = client.list_folders(directory="", pattern="")
    return "", _str(folders[0][1]) if folders else "/"


def missing_folders(inbox: InboxConfig, login: Login) -> list[str]:
    """Sign in and name the configured folders the mailbox lacks; reads only, changes nothing."""
    client = connect(inbox)
    try:
        sign_in(client, inbox, login)
        session = Session(client)
        existing = {_str(folder[2]).upper() for folder in client.list_folders()}
        names = (
            inbox.folder,
            inbox.bounce_folder,
            inbox.unsubscribe_folder,
            inbox.auto_reply_folder,
        )
        return [name for name in names if session.server_name(name).upper() not in existing]
    except (IMAPClientError, *CONNECTION_ERRORS) as exc:
        raise SmakomError(
            _("the mail server {host} answered: {reason}.").format(
                host=inbox.host, reason=describe(exc)
            )
        ) from None
    finally:
        close(client)


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def flag(value: object) -> str:
    return _str(value).lower()


def describe(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text or type(exc).__name__


def close(client: IMAPClient) -> None:
    """Log out politely; a connection already lost needs no goodbye."""
    try:
        client.logout()
    except (IMAPClientError, *CONNECTION_ERRORS):
        try:
            client.shutdown()
        except (IMAPClientError, *CONNECTION_ERRORS):
            return
