"""Signing in: `smakom login` and `smakom logout`, and the logins the other commands use."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import app, output, state
from smakom_cli.cli.common import (
    make_unsubscribe_secret,
)
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from smakom_cli.config import Config
    from smakom_cli.delivery.smtp import Login
    from smakom_cli.signin.oauth import DeviceCode, SignIn


def smtp_login(config: Config) -> Login | None:
    """The account and password a send logs in with, and what to do if it is refused."""
    if not config.smtp.username:
        return None
    from smakom_cli.delivery.smtp import Login
    from smakom_cli.signin.credentials import PASSWORD_VARIABLE, find_password

    username = config.smtp.username
    password = find_password(username, os.environ)
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


def login_source(config: Config) -> Callable[[], Login | None]:
    """What a send logs in with at each (re)connect: the password, or a fresh OAuth2 token."""
    if config.smtp.auth != "oauth2":
        login = smtp_login(config)
        return lambda: login
    sign_in = oauth_sign_in(config)
    sign_in.access_token()  # not signed in: say so before anything is sent
    return lambda: xoauth2_login(sign_in)


def xoauth2_login(sign_in: SignIn) -> Login:
    """An SMTP login with the current access token, renewed by msal when it is running out."""
    from smakom_cli.delivery.smtp import Login

    token = sign_in.access_token("smtp")
    remedy = _(
        "Run `smakom login` to sign in again; if that does not help, see "
        "docs/mail-providers.md (Microsoft 365) for the app registration and "
        "SMTP AUTH for the mailbox."
    )
    return Login(token.username, token.token, method="xoauth2", remedy=remedy)


def _smtp_username(config: Config) -> str:
    if not config.smtp.username:
        raise SmakomError(
            _(
                "{path}: [smtp] has no username. Add the account name the mail server "
                "expects (often your e-mail address), then run the command again."
            ).format(path=config.path)
        )
    return config.smtp.username


InboxOption = Annotated[
    bool,
    typer.Option("--inbox", help=_("The password of the mailbox `smakom inbox` reads instead.")),
]


def _login_inbox(config: Config, *, check: bool) -> None:
    from smakom_cli.returns.imap import check_login
    from smakom_cli.returns.inbox import require_mailbox
    from smakom_cli.signin.credentials import store_imap_password

    username = require_mailbox(config).username
    where = f"{config.inbox.host}:{config.inbox.server_port}"
    if check:
        login = inbox_login(config)
        check_login(config.inbox, login)
        how = "OAuth2" if login.method == "xoauth2" else "a password"
        output.success(
            _("Logged in to the mailbox {where} as {username} with {how}.").format(
                where=where, username=username, how=how
            )
        )
        return
    if _inbox_signs_in_with_oauth(config):
        raise SmakomError(
            _(
                "the mailbox {username} signs in with OAuth2 like the sending: run "
                "`smakom login` (no mailbox password is needed)."
            ).format(username=username)
        )
    password = typer.prompt(
        _("Mailbox password for {username} at {where}").format(username=username, where=where),
        hide_input=True,
    )
    keyring_name = store_imap_password(username, password)
    output.success(
        _(
            "Stored the mailbox password for {username} in the system keyring ({keyring_name})."
        ).format(username=username, keyring_name=keyring_name)
    )
    output.info(_("Run `smakom login --inbox --check` to test it against the mail server."))


def _inbox_signs_in_with_oauth(config: Config) -> bool:
    """The mailbox is the sending one, and that signs in with OAuth2: the same sign-in."""
    return config.smtp.auth == "oauth2" and (
        config.inbox.username.lower() == config.smtp.username.lower()
    )


def inbox_login(config: Config) -> Login:
    """How `smakom inbox` signs in: the sending mailbox's OAuth2 token, or a password."""
    from smakom_cli.delivery.smtp import Login
    from smakom_cli.signin.credentials import IMAP_PASSWORD_VARIABLE, lookup_imap_password

    username = config.inbox.username
    if _inbox_signs_in_with_oauth(config):
        from smakom_cli.signin.oauth import access_token

        token = access_token(config, "imap")
        remedy = _(
            "run `smakom login` to sign in again (IMAP.AccessAsUser.All, see "
            "docs/mail-providers.md)."
        )
        return Login(token.username, token.token, method="xoauth2", remedy=remedy)
    password = lookup_imap_password(username, os.environ)
    if password is None:
        raise SmakomError(
            _(
                "no mailbox password is stored for {username}. Run `smakom login "
                "--inbox` first (or set {imap_password_variable} for unattended runs)."
            ).format(username=username, imap_password_variable=IMAP_PASSWORD_VARIABLE)
        )
    remedy = _(
        "run `smakom login --inbox` to store the right password (or set {imap_password_variable})."
    ).format(imap_password_variable=IMAP_PASSWORD_VARIABLE)
    return Login(username, password, remedy=remedy)


