"""OAuth2 sign-in through the real msal code path against a real local OAuth2 server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

from smakom_cli.config import load_config
from smakom_cli.errors import SmakomError
from smakom_cli.signin.credentials import delete_token_cache, lookup_token_cache, store_token_cache
from smakom_cli.signin.oauth import (
    DeviceCode,
    KeyringTokenCache,
    OAuthSettings,
    SignIn,
    access_token,
)
from tests.oauth_server import CLIENT_ID, OAuthTestServer
from tests.smtp_server import USERNAME, Certificates

SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"


def settings_for(server: OAuthTestServer, **changes: str) -> OAuthSettings:
    values = {
        "username": USERNAME,
        "client_id": CLIENT_ID,
        "authority": server.authority,
        "smtp_scope": SMTP_SCOPE,
        "imap_scope": IMAP_SCOPE,
        "ca_file": server.ca_file,
        "timeout": 5.0,
        **changes,
    }
    return OAuthSettings(**values)  # type: ignore[arg-type]


def sign_in(server: OAuthTestServer, **changes: str) -> SignIn:
    settings = settings_for(server, **changes)
    return SignIn(settings, KeyringTokenCache(settings.username))


def entered(server: OAuthTestServer, *, deny: bool = False) -> Callable[[DeviceCode], None]:
    """The person at the sign-in page, who enters the code as soon as smakom shows it."""
    return lambda _code: server.approve(deny=deny)


def test_device_code_sign_in_gives_a_token_the_server_accepts(
    oauth_server: OAuthTestServer,
) -> None:
    """The code is shown, the person approves it, and the token is good for SMTP and IMAP."""
    shown: list[DeviceCode] = []
    token = sign_in(oauth_server).device_code_sign_in(
        lambda code: (shown.append(code), oauth_server.approve())
    )

    assert [code.user_code for code in shown] == [oauth_server.grants[0].user_code]
    assert shown[0].verification_uri == f"{oauth_server.base_url}/devicelogin"
    assert oauth_server.valid(USERNAME, token.token, "https://outlook.office.com/SMTP.Send")
    assert oauth_server.valid(USERNAME, token.token, IMAP_SCOPE)
    assert token.token not in repr(token)


def test_login_waits_while_the_code_is_not_entered_yet(oauth_server: OAuthTestServer) -> None:
    """While the server says authorization_pending, smakom waits the server's interval."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)
        oauth_server.approve()

    sign_in(oauth_server).device_code_sign_in(lambda _code: None, sleep=wait)

    assert waits == [1.0]
    assert oauth_server.polls == 2


def test_tokens_are_kept_in_the_keyring_in_small_pieces(
    oauth_server: OAuthTestServer, test_keyring: PlaintextKeyring
) -> None:
    """The token cache is in the keyring, split so Windows' 1,280-character limit holds."""
    sign_in(oauth_server).device_code_sign_in(entered(oauth_server))

    cache = lookup_token_cache(USERNAME)
    assert cache is not None
    assert all(secret in cache for secret in oauth_server.secrets()[:2])
    count = int(test_keyring.get_password("smakom", f"oauth-token-cache:{USERNAME}") or 0)
    pieces = [
        test_keyring.get_password("smakom", f"oauth-token-cache:{USERNAME}:{n}")
        for n in range(count)
    ]
    assert count >= 2
    assert all(piece is not None and len(piece) <= 1000 for piece in pieces)


def test_a_shorter_cache_leaves_no_old_pieces(test_keyring: PlaintextKeyring) -> None:
    """Storing a smaller cache over a bigger one removes the pieces it no longer needs."""
    store_token_cache(USERNAME, "x" * 3500)
    store_token_cache(USERNAME, "y" * 10)

    assert lookup_token_cache(USERNAME) == "y" * 10
    assert test_keyring.get_password("smakom", f"oauth-token-cache:{USERNAME}:1") is None


def test_access_token_comes_silently_and_is_renewed_when_expired(
    oauth_server: OAuthTestServer,
) -> None:
    """A later command gets the token without signing in; an expired one is renewed."""
    oauth_server.token_lifetime = 3  # msal renews it after 2 seconds (oauth_server.MSAL_MARGIN)
    first = sign_in(oauth_server).device_code_sign_in(entered(oauth_server))

    later = sign_in(oauth_server)  # a new command: only the keyring carries the sign-in
    assert later.access_token().token == first.token
    assert oauth_server.refreshes == 0
    time.sleep(2.2)
    renewed = later.access_token()
    assert renewed.token != first.token
    assert oauth_server.refreshes == 1
    assert oauth_server.valid(USERNAME, renewed.token, SMTP_SCOPE)
    imap = sign_in(oauth_server).access_token("imap")
    assert oauth_server.valid(USERNAME, imap.token, IMAP_SCOPE)


