"""Provider profiles in smakom.toml ([smtp] provider, auth, [oauth]) and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smakom_cli.config import load_config
from smakom_cli.errors import SmakomError
from smakom_cli.signin.oauth import IMAP_SCOPE, SMTP_SCOPE, oauth_settings
from smakom_cli.signin.providers import explain_reply

MICROSOFT = """
[sender]
name = "SmåKom"
email = "nyhetsbrev@smakom.se"

[smtp]
provider = "microsoft365"

[oauth]
client_id = "7b1f0c2e-5a8d-4c1e-9f3a-000000000013"
tenant = "smakom.onmicrosoft.com"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smakom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_microsoft365_alone_is_a_complete_smtp_configuration(tmp_path: Path) -> None:
    """provider = "microsoft365", the address and the app registration fill in everything."""
    config = load_config(write(tmp_path, MICROSOFT))
    smtp = config.smtp

    assert (smtp.host, smtp.port, smtp.security) == ("smtp.office365.com", 587, "starttls")
    assert (smtp.auth, smtp.username) == ("oauth2", "nyhetsbrev@smakom.se")
    assert (smtp.rate_per_minute, smtp.rate_per_day) == (30, 10_000)
    oauth = oauth_settings(config)
    assert oauth.authority == "https://login.microsoftonline.com/smakom.onmicrosoft.com"
    assert (oauth.smtp_scope, oauth.imap_scope) == (SMTP_SCOPE, IMAP_SCOPE)


def test_every_profile_value_can_be_overridden(tmp_path: Path) -> None:
    """A key written in [smtp] wins over the provider's profile."""
    text = MICROSOFT.replace(
        'provider = "microsoft365"',
        'provider = "microsoft365"\nrate_per_day = 50\nport = 25\nusername = "kansli@smakom.se"',
    )
    text += 'authority = "https://login.microsoftonline.us/gov-tenant"\n'
    config = load_config(write(tmp_path, text))

    assert (config.smtp.rate_per_day, config.smtp.port) == (50, 25)
    assert config.smtp.username == "kansli@smakom.se"
    assert config.smtp.rate_per_minute == 30
    assert oauth_settings(config).authority == "https://login.microsoftonline.us/gov-tenant"


def test_google_signs_in_with_an_app_password(tmp_path: Path) -> None:
    """provider = "google" is smtp.gmail.com with a password (an app password), 2,000 a day."""
    text = '[sender]\nemail = "kansli@smakom.se"\n[smtp]\nprovider = "google"\n'
    smtp = load_config(write(tmp_path, text)).smtp

    assert (smtp.host, smtp.port, smtp.security, smtp.auth) == (
        "smtp.gmail.com",
        587,
        "starttls",
        "password",
    )
    assert smtp.rate_per_day == 2_000


def test_no_provider_keeps_the_old_defaults(tmp_path: Path) -> None:
    """Without a provider, [smtp] is what it always was: a password, no daily limit."""
    smtp = load_config(write(tmp_path, '[smtp]\nhost = "mail.kommun.se"\n')).smtp

    assert (smtp.provider, smtp.auth, smtp.rate_per_day, smtp.username) == (
        "custom",
        "password",
        0,
        "",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[smtp]\nprovider = "outlook"\n', r"'smtp.provider' must be one of microsoft365, goog"),
        ('[smtp]\nauth = "token"\n', r"'smtp.auth' must be one of password, oauth2"),
        ("[smtp]\nrate_per_day = -1\n", r"'smtp.rate_per_day' must be a whole number from 0"),
        (MICROSOFT.replace("client_id", "# client_id"), r"needs \[oauth\] client_id"),
        (
            '[sender]\nemail = "a@b.se"\n[smtp]\nprovider = "google"\nauth = "oauth2"\n',
            "signs in to Google with an app password",
        ),
        (MICROSOFT + 'scopes = ["x"]\n', r"unknown key 'oauth.scopes'"),
        (MICROSOFT + "client_secret = 'x'\n", r"unknown key 'oauth.client_secret'"),
    ],
)
def test_wrong_sign_in_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    """A wrong provider, sign-in method or app registration is one sentence naming the key."""
    with pytest.raises(SmakomError, match=message):
        load_config(write(tmp_path, text))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    provider=st.one_of(st.sampled_from(["microsoft365", "google", "custom"]), st.text()),
    auth=st.one_of(st.sampled_from(["password", "oauth2"]), st.text()),
    client_id=st.text(),
    rate_per_day=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_any_sign_in_settings_load_or_say_why(
    tmp_path: Path, provider: str, auth: str, client_id: str, rate_per_day: int
) -> None:
    """Whatever [smtp] provider/auth and [oauth] hold, loading succeeds or is a SmakomError."""
    text = (
        f'[sender]\nemail = "kansli@smakom.se"\n[smtp]\nprovider = {json.dumps(provider)}\n'
        f"auth = {json.dumps(auth)}\nrate_per_day = {rate_per_day}\n"
        f"[oauth]\nclient_id = {json.dumps(client_id)}\n"
    )
    try:
        config = load_config(write(tmp_path, text))
    except SmakomError:
        return
    assert config.smtp.provider in ("microsoft365", "google", "custom")
    assert config.smtp.auth in ("password", "oauth2")
    assert config.smtp.rate_per_day >= 0


@pytest.mark.parametrize(
    ("provider", "reply", "advice"),
    [
        (
            "microsoft365",
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
            "the Tenant.",
            "Authenticated SMTP",
        ),
        (
            "microsoft365",
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
            'auth = "oauth2"',
        ),
        ("microsoft365", "530 5.7.57 Client not authenticated to send mail", "login --check"),
        ("microsoft365", "535 5.7.3 Authentication unsuccessful", "SMTP.Send"),
        (
            "microsoft365",
            "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
            "rate_per_minute",
        ),
        (
            "microsoft365",
            "554 5.2.2 STOREDRV.ClientSubmit; sender quota exceeded",
            "within 24 hours",
        ),
        ("microsoft365", "550 5.7.708 Service unavailable. Access denied", "support request"),
        ("google", "421 4.7.28 Gmail has detected an unusual rate", "rate_per_minute"),
        ("google", "550 5.4.5 Daily user sending limit exceeded.", "tomorrow"),
        ("google", "535 5.7.8 Username and Password not accepted.", "app password"),
    ],
)
def test_provider_refusals_are_explained(provider: str, reply: str, advice: str) -> None:
    """A provider's own refusal codes get a sentence that says what the office can do."""
    explanation = explain_reply(provider, reply)
    assert explanation is not None
    assert advice in explanation


def test_other_replies_have_no_explanation() -> None:
    """Ordinary replies, other providers' codes and a custom server get no explanation."""
    assert explain_reply("microsoft365", "550 5.1.1 User unknown") is None
    assert explain_reply("google", "535 5.7.3 Authentication unsuccessful") is None
    assert explain_reply("custom", "535 5.7.139 Authentication unsuccessful") is None
    assert explain_reply("microsoft365", "550 15.7.3 not a status code") is None