@app.command(
    help=_(
        "Sign in to the mail server: a password into the keyring, or OAuth2 "
        "with a code.\n\nWith --inbox the same for the mailbox `smakom inbox` "
        "reads; with --service-key, store the one-click service's sync key."
    )
)
def login(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help=_(
                "Connect and log in to the mail server, without sending anything; with "
                "OAuth2 also say until when the token is valid."
            ),
        ),
    ] = False,
    service_key: Annotated[
        bool,
        typer.Option(
            "--service-key",
            help=_("Store the one-click service's sync key instead (SMAKOM_SERVICE_KEY there)."),
        ),
    ] = False,
    inbox: InboxOption = False,
) -> None:
    from smakom_cli.signin.credentials import store_password

    config = state(ctx).config()
    if service_key:
        _store_service_key(config)
        return
    if inbox:
        _login_inbox(config, check=check)
        return
    username = _smtp_username(config)
    if config.smtp.auth == "oauth2":
        _oauth_login(config, check=check)
        if not check:
            make_unsubscribe_secret(config)
        return
    where = f"{config.smtp.host}:{config.smtp.port}"
    _warn_if_unencrypted_keyring()
    if check:
        from smakom_cli.delivery.smtp import check_login

        check_login(config.smtp, smtp_login(config))
        output.success(
            _("Logged in to {where} as {username} with a password.").format(
                where=where, username=username
            )
        )
        return
    password = typer.prompt(
        _("Password for {username} at {where}").format(username=username, where=where),
        hide_input=True,
    )
    keyring_name = store_password(username, password)
    output.success(
        _("Stored the password for {username} in the system keyring ({keyring_name}).").format(
            username=username, keyring_name=keyring_name
        )
    )
    make_unsubscribe_secret(config)
    output.info(_("Run `smakom login --check` to test it against the mail server."))


def oauth_sign_in(config: Config) -> SignIn:
    """The configured mailbox's OAuth2 sign-in, its tokens in the system keyring."""
    from smakom_cli.signin.oauth import sign_in_for

    return sign_in_for(config)


def _local_time(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _oauth_login(config: Config, *, check: bool) -> None:
    """`smakom login` for [smtp] auth = "oauth2": the device code, or --check the sign-in."""
    from smakom_cli.signin.credentials import keyring_name

    sign_in = oauth_sign_in(config)
    username = sign_in.settings.username
    if check:
        from smakom_cli.delivery.smtp import check_login, where

        token = sign_in.access_token()
        check_login(config.smtp, xoauth2_login(sign_in))
        output.success(
            _(
                "Logged in to {where} as {username} with OAuth2 ([smtp] auth = "
                '"oauth2"); the access token is valid until {local_time} and renews '
                "itself."
            ).format(
                where=where(config.smtp),
                username=username,
                local_time=_local_time(token.expires_at),
            )
        )
        return

    def show(code: DeviceCode) -> None:
        output.info(
            _(
                "To sign in as {username}, open {verification_uri} in a web browser on "
                "any computer or phone and enter the code {user_code} (before "
                "{local_time})."
            ).format(
                username=username,
                verification_uri=code.verification_uri,
                user_code=code.user_code,
                local_time=_local_time(code.expires_at),
            )
        )
        output.info(_("Waiting for the sign-in to finish… (Ctrl-C to give up)"))

    sign_in.device_code_sign_in(show)
    output.success(
        _(
            "Signed in as {username} with OAuth2; the sign-in is kept in the "
            "system keyring ({keyring_name}) and renews itself."
        ).format(username=username, keyring_name=keyring_name())
    )
    output.info(_("Run `smakom login --check` to see it is valid."))


def _warn_if_unencrypted_keyring() -> None:
    """Say so when the keyring is a plain file: the password would be readable in it."""
    from smakom_cli.signin.credentials import PASSWORD_VARIABLE, unencrypted_keyring

    found = unencrypted_keyring()
    if found is None:
        return
    where = _("in {file}").format(file=found.file) if found.file else _("in a file")
    output.warning(
        _(
            "the keyring backend ({backend}) keeps passwords unencrypted {where}: "
            "anyone who can read that file can read the password. Use a secure "
            "backend (Windows Credential Locker, macOS Keychain, or Secret Service "
            "on Linux; `keyring --list-backends` shows them, "
            "PYTHON_KEYRING_BACKEND chooses one), or on a server set "
            "{password_variable} in the environment instead of `smakom login`."
        ).format(backend=found.backend, where=where, password_variable=PASSWORD_VARIABLE)
    )


def _store_service_key(config: Config) -> None:
    from smakom_cli.signin.credentials import store_service_key

    key = typer.prompt(
        _("Sync key of the one-click service (SMAKOM_SERVICE_KEY on the server)"), hide_input=True
    )
    keyring_name = store_service_key(config.list_id, key.strip())
    output.success(
        _("Stored the sync key for {list_id} in the system keyring ({keyring_name}).").format(
            list_id=config.list_id, keyring_name=keyring_name
        )
    )
    output.info(_("Run `smakom sync` to fetch who unsubscribed on the web."))


@app.command(
    help=_("Remove the SMTP password and the OAuth2 sign-in (with --inbox, the mailbox password).")
)
def logout(ctx: typer.Context, inbox: InboxOption = False) -> None:
    from smakom_cli.signin.credentials import (
        delete_imap_password,
        delete_password,
        delete_token_cache,
    )

    config = state(ctx).config()
    if inbox:
        name = config.inbox.username
        if name and delete_imap_password(name):
            output.success(
                _("Removed the mailbox password for {name} from the system keyring.").format(
                    name=name
                )
            )
        else:
            output.info(
                _("No mailbox password for {value} was stored.").format(
                    value=name or "[inbox] username"
                )
            )
        return
    username = _smtp_username(config)
    if delete_password(username):
        output.success(
            _("Removed the password for {username} from the system keyring.").format(
                username=username
            )
        )
    else:
        output.info(
            _("No password for {username} was stored in the system keyring.").format(
                username=username
            )
        )
    if delete_token_cache(username):
        output.success(
            _("Removed the OAuth2 sign-in of {username} from the system keyring.").format(
                username=username
            )
        )
