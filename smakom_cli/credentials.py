"""The SMTP password and the unsubscribe-link secret, kept in the system keyring.

Neither is ever written to a file, a log, an exception message or the process arguments.
On a headless server without a keyring, environment variables take their place.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import keyring
import keyring.errors

from smakom_cli.errors import SmakomError

SERVICE = "smakom"
# Names of environment variables, not secrets.
PASSWORD_VARIABLE = "SMAKOM_SMTP_PASSWORD"  # noqa: S105
SECRET_VARIABLE = "SMAKOM_UNSUBSCRIBE_SECRET"  # noqa: S105
# A shorter secret would make unsubscribe links guessable.
_MIN_SECRET_LENGTH = 32


def store_password(username: str, password: str) -> str:
    """Keep the SMTP password for `username`; returns the name of the keyring backend."""
    with _keyring():
        keyring.set_password(SERVICE, username, password)
        return keyring_name()


def delete_password(username: str) -> bool:
    """Forget the SMTP password for `username`; False when none was stored."""
    with _keyring():
        if keyring.get_password(SERVICE, username) is None:
            return False
        keyring.delete_password(SERVICE, username)
        return True


def lookup_password(username: str, environ: Mapping[str, str]) -> str | None:
    """The SMTP password: SMAKOM_SMTP_PASSWORD (unattended runs) wins over the keyring."""
    if environ.get(PASSWORD_VARIABLE):
        return environ[PASSWORD_VARIABLE]
    if not username:
        return None
    with _keyring():
        return keyring.get_password(SERVICE, username)


def unsubscribe_secret(list_id: str, environ: Mapping[str, str]) -> bytes:
    """The key that signs a list's unsubscribe links, made and stored on first use.

    It must stay the same for the life of the list, or links in earlier issues stop
    working; SMAKOM_UNSUBSCRIBE_SECRET carries it to a server without a keyring.
    """
    text = environ.get(SECRET_VARIABLE, "")
    if text:
        if len(text) < _MIN_SECRET_LENGTH:
            raise SmakomError(
                f"{SECRET_VARIABLE} is too short: use at least {_MIN_SECRET_LENGTH} random "
                "characters (copy the one the keyring holds on the computer that sent before)."
            )
        return text.encode("utf-8")
    user = f"unsubscribe-secret:{list_id}"
    with _keyring():
        stored = keyring.get_password(SERVICE, user)
        if stored is None:
            stored = secrets.token_urlsafe(32)
            keyring.set_password(SERVICE, user, stored)
    return stored.encode("utf-8")


def stored_unsubscribe_secret(list_id: str, environ: Mapping[str, str]) -> bytes | None:
    """The link-signing key if one exists; None when no link was ever signed (none is made)."""
    text = environ.get(SECRET_VARIABLE, "")
    if text:
        return unsubscribe_secret(list_id, environ)
    with _keyring():
        stored = keyring.get_password(SERVICE, f"unsubscribe-secret:{list_id}")
    return stored.encode("utf-8") if stored is not None else None


def keyring_name() -> str:
    """Which keyring backend holds the secrets (e.g. "Windows WinVaultKeyring")."""
    with _keyring():
        return str(keyring.get_keyring().name)


@contextmanager
def _keyring() -> Iterator[None]:
    """Turn the keyring's errors into one sentence that says how to go on without it."""
    advice = (
        f"Set {PASSWORD_VARIABLE} (and {SECRET_VARIABLE}) in the environment for unattended "
        "runs, or install a keyring backend (see https://pypi.org/project/keyring/)."
    )
    try:
        yield
    except keyring.errors.NoKeyringError:
        raise SmakomError(f"There is no system keyring on this machine. {advice}") from None
    except keyring.errors.KeyringError as exc:
        raise SmakomError(
            f"The system keyring could not be used ({type(exc).__name__}). {advice}"
        ) from None


# Name of an environment variable, not a secret.
IMAP_PASSWORD_VARIABLE = "SMAKOM_IMAP_PASSWORD"  # noqa: S105


def _imap_user(username: str) -> str:
    """The keyring entry of the mailbox password: its own, beside the SMTP one."""
    return f"imap:{username}"


def store_imap_password(username: str, password: str) -> str:
    """Keep the mailbox (IMAP) password for `username`; returns the keyring backend's name."""
    return store_password(_imap_user(username), password)


def delete_imap_password(username: str) -> bool:
    """Forget the mailbox password for `username`; False when none was stored."""
    return delete_password(_imap_user(username))


def lookup_imap_password(username: str, environ: Mapping[str, str]) -> str | None:
    """The mailbox password: SMAKOM_IMAP_PASSWORD (unattended runs) wins over the keyring."""
    if environ.get(IMAP_PASSWORD_VARIABLE):
        return environ[IMAP_PASSWORD_VARIABLE]
    if not username:
        return None
    with _keyring():
        return keyring.get_password(SERVICE, _imap_user(username))