def test_without_a_sign_in_the_error_says_run_login(oauth_server: OAuthTestServer) -> None:
    """Asking for a token before `smakom login` says to run it."""
    with pytest.raises(SmakomError, match="not signed in with OAuth2: run `smakom login`"):
        sign_in(oauth_server).access_token()


def test_a_revoked_sign_in_says_sign_in_again(oauth_server: OAuthTestServer) -> None:
    """When the refresh token no longer works, the error says to run `smakom login`."""
    oauth_server.token_lifetime = 0.5
    sign_in(oauth_server).device_code_sign_in(entered(oauth_server))
    oauth_server.refresh_tokens.clear()
    time.sleep(0.6)

    with pytest.raises(SmakomError, match="expired or was revoked: run `smakom login`"):
        sign_in(oauth_server).access_token()


def test_declined_sign_in_says_so(oauth_server: OAuthTestServer) -> None:
    """Declining at the sign-in page ends `login` with a sentence, and stores nothing."""
    with pytest.raises(SmakomError, match="declined"):
        sign_in(oauth_server).device_code_sign_in(entered(oauth_server, deny=True))
    assert lookup_token_cache(USERNAME) is None


def test_a_code_nobody_enters_expires(oauth_server: OAuthTestServer) -> None:
    """A code not entered in time ends `login` with "expired", after the code's lifetime."""
    oauth_server.code_lifetime = 1
    started = time.monotonic()
    with pytest.raises(SmakomError, match="code expired"):
        sign_in(oauth_server).device_code_sign_in(lambda _code: None)
    assert time.monotonic() - started < 5


@pytest.mark.filterwarnings("ignore:Attempted too soon")  # msal's note: the test does not wait
def test_slow_down_makes_polling_wait_longer(oauth_server: OAuthTestServer) -> None:
    """After the server says slow_down, smakom waits 5 seconds longer between polls."""
    oauth_server.slow_down = 1
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            oauth_server.approve()

    sign_in(oauth_server).device_code_sign_in(lambda _code: None, sleep=wait)

    assert waits == [6.0, 6.0]


def test_signing_in_as_another_mailbox_is_refused(oauth_server: OAuthTestServer) -> None:
    """Signing in as a mailbox other than the one smakom sends as is an error, nothing kept."""
    oauth_server.username = "someone.else@smakom.se"
    with pytest.raises(SmakomError, match=r"signed in as someone\.else@smakom\.se"):
        sign_in(oauth_server).device_code_sign_in(entered(oauth_server))
    assert lookup_token_cache(USERNAME) is None


def test_an_unknown_certificate_authority_is_named(
    oauth_server: OAuthTestServer, smtp_certificates: Certificates
) -> None:
    """A sign-in server whose certificate does not verify is refused, naming [oauth] ca_file."""
    other = str(smtp_certificates.other_ca_file)
    with pytest.raises(SmakomError, match=r"could not be verified.*\[oauth\] ca_file"):
        sign_in(oauth_server, ca_file=other).device_code_sign_in(lambda _code: None)


def test_a_wrong_client_id_is_explained(oauth_server: OAuthTestServer) -> None:
    """An app registration the server does not know is named as [oauth] client_id."""
    with pytest.raises(SmakomError, match=r"\[oauth\] client_id is not an app registration"):
        sign_in(oauth_server, client_id="nope").device_code_sign_in(lambda _code: None)


def test_forgetting_the_sign_in_removes_every_piece(
    oauth_server: OAuthTestServer, test_keyring: PlaintextKeyring
) -> None:
    """Deleting the token cache (what `smakom logout` does) leaves nothing in the keyring."""
    sign_in(oauth_server).device_code_sign_in(entered(oauth_server))

    assert delete_token_cache(USERNAME) is True
    assert lookup_token_cache(USERNAME) is None
    assert test_keyring.get_password("smakom", f"oauth-token-cache:{USERNAME}:0") is None
    assert delete_token_cache(USERNAME) is False
    with pytest.raises(SmakomError, match="not signed in"):
        sign_in(oauth_server).access_token()


def test_inbox_gets_an_imap_token_from_the_configuration(
    oauth_server: OAuthTestServer, tmp_path: Path
) -> None:
    """`oauth.access_token(config, "imap")` is what `smakom inbox` calls: an IMAP token."""
    sign_in(oauth_server).device_code_sign_in(entered(oauth_server))
    path = tmp_path / "smakom.toml"
    path.write_text(
        f'[sender]\nemail = "{USERNAME}"\n[smtp]\nauth = "oauth2"\nusername = "{USERNAME}"\n'
        + oauth_server.toml(),
        encoding="utf-8",
    )

    token = access_token(load_config(path), "imap")

    assert token.username == USERNAME
    assert oauth_server.valid(USERNAME, token.token, IMAP_SCOPE)
