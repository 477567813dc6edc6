"""Mail providers smakom knows: their SMTP settings, sign-in, limits and refusals.

`[smtp] provider = "microsoft365"` (or "google") fills in host, port, security, the sign-in
method and the provider's published sending limits; any of them written in smakom.toml wins.
`explain_reply` turns a provider's own refusal codes into a sentence the office can act on.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from smakom_cli.i18n import N_, _

if TYPE_CHECKING:
    from smakom_cli.config import Auth, Security

CUSTOM = "custom"


@dataclass(frozen=True)
class Profile:
    """What a provider expects of an SMTP client, as [smtp] keys."""

    title: str
    host: str
    port: int
    security: Security
    auth: Auth
    rate_per_minute: int
    rate_per_day: int

    def defaults(self) -> dict[str, Any]:
        """The [smtp] keys this profile fills in when smakom.toml leaves them out."""
        values = asdict(self)
        del values["title"]
        return values


PROFILES = {
    # Exchange Online limits: 30 messages a minute, 10,000 recipients a day per mailbox
    # (learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/
    # exchange-online-limits); password SMTP AUTH goes away in 2026 (MC786329), so OAuth2.
    "microsoft365": Profile(
        title=_("Microsoft 365"),
        host="smtp.office365.com",
        port=587,
        security="starttls",
        auth="oauth2",
        rate_per_minute=30,
        rate_per_day=10_000,
    ),
    # Google Workspace: about 2,000 messages a day per user (support.google.com/a/answer/166852);
    # no published per-minute limit. Signing in is with an app password (docs/mail-providers.md).
    "google": Profile(
        title=_("Google"),
        host="smtp.gmail.com",
        port=587,
        security="starttls",
        auth="password",
        rate_per_minute=0,
        rate_per_day=2_000,
    ),
}
PROVIDERS = (*PROFILES, CUSTOM)

_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")

_MICROSOFT = {
    "5.7.139": N_(
        "Microsoft 365 has SMTP sign-in turned off for this mailbox or the whole organisation: "
        "an administrator must turn on 'Authenticated SMTP' for the mailbox (Microsoft 365 admin "
        "center → Users → the mailbox → Mail → Manage email apps)."
    ),
    "5.7.57": N_(
        "Microsoft 365 did not accept the sign-in for sending: check that [smtp] username is "
        "the mailbox that signed in, then run `smakom login --check`."
    ),
    "5.7.3": N_(
        "Microsoft 365 refused the sign-in: run `smakom login` again; if it keeps happening, "
        "an administrator must turn on 'Authenticated SMTP' for the mailbox and grant the app "
        "registration the SMTP.Send permission with admin consent (see docs/mail-providers.md)."
    ),
    "4.3.2": N_(
        "Microsoft 365 is limiting how fast this mailbox sends: keep [smtp] connections = 1 and "
        "rate_per_minute at 30 or less; the messages not sent yet go when you run the same "
        "command again."
    ),
    "5.2.2": N_(
        "Microsoft 365 says this mailbox has reached its sending limit (10,000 recipients a "
        "day): it can send again within 24 hours; run the same command then to continue."
    ),
    "5.7.708": N_(
        "Microsoft 365 does not accept mail from this organisation now (often a new tenant "
        "taken for a spam sender): an administrator must open a support request with Microsoft."
    ),
    "5.7.60": N_(
        "Microsoft 365 does not let the signed-in mailbox send as [sender] email: use that "
        "mailbox as [smtp] username, or have an administrator grant it 'Send As'."
    ),
}
_GOOGLE = {
    "4.7.28": N_(
        "Google is limiting mail from this account for sending too fast: set a lower [smtp] "
        "rate_per_minute and run the same command again later."
    ),
    "5.4.5": N_(
        "Google says this account has reached its daily sending limit (about 2,000 messages "
        "for Google Workspace, 500 for a free Gmail account): run the same command again "
        "tomorrow to continue."
    ),
    "5.7.8": N_(
        "Google did not accept the username and password: sign in with an app password "
        "(2-step verification on, then myaccount.google.com/apppasswords) and store it with "
        "`smakom login`."
    ),
    "5.7.9": N_(
        "Google requires an app password for this account: create one at "
        "myaccount.google.com/apppasswords and store it with `smakom login`."
    ),
}
_EXPLANATIONS = {"microsoft365": _MICROSOFT, "google": _GOOGLE}
# 5.7.139 also says "no more passwords" (MC786329, or Entra's security defaults).
_NO_PASSWORDS = N_(
    'Microsoft 365 no longer accepts a password for this mailbox: set [smtp] auth = "oauth2" '
    "and sign in with `smakom login` (see docs/mail-providers.md, Microsoft 365)."
)


def is_sending_limit(provider: str, reply_text: str) -> bool:
    """Whether a refusal means the mailbox has used up the provider's quota for the day.

    Such a refusal is the sender's, not the recipient's: the send stops, resumable, and
    nobody is marked as failed. Microsoft's 5.2.2 also means "recipient's mailbox full"
    elsewhere, so only its quota wording counts.
    """
    statuses = _STATUS.findall(reply_text)
    if provider == "microsoft365":
        text = reply_text.lower()
        return ("5.2.2" in statuses and "quota" in text) or "submissionquotaexceeded" in text
    if provider == "google":
        return "5.4.5" in statuses
    return False


def explain_reply(provider: str, reply_text: str) -> str | None:
    """What a provider-specific refusal means for the office, or None when it is not one."""
    table = _EXPLANATIONS.get(provider, {})
    text = reply_text.lower()
    for status in _STATUS.findall(reply_text):
        if status == "5.7.139" and ("basic authentication" in text or "security defaults" in text):
            return _(_NO_PASSWORDS)
        if status in table:
            return _(table[status])
    return None
