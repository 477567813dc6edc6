"""Every login and secret a command needs, from the settings, the environment and the keyring.

The one place that decides where a password, a token or a key comes from, so each failure is
one sentence naming that source and the fix. The environment is handed in by the command line;
nothing here reads `os.environ`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.credentials import (
    IMAP_PASSWORD_VARIABLE,
    PASSWORD_VARIABLE,
    SECRET_VARIABLE,
    SERVICE_KEY_VARIABLE,
    create_unsubscribe_secret,
    find_password,
    lookup_imap_password,
    service_key,
    unsubscribe_secret,
)

if TYPE_CHECKING:
    from smakom_cli.config import Config
    from smakom_cli.signin.oauth import SignIn


@dataclass(frozen=True)
class Login:
    """How to log in: the account, its secret and what to tell the user when it is refused.

    `remedy` depends on where the secret came from (the keyring, an environment variable,
    a sign-in token), so a refused login names the one thing that can fix it.
    """

    username: str
    secret: str = field(repr=False)
    method: Literal["password", "xoauth2"] = "password"
    remedy: str = _("Run `smakom login` to store the right password.")


@dataclass(frozen=True)
class LookingKey:
    """The key a preview, check or dry run signs its links with, and why it is not the real one.

    `warning` is "" when it is the list's real key; otherwise the links will not work, which
    is harmless since none of those messages is sent.
    """

    secret: bytes | None = field(repr=False)
    warning: str


def no_sync_key(*, or_else: str = "") -> str:
    """The one sentence for a missing sync key, with what else the command could do."""
    if or_else:
        return _(
            "no sync key for the one-click unsubscribe service: run `smakom login "
            "--service-key` (or set {service_key_variable}), or {or_else}."
        ).format(service_key_variable=SERVICE_KEY_VARIABLE, or_else=or_else)
    return _(
        "no sync key for the one-click unsubscribe service: run `smakom login "
        "--service-key` (or set {service_key_variable})."
    ).format(service_key_variable=SERVICE_KEY_VARIABLE)


class NoSyncKey(SmakomError):
    """Neither the environment nor the keyring holds the one-click service's sync key."""


def _throwaway() -> str:
    return _(
        "The unsubscribe links in this preview or dry run are signed with a throwaway key "
        "and will not work."
    )


