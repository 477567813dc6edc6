"""OAuth2 sign-in for Microsoft 365 with Microsoft's own library (msal): device code, refresh.

`smakom login` runs the device-code flow (RFC 8628): the office opens a web page on any
device, types a short code and signs in there, so it works over SSH and on a server with no
browser. msal's token cache (the refresh token above all) lives in the system keyring, never
in a file; every send and every `smakom inbox` asks for an access token silently, and msal
renews it with the refresh token when it has less than five minutes left.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import msal
import requests

from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _
from smakom_cli.signin.credentials import lookup_token_cache, store_token_cache

PUBLIC_CLOUD = "https://login.microsoftonline.com"
# Exchange Online's delegated permissions for SMTP AUTH and IMAP with OAuth2 (Microsoft Learn:
# "Authenticate an IMAP, POP or SMTP connection using OAuth").
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"

Purpose = Literal["smtp", "imap"]


@dataclass(frozen=True)
class OAuthSettings:
    """Where and as whom to sign in: the app registration, the authority, the scopes."""

    username: str
    client_id: str
    authority: str
    smtp_scope: str
    imap_scope: str
    ca_file: str = ""
    timeout: float = 30.0

    def scope(self, purpose: Purpose) -> str:
        return self.smtp_scope if purpose == "smtp" else self.imap_scope


@dataclass(frozen=True)
class DeviceCode:
    """What the office must do to sign in: open `verification_uri`, type `user_code`."""

    user_code: str
    verification_uri: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class AccessToken:
    """A short-lived access token for one mailbox; never printed, logged or written."""

    username: str
    token: str = field(repr=False)
    expires_at: dt.datetime


def oauth_settings(config: Config) -> OAuthSettings:
    """The [oauth] table with the provider's defaults (Microsoft's public cloud) filled in."""
    oauth = config.oauth
    authority = oauth.authority.rstrip("/") or f"{PUBLIC_CLOUD}/{oauth.tenant}"
    return OAuthSettings(
        username=config.smtp.username,
        client_id=oauth.client_id,
        authority=authority,
        smtp_scope=oauth.smtp_scope or SMTP_SCOPE,
        imap_scope=oauth.imap_scope or IMAP_SCOPE,
        ca_file=oauth.ca_file,
        timeout=config.smtp.timeout,
    )


def sign_in_for(config: Config) -> SignIn:
    """The OAuth2 sign-in of the configured mailbox, its tokens in the system keyring."""
    settings = oauth_settings(config)
    return SignIn(settings, KeyringTokenCache(settings.username))


def access_token(config: Config, purpose: Purpose = "imap") -> AccessToken:
    """A valid access token for `smakom inbox` (IMAP) or a send (SMTP), renewed silently.

    For IMAP with imapclient: `client.oauth2_login(token.username, token.token)`.
    Raises SmakomError (saying to run `smakom login`) when there is no usable sign-in.
    """
    return sign_in_for(config).access_token(purpose)


class KeyringTokenCache:
    """msal's token cache for one mailbox, read from and written back to the system keyring."""

    def __init__(self, username: str) -> None:
        self.username = username
        self.msal = msal.SerializableTokenCache()
        stored = lookup_token_cache(username)
        if stored:
            # A damaged cache is no cache: `smakom login` makes a new one.
            with suppress(ValueError):
                self.msal.deserialize(stored)

    def save(self) -> None:
        """Write the cache back when msal changed it (a new or refreshed token)."""
        if self.msal.has_state_changed:
            store_token_cache(self.username, self.msal.serialize())
            self.msal.has_state_changed = False


