"""Signing in: `smakom login` and `smakom logout` (the logins themselves come from the resolver in
`signin/`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smakom_cli.cli.app import app, output, state
from smakom_cli.cli.common import say_key_made, signin
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

if TYPE_CHECKING:
    import datetime as dt

    from smakom_cli.config import Config
    from smakom_cli.signin.oauth import DeviceCode


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
    from smakom_cli.signin.credentials import IMAP_PASSWORD_VARIABLE, store_imap_password

    username = require_mailbox(config).username
    where = f"{config.inbox.host}:{config.inbox.server_port}"
    resolver = signin(config)
    oauth = resolver.inbox_signs_in_with_oauth()
    if oauth and not check:
        raise SmakomError(
            _(
                "the mailbox {username} signs in with OAuth2 like the sending: run "
                "`smakom login` (no mailbox password is needed)."
            ).format(username=username)
        )
    if not oauth:
        _warn_if_unencrypted_keyring(IMAP_PASSWORD_VARIABLE)
    if check:
        check_login(config.inbox, resolver.inbox_login())
        done = (
            _("Logged in to the mailbox {where} as {username} with OAuth2.")
            if oauth
            else _("Logged in to the mailbox {where} as {username} with a password.")
        )
        output.success(done.format(where=where, username=username))
        return
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
    from smakom_cli.signin.credentials import PASSWORD_VARIABLE, store_password

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
            _make_link_key(config)
        return
    where = f"{config.smtp.host}:{config.smtp.port}"
    _warn_if_unencrypted_keyring(PASSWORD_VARIABLE)
    if check:
        from smakom_cli.delivery.smtp import check_login

        check_login(config.smtp, signin(config).smtp_login())
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
    _make_link_key(config)
    output.info(_("Run `smakom login --check` to test it against the mail server."))


def _make_link_key(config: Config) -> None:
    """A sign-in makes the list's link key, once, so the first send has nothing to make."""
    _key, made = signin(config).make_link_key()
    if made:
        say_key_made(config)


def _local_time(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _oauth_login(config: Config, *, check: bool) -> None:
    """`smakom login` for [smtp] auth = "oauth2": the device code, or --check the sign-in."""
    from smakom_cli.signin.credentials import keyring_name
    from smakom_cli.signin.resolver import xoauth2_login

    sign_in = signin(config).oauth()
    username = sign_in.settings.username
    _warn_if_unencrypted_keyring(oauth_user=username)
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


def _warn_if_unencrypted_keyring(password_variable: str = "", *, oauth_user: str = "") -> None:
    """Say so when the keyring is a plain file: the password, or the OAuth2 sign-in of
    `oauth_user` (as good as a password while it lasts, and with no stand-in in the
    environment, as it renews itself), would be readable in it."""
    from smakom_cli.signin.credentials import unencrypted_keyring

    found = unencrypted_keyring()
    if found is None:
        return
    where = _("in {file}").format(file=found.file) if found.file else _("in a file")
    if oauth_user:
        message = _(
            "the keyring backend ({backend}) keeps the OAuth2 sign-in unencrypted "
            "{where}: anyone who can read that file can send mail as {username} until "
            "the sign-in is revoked. Use a secure backend (Windows Credential Locker, "
            "macOS Keychain, or Secret Service on Linux; `keyring --list-backends` "
            "shows them, PYTHON_KEYRING_BACKEND chooses one)."
        ).format(backend=found.backend, where=where, username=oauth_user)
    else:
        message = _(
            "the keyring backend ({backend}) keeps passwords unencrypted {where}: "
            "anyone who can read that file can read the password. Use a secure "
            "backend (Windows Credential Locker, macOS Keychain, or Secret Service "
            "on Linux; `keyring --list-backends` shows them, "
            "PYTHON_KEYRING_BACKEND chooses one), or on a server set "
            "{password_variable} in the environment instead of `smakom login`."
        ).format(backend=found.backend, where=where, password_variable=password_variable)
    output.warning(message)


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