@dataclass(frozen=True)
class Resolver:
    """The logins and secrets of one newsletter folder, looked up only when asked for."""

    config: Config
    environ: Mapping[str, str] = field(repr=False)

    def smtp_login(self) -> Login | None:
        """The account and password a send logs in with, and what to do if it is refused."""
        username = self.config.smtp.username
        if not username:
            return None
        password = find_password(username, self.environ)
        if password is None:
            raise SmakomError(
                _(
                    "no password is stored for {username}. Run `smakom login` first (or "
                    "set {password_variable} for unattended runs)."
                ).format(username=username, password_variable=PASSWORD_VARIABLE)
            )
        if password.source == "environment":
            remedy = _(
                "The password is the one in {where}, which overrides the keyring: "
                "correct that variable, or unset it to use the one `smakom login` "
                "stores."
            ).format(where=password.where)
        else:
            remedy = _(
                "The password is the one stored in the system keyring ({where}): run "
                "`smakom login` to store the right one."
            ).format(where=password.where)
        return Login(username, password.value, remedy=remedy)

    def smtp_logins(self) -> Callable[[], Login | None]:
        """What a send logs in with at each (re)connect: the password, or a fresh OAuth2 token.

        Not signed in is said here, before anything is sent.
        """
        if self.config.smtp.auth != "oauth2":
            login = self.smtp_login()
            return lambda: login
        sign_in = self.oauth()
        sign_in.access_token()
        return lambda: xoauth2_login(sign_in)

    def oauth(self) -> SignIn:
        """The configured mailbox's OAuth2 sign-in, its tokens in the system keyring."""
        from smakom_cli.signin.oauth import sign_in_for

        return sign_in_for(self.config)

    def inbox_signs_in_with_oauth(self) -> bool:
        """The mailbox is the sending one, and that signs in with OAuth2: the same sign-in."""
        config = self.config
        return config.smtp.auth == "oauth2" and (
            config.inbox.username.lower() == config.smtp.username.lower()
        )

    def inbox_login(self) -> Login:
        """How `smakom inbox` signs in: the sending mailbox's OAuth2 token, or a password."""
        username = self.config.inbox.username
        if self.inbox_signs_in_with_oauth():
            token = self.oauth().access_token("imap")
            remedy = _(
                "run `smakom login` to sign in again (IMAP.AccessAsUser.All, see "
                "docs/mail-providers.md)."
            )
            return Login(token.username, token.token, method="xoauth2", remedy=remedy)
        password = lookup_imap_password(username, self.environ)
        if password is None:
            raise SmakomError(
                _(
                    "no mailbox password is stored for {username}. Run `smakom login "
                    "--inbox` first (or set {imap_password_variable} for unattended runs)."
                ).format(username=username, imap_password_variable=IMAP_PASSWORD_VARIABLE)
            )
        remedy = _(
            "run `smakom login --inbox` to store the right password (or set "
            "{imap_password_variable})."
        ).format(imap_password_variable=IMAP_PASSWORD_VARIABLE)
        return Login(username, password, remedy=remedy)

    def link_key(self) -> bytes | None:
        """The list's real link-signing key; None when there are no https links or none was
        made yet. Only reads: a preview or a declined send must not change the keyring."""
        if not self.config.unsubscribe.url:
            return None
        return unsubscribe_secret(self.config.list_id, self.environ)

    def required_link_key(self) -> bytes:
        """The real key, for what must match the links already sent (`smakom sync`).

        A stand-in key would match nobody, and the events would be blamed on the list.
        """
        key = self.link_key()
        if key is None:
            raise SmakomError(self.no_link_key())
        return key

    def no_link_key(self) -> str:
        return _(
            "this computer has no key for the unsubscribe links of {list_id}: the keyring "
            "holds none and {secret_variable} is not set. Set {secret_variable} to the key in "
            "the keyring of the computer that sent the earlier issues (`smakom login` makes "
            "one only for a new list)."
        ).format(list_id=self.config.list_id, secret_variable=SECRET_VARIABLE)

    def looking_key(self) -> LookingKey:
        """The key a preview, check or dry run signs with: the real one, else a throwaway."""
        if not self.config.unsubscribe.url:
            return LookingKey(None, "")
        try:
            key = self.link_key()
        except SmakomError as exc:  # no keyring on this machine
            return LookingKey(secrets.token_bytes(32), f"{exc} {_throwaway()}")
        if key is None:
            return LookingKey(
                secrets.token_bytes(32),
                _(
                    "No key to sign the unsubscribe links of {list_id} has been made yet "
                    "(`smakom login` makes it). {throwaway}"
                ).format(list_id=self.config.list_id, throwaway=_throwaway()),
            )
        return LookingKey(key, "")

    def make_link_key(self) -> tuple[bytes | None, bool]:
        """The real key, made and stored first if the list has none; and whether it was made.

        Only once a send or a sign-in is confirmed: the key is kept for the life of the list.
        """
        key = self.link_key()
        if key is not None or not self.config.unsubscribe.url:
            return key, False
        return create_unsubscribe_secret(self.config.list_id), True

    def sync_key(self) -> str:
        """The key `smakom sync` and a send show the one-click service."""
        key = service_key(self.config.list_id, self.environ)
        if key is None:
            raise NoSyncKey(no_sync_key())
        return key


def xoauth2_login(sign_in: SignIn) -> Login:
    """An SMTP login with the current access token, renewed by msal when it is running out."""
    token = sign_in.access_token("smtp")
    remedy = _(
        "Run `smakom login` to sign in again; if that does not help, see "
        "docs/mail-providers.md (Microsoft 365) for the app registration and "
        "SMTP AUTH for the mailbox."
    )
    return Login(token.username, token.token, method="xoauth2", remedy=remedy)


def service_secrets(config: Config | None, environ: Mapping[str, str]) -> tuple[bytes, str]:
    """What `smakom serve` needs: the link-signing key and the sync key, environment first."""
    list_id = config.list_id if config else ""
    # Without a newsletter folder there is no list to look up in the keyring.
    has_secret = list_id or environ.get(SECRET_VARIABLE)
    secret = unsubscribe_secret(list_id, environ) if has_secret else None
    if secret is None:
        raise SmakomError(
            _(
                "the service needs the key the unsubscribe links are signed with: set "
                "{secret_variable} to the one in the office's keyring (see "
                "docs/service.md)."
            ).format(secret_variable=SECRET_VARIABLE)
        )
    key = service_key(list_id, environ)
    if key is None:
        raise SmakomError(
            _(
                "the service needs a sync key for `smakom sync`: set "
                "{service_key_variable} (at least 32 random characters), and store the "
                "same with `smakom login --service-key`."
            ).format(service_key_variable=SERVICE_KEY_VARIABLE)
        )
    return secret, key
