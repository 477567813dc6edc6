"""Where smakom's secrets live: a secure system keyring, a plain file, or nowhere."""

from __future__ import annotations

from collections.abc import Mapping

from smakom_cli.doctor.findings import Finding
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.signin.credentials import (
    PASSWORD_VARIABLE,
    SECRET_VARIABLE,
    SERVICE,
    keyring_name,
    unencrypted_keyring,
)

WHAT = _("keyring")


def check_keyring(environ: Mapping[str, str]) -> Finding:
    """The keyring backend that holds the password, the tokens and the link key."""
    import keyring
    import keyring.backends.fail
    import keyring.errors

    unattended = _("set {password_variable} and {secret_variable} in the environment").format(
        password_variable=PASSWORD_VARIABLE, secret_variable=SECRET_VARIABLE
    )
    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring):
        if environ.get(PASSWORD_VARIABLE) and environ.get(SECRET_VARIABLE):
            return Finding(
                "warning",
                WHAT,
                _(
                    "no system keyring; the password and link key come from "
                    "{password_variable} and {secret_variable} (OAuth2 sign-in needs a "
                    "keyring)"
                ).format(password_variable=PASSWORD_VARIABLE, secret_variable=SECRET_VARIABLE),
            )
        return Finding(
            "problem",
            WHAT,
            _(
                "there is no system keyring on this computer, so smakom cannot keep "
                "the password, the sign-in tokens or the unsubscribe-link key"
            ),
            _(
                "On a desktop, install a keyring backend "
                "(https://pypi.org/project/keyring/); on a server, {unattended}."
            ).format(unattended=unattended),
        )
    try:
        keyring.get_password(SERVICE, "doctor")  # a read changes nothing
        plain = unencrypted_keyring()
        name = keyring_name()
    except (SmakomError, keyring.errors.KeyringError) as exc:
        return Finding(
            "problem",
            WHAT,
            _("the system keyring cannot be used: {exc}").format(exc=exc),
            _("Unlock or repair the keyring, or {unattended}.").format(unattended=unattended),
        )
    if plain is not None:
        where = f" ({plain.file})" if plain.file else ""
        return Finding(
            "warning",
            WHAT,
            _(
                "{backend} keeps the secrets unencrypted in a plain file{where}: "
                "anyone who can read it can send as you"
            ).format(backend=plain.backend, where=where),
            _(
                "Use the system's keyring (Windows Credential Manager, macOS Keychain, "
                "GNOME Keyring or KWallet) instead, or on a server {unattended}."
            ).format(unattended=unattended),
        )
    return Finding("ok", WHAT, _("secrets are kept in {name}").format(name=name))