class SignIn:
    """One mailbox's OAuth2 sign-in for the length of a command; safe to share by threads."""

    def __init__(
        self,
        settings: OAuthSettings,
        cache: KeyringTokenCache,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self._clock = clock
        self._lock = threading.Lock()
        self._app: msal.PublicClientApplication | None = None

    def device_code_sign_in(
        self,
        show: Callable[[DeviceCode], None],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AccessToken:
        """Sign in with a device code: `show` tells the office the code, then this waits."""
        settings = self.settings
        with self._lock, _talking_to(settings):
            app = self._application()
            scopes = [settings.smtp_scope, settings.imap_scope]
            flow = app.initiate_device_flow(scopes=scopes)
            if "user_code" not in flow:
                raise SmakomError(_refusal(flow, settings))
            expires_at = float(flow["expires_at"])
            show(
                DeviceCode(
                    user_code=flow["user_code"],
                    verification_uri=flow.get("verification_uri", flow.get("verification_url")),
                    expires_at=_utc(expires_at),
                )
            )
            while True:
                # One poll each time (msal's documented non-blocking use), so the waiting
                # between polls is ours: it follows the server's interval and slow_down.
                result = app.acquire_token_by_device_flow(flow, exit_condition=lambda _flow: True)
                if result.get("error") not in ("authorization_pending", "slow_down"):
                    break
                if self._clock() >= expires_at:
                    result = {"error": "expired_token"}
                    break
                sleep(float(flow.get("interval", 5)))
            if "access_token" not in result:
                raise SmakomError(_refusal(result, settings))
            signed_in = str(result.get("id_token_claims", {}).get("preferred_username", ""))
            if signed_in and signed_in.lower() != settings.username.lower():
                raise SmakomError(
                    _(
                        "You signed in as {signed_in}, but smakom sends as {username} ([smtp] "
                        "username, or [sender] email): run `smakom login` again and sign in as "
                        "{username}."
                    ).format(signed_in=signed_in, username=settings.username)
                )
            self.cache.save()
            return self._token(result)

    def access_token(self, purpose: Purpose = "smtp") -> AccessToken:
        """A valid access token for SMTP or IMAP, renewed silently with the refresh token."""
        settings = self.settings
        with self._lock, _talking_to(settings):
            app = self._application()
            accounts = app.get_accounts(username=settings.username)
            if not accounts:
                raise SmakomError(
                    _("{username} is not signed in with OAuth2: run `smakom login`.").format(
                        username=settings.username
                    )
                )
            result = app.acquire_token_silent_with_error([settings.scope(purpose)], accounts[0])
            if not result or "access_token" not in result:
                raise SmakomError(_refusal(result or {"error": "invalid_grant"}, settings))
            self.cache.save()
            return self._token(result)

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            settings = self.settings
            self._app = msal.PublicClientApplication(
                settings.client_id,
                authority=settings.authority,
                token_cache=self.cache.msal,
                # The authority is the organisation's own setting (a sovereign cloud, a test
                # server): msal must not ask login.microsoftonline.com whether it knows it.
                instance_discovery=False,
                http_client=_http_client(settings),
            )
        return self._app

    def _token(self, result: dict[str, Any]) -> AccessToken:
        expires_in = float(result.get("expires_in", 0))
        return AccessToken(
            username=self.settings.username,
            token=str(result["access_token"]),
            expires_at=_utc(self._clock() + expires_in),
        )


def _http_client(settings: OAuthSettings) -> Any:
    """A requests session that checks certificates against [oauth] ca_file when it is set.

    Given per request, because requests lets REQUESTS_CA_BUNDLE override a session's own
    `verify` (psf/requests#3829), which would silently ignore the configured file.
    """
    session: Any = requests.Session()
    session.request = functools.partial(
        session.request, timeout=settings.timeout, verify=settings.ca_file or True
    )
    return session


@contextmanager
def _talking_to(settings: OAuthSettings) -> Iterator[None]:
    """Turn a failure to reach the sign-in server into one sentence naming the setting."""
    authority = settings.authority
    try:
        yield
    except requests.exceptions.SSLError:
        raise SmakomError(
            _(
                "The certificate of the sign-in server {authority} could not be "
                "verified. If it uses its own certificate authority, set [oauth] "
                "ca_file to that authority's certificate (a PEM file)."
            ).format(authority=authority)
        ) from None
    except requests.exceptions.RequestException as exc:
        raise SmakomError(
            _(
                "Could not reach the sign-in server {authority} ({name__}). Check the "
                "network, and [oauth] tenant and authority in smakom.toml."
            ).format(authority=authority, name__=type(exc).__name__)
        ) from None
    except json.JSONDecodeError:
        raise SmakomError(
            _(
                "The sign-in server {authority} gave an answer that is not OAuth2: "
                "check [oauth] authority in smakom.toml."
            ).format(authority=authority)
        ) from None
    except ValueError:
        # msal's way of saying the authority's discovery document is missing or wrong.
        raise SmakomError(
            _(
                "{authority} is not a sign-in authority smakom can use: check [oauth] "
                "tenant (your organisation's tenant ID or domain) and authority in "
                "smakom.toml."
            ).format(authority=authority)
        ) from None


# Entra's error numbers (AADSTS…) the office can do something about, with what to do.
_ENTRA_ERRORS = {
    "AADSTS7000218": N_(
        "the app registration does not allow public client flows: in Microsoft Entra, open "
        "it, Authentication, and set 'Allow public client flows' to Yes"
    ),
    "AADSTS700016": N_(
        "[oauth] client_id is not an app registration in this tenant: copy the Application "
        "(client) ID from Microsoft Entra, and check [oauth] tenant"
    ),
    "AADSTS90002": N_("the tenant was not found: check [oauth] tenant in smakom.toml"),
    "AADSTS65001": N_(
        "nobody has consented to the app's permissions yet: an administrator must grant admin "
        "consent for SMTP.Send and IMAP.AccessAsUser.All in Microsoft Entra"
    ),
    "AADSTS50076": N_("the organisation requires multi-factor sign-in: run `smakom login` again"),
    "AADSTS50173": N_("the password changed or the sign-in was revoked since: sign in again"),
}


def _refusal(result: dict[str, Any], settings: OAuthSettings) -> str:
    """One sentence for an OAuth2 error answer (RFC 6749 5.2, RFC 8628 3.5)."""
    error = str(result.get("error", ""))
    description = str(result.get("error_description", ""))
    for code, advice in _ENTRA_ERRORS.items():
        if code in description:
            return _("Microsoft Entra refused the sign-in: {advice}.").format(advice=_(advice))
    if error == "expired_token":
        return _(
            "The sign-in code expired before the sign-in was finished: run `smakom login` again."
        )
    if error in ("access_denied", "authorization_declined"):
        return _(
            "The sign-in was declined at the sign-in page. Run `smakom login` again and sign "
            "in as {username}, accepting the permissions asked for."
        ).format(username=settings.username)
    if error == "invalid_grant":
        return _(
            "The sign-in of {username} has expired or was revoked: run `smakom login` to sign "
            "in again."
        ).format(username=settings.username)
    first_line = description.splitlines()[0] if description else _("no reason given")
    return _("The sign-in server {authority} refused: {error} ({reason}).").format(
        authority=settings.authority, error=error or "error", reason=first_line
    )


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
