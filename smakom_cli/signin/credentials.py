"""The SMTP password and the unsubscribe-link secret, kept in the system keyring.

Neither is ever written to a file, a log, an exception message or the process arguments.
On a headless server without a keyring, environment variables take their place.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _
from smakom_cli.lazy import lazy_module

if TYPE_CHECKING:
    import keyring
    import keyring.backend
    import keyring.errors
else:
    # A secret from the environment (unattended runs) needs no keyring at all.
    keyring = lazy_module("keyring")

SERVICE = "smakom"
# Names of environment variables, not secrets.
PASSWORD_VARIABLE = "SMAKOM_SMTP_PASSWORD"  # noqa: S105
SECRET_VARIABLE = "SMAKOM_UNSUBSCRIBE_SECRET"  # noqa: S105
SERVICE_KEY_VARIABLE = "SMAKOM_SERVICE_KEY"
# A shorter secret would make unsubscribe links guessable.
_MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Password:
    """The SMTP password and where it came from, to say what to do when it is refused.

    `where` is the environment variable's name or the keyring backend's; the value is never
    part of the repr, so it cannot end up in a log or a traceback by accident.
    """

    value: str = field(repr=False)
    source: Literal["environment", "keyring"]
    where: str


@dataclass(frozen=True)
class UnencryptedKeyring:
    """A keyring backend that keeps secrets in a plain file (base64 is not encryption)."""

    backend: str
    file: Path | None


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


def find_password(username: str, environ: Mapping[str, str]) -> Password | None:
    """The SMTP password and its source: SMAKOM_SMTP_PASSWORD (unattended runs) wins over
    the keyring; None when neither has one."""
    if environ.get(PASSWORD_VARIABLE):
        return Password(environ[PASSWORD_VARIABLE], "environment", PASSWORD_VARIABLE)
    if not username:
        return None
    with _keyring():
        value = keyring.get_password(SERVICE, username)
        return Password(value, "keyring", keyring_name()) if value is not None else None


def unsubscribe_secret(list_id: str, environ: Mapping[str, str]) -> bytes | None:
    """The key that signs a list's unsubscribe links; None when none was made yet.

    Only reads: previews, checks and dry runs must not change the keyring. It must stay the
    same for the life of the list, or links in earlier issues stop working;
    SMAKOM_UNSUBSCRIBE_SECRET carries it to a server without a keyring.
    """
    text = environ.get(SECRET_VARIABLE, "")
    if text:
        if len(text) < _MIN_SECRET_LENGTH:
            raise SmakomError(
                _(
                    "{secret_variable} is too short: use at least {min_secret_length} "
                    "random characters (copy the one the keyring holds on the computer "
                    "that sent before)."
                ).format(secret_variable=SECRET_VARIABLE, min_secret_length=_MIN_SECRET_LENGTH)
            )
        return text.encode("utf-8")
    with _keyring():
        stored = keyring.get_password(SERVICE, _secret_user(list_id))
    return stored.encode("utf-8") if stored is not None else None


def create_unsubscribe_secret(list_id: str) -> bytes:
    """Make a new random key for a list's unsubscribe links and store it in the keyring.

    Never replaces one: a new key would break the link in every issue already sent.
    """
    with _keyring():
        if keyring.get_password(SERVICE, _secret_user(list_id)) is not None:
            raise SmakomError(
                _(
                    "the keyring already holds the unsubscribe-link key of {list_id}; it "
                    "is kept, because a new one would break the links in every issue "
                    "already sent."
                ).format(list_id=list_id)
            )
        made = secrets.token_urlsafe(32)
        keyring.set_password(SERVICE, _secret_user(list_id), made)
    return made.encode("utf-8")


def unencrypted_keyring() -> UnencryptedKeyring | None:
    """The keyring that stores new secrets, when it is a plain file anyone with access to
    the file can read (keyrings.alt's PlaintextKeyring, which keyring may pick on its own)."""
    with _keyring():
        backend = keyring.get_keyring()
    # A chain of backends writes to its first one (the highest priority) that works.
    chained = getattr(backend, "backends", None)
    writer = chained[0] if isinstance(chained, list) and chained else backend
    if "plaintext" not in type(writer).__name__.lower():
        return None
    file = getattr(writer, "file_path", None)
    return UnencryptedKeyring(_backend_name(writer), Path(file) if file else None)


def _secret_user(list_id: str) -> str:
    return f"unsubscribe-secret:{list_id}"


def service_key(list_id: str, environ: Mapping[str, str]) -> str | None:
    """The key `smakom sync` shows the one-click service: SMAKOM_SERVICE_KEY, else the keyring."""
    text = environ.get(SERVICE_KEY_VARIABLE, "")
    if text:
        _check_service_key(text, SERVICE_KEY_VARIABLE)
        return text
    if not list_id:
        return None
    with _keyring(stand_in=SERVICE_KEY_VARIABLE):
        return keyring.get_password(SERVICE, f"service-key:{list_id}")


def store_service_key(list_id: str, key: str) -> str:
    """Keep the one-click service's sync key in the keyring; returns the backend's name."""
    _check_service_key(key, _("The service key"))
    with _keyring():
        keyring.set_password(SERVICE, f"service-key:{list_id}", key)
        return keyring_name()


_MAKE_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


def _check_service_key(key: str, name: str) -> None:
    # Whoever has it can read who unsubscribed; a short or made-up one could be guessed.
    problem = key_problem(key)
    if problem:
        raise SmakomError(f"{name} {problem}")


def key_problem(key: str) -> str:
    """Why `key` cannot be a random key (the end of a sentence), or "" when it can be.

    Too regular: fewer than 8 different characters, one piece repeated ("abcabc…"), or
    three steps in four to the same or a neighbouring character ("aaaa…", "abcd…", "1234…") —
    none of which 32 characters from `secrets` ever come near. (Half the steps was too few:
    about one hex key in 40,000 from `secrets.token_hex(16)` has that many.)
    """
    advice = _("(make one with: {command}).").format(command=_MAKE_KEY)
    if len(key) < _MIN_SECRET_LENGTH or key != key.strip():
        return _("must be at least {length} random characters without spaces {advice}").format(
            length=_MIN_SECRET_LENGTH, advice=advice
        )
    steps = sum(abs(ord(a) - ord(b)) <= 1 for a, b in itertools.pairwise(key))
    repeated = any(
        len(key) % size == 0 and key == key[:size] * (len(key) // size)
        for size in range(1, len(key) // 2 + 1)
    )
    if len(set(key)) < 8 or repeated or steps * 4 > (len(key) - 1) * 3:
        return _("is too regular to be random: use one made by a program {advice}").format(
            advice=advice
        )
    return ""


# Windows' Credential Manager holds at most 2,560 bytes a credential (1,280 characters as
# keyring stores them, keyring#540); an OAuth2 token cache is several times that.
_CHUNK = 1_000


def _token_cache_user(username: str) -> str:
    return f"oauth-token-cache:{username}"


def store_token_cache(username: str, text: str) -> None:
    """Keep the OAuth2 token cache of `username`, in pieces small enough for every keyring."""
    head = _token_cache_user(username)
    chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    with _keyring(oauth=True):
        previous = _chunk_count(head)
        for number, chunk in enumerate(chunks):
            keyring.set_password(SERVICE, f"{head}:{number}", chunk)
        # The count last: an interrupted write leaves the previous cache readable.
        keyring.set_password(SERVICE, head, str(len(chunks)))
        for number in range(len(chunks), previous):
            _delete(f"{head}:{number}")


def lookup_token_cache(username: str) -> str | None:
    """The OAuth2 token cache of `username`; None when there is none (or it is incomplete)."""
    head = _token_cache_user(username)
    with _keyring(oauth=True):
        parts = []
        for number in range(_chunk_count(head)):
            chunk = keyring.get_password(SERVICE, f"{head}:{number}")
            if chunk is None:
                return None
            parts.append(chunk)
        return "".join(parts) if parts else None


def delete_token_cache(username: str) -> bool:
    """Forget the OAuth2 tokens of `username`; False when none were stored."""
    head = _token_cache_user(username)
    with _keyring(oauth=True):
        count = _chunk_count(head)
        if keyring.get_password(SERVICE, head) is None:
            return False
        for number in range(count):
            _delete(f"{head}:{number}")
        _delete(head)
        return True


def _chunk_count(head: str) -> int:
    stored = keyring.get_password(SERVICE, head)
    return int(stored) if stored and stored.isdigit() else 0


def _delete(user: str) -> None:
    with suppress(keyring.errors.PasswordDeleteError):  # already gone: what deleting wants
        keyring.delete_password(SERVICE, user)


def keyring_name() -> str:
    """Which keyring backend holds the secrets (e.g. "Windows WinVaultKeyring")."""
    with _keyring():
        return _backend_name(keyring.get_keyring())


def _backend_name(backend: keyring.backend.KeyringBackend) -> str:
    return str(backend.name)


@contextmanager
def _keyring(*, oauth: bool = False, stand_in: str = "") -> Iterator[None]:
    """Turn the keyring's errors into one sentence that says how to go on without it:
    `stand_in` is the environment variable that can hold what was looked up."""
    if stand_in:
        advice = _(
            "Set {variable} in the environment for unattended runs, or install a keyring "
            "backend (see https://pypi.org/project/keyring/)."
        ).format(variable=stand_in)
    else:
        advice = _(
            "Set {password_variable} (and {secret_variable}) in the environment "
            "for unattended runs, or install a keyring backend (see "
            "https://pypi.org/project/keyring/)."
        ).format(password_variable=PASSWORD_VARIABLE, secret_variable=SECRET_VARIABLE)
    if oauth:
        # Tokens renew themselves, so they cannot live in an environment variable.
        advice = _(
            "OAuth2 sign-in keeps its tokens in the keyring: install a keyring "
            "backend (see https://pypi.org/project/keyring/) and run `smakom "
            "login` again."
        )
    try:
        yield
    except keyring.errors.NoKeyringError:
        raise SmakomError(
            _("There is no system keyring on this machine. {advice}").format(advice=advice)
        ) from None
    except keyring.errors.KeyringError as exc:
        raise SmakomError(
            _("The system keyring could not be used ({name__}). {advice}").format(
                name__=type(exc).__name__, advice=advice
            )
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
