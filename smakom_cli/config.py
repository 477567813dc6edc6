"""The newsletter folder's `smakom.toml`: finding it, reading it and checking every key.

The file holds everything that is the same in every issue: sender, list identity, SMTP
settings, brand, contact block, social links and footer. It never holds a password.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from smakom_cli.compose.images import ImagePlacement
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import N_, _
from smakom_cli.textfiles import read_saved_text

T = TypeVar("T")

CONFIG_NAME = "smakom.toml"
# The choices a setting allows, as types: `_convert` refuses any other value when the file is
# read, so mypy sees every comparison with them (a typo in `== "oauth2"` is an error).
Security = Literal["starttls", "tls", "none"]
InboxSecurity = Literal["tls", "starttls"]  # IMAP is never read unencrypted
Auth = Literal["password", "oauth2"]
Provider = Literal["microsoft365", "google", "custom"]  # the profiles of signin/providers.py


@dataclass(frozen=True)
class Range:
    """The values a number in smakom.toml may take; `above` excludes `low` itself."""

    low: float
    high: float
    above: bool = False
    unit: str = ""
    note: str = ""

    def allows(self, value: float) -> bool:
        """True for a finite value inside the range (never for inf or nan)."""
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def describe(self, whole: bool) -> str:
        """The allowed values in words: "a whole number from 1 to 65535"."""
        low, high = _number(self.low), _number(self.high)
        if self.above and whole:
            text = _("a whole number above {low} and at most {high}")
        elif self.above:
            text = _("a number above {low} and at most {high}")
        elif whole:
            text = _("a whole number from {low} to {high}")
        else:
            text = _("a number from {low} to {high}")
        text = text.format(low=low, high=high)
        if self.unit:
            text = f"{text} {_(self.unit)}"
        return f"{text} ({_(self.note)})" if self.note else text


# Every number in smakom.toml, by its dotted key (a key in a list of tables without the
# index: "social.links.size"). A new number setting needs its line here:
# tests/test_config_ranges.py walks every dataclass below and fails for a key without one.
RANGES: dict[str, Range] = {
    "smtp.port": Range(1, 65535),
    "smtp.timeout": Range(0, 600, above=True, unit=N_("seconds")),
    "smtp.connections": Range(1, 10),
    "smtp.rate_per_minute": Range(0, 10_000, note=N_("0 means no limit")),
    "smtp.rate_per_hour": Range(0, 600_000, note=N_("0 means no limit")),
    "smtp.rate_per_day": Range(0, 10_000_000, note=N_("0 means no limit")),
    "smtp.retry_attempts": Range(0, 20),
    "smtp.retry_delay": Range(0, 3600, unit=N_("seconds")),
    "brand.logo_width": Range(1, 600, unit=N_("pixels")),
    "smtp.max_message_mb": Range(0, 1000, above=True, note=N_("your provider's limit, e.g. 25")),
    "inbox.port": Range(0, 65535, note=N_("0 means the usual one: 993 for tls, 143 for starttls")),
    "inbox.timeout": Range(0, 3600, above=True, unit=N_("seconds")),
    "inbox.soft_bounce_limit": Range(1, 100, unit=N_("issues")),
}

Format = Literal["email", "url", "unsubscribe_url", "color", "list_id", "dns_label"]
# Text settings with a shape; an empty value means "not set" and is left to `smakom check`.
FORMATS: dict[str, Format] = {
    "newsletter.list_id": "list_id",
    "newsletter.web_base_url": "url",
    "sender.email": "email",
    "sender.reply_to": "email",
    "unsubscribe.mailto": "email",
    "unsubscribe.url": "unsubscribe_url",
    "unsubscribe.service": "unsubscribe_url",
    "sender.dkim_selector": "dns_label",
    "brand.primary_color": "color",
    "brand.background_color": "color",
    "brand.text_color": "color",
    "brand.link_color": "color",
    "contact.email": "email",
    "contact.website": "url",
    "social.links.url": "url",
}
# Text settings that may run over several lines; every other one is a single line without
# control characters, so no setting can put a line into a header (List-Id, From, …).
MULTILINE_KEYS = frozenset({"social.text", "footer.text"})
_LINE_BREAKS = "\n\r\t"
# RFC 2919 2: a list-id is a dot-atom (RFC 5322 3.2.3), as an e-mail domain is.
_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
# A DKIM selector is one or more DNS labels (RFC 6376 §3.1): "s2026", "mail.eu".
_DNS_LABELS = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# A one-click service on this computer (a test or a local relay) may speak plain http.
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class NewsletterConfig:
    """The list itself: its name, its identity in List-Id and where its files are."""

    name: str = "Nyhetsbrev"
    list_id: str = ""
    subscribers: str = "subscribers.csv"
    issues: str = "issues"
    templates: str = "templates"
    web_base_url: str = ""
    test_subject_prefix: str = "[TEST] "
    images: ImagePlacement = "embed"


@dataclass(frozen=True)
class SenderConfig:
    name: str = ""
    email: str = ""
    reply_to: str = ""
    # The DKIM selector a custom provider signs with, for `smakom doctor` to look up
    # (Microsoft 365's and Google's are known).
    dkim_selector: str = ""


@dataclass(frozen=True)
class UnsubscribeConfig:
    """Where a reader unsubscribes: an address, a web page with a signed token, or both."""

    mailto: str = ""
    url: str = ""
    # Where smakom itself reaches the one-click service, when not at the url's own origin
    # (an address inside the office's network, or a service on this machine for a test).
    service: str = ""


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    ca_file: str = ""
    timeout: float = 30.0
    connections: int = 1
    rate_per_minute: int = 0
    rate_per_hour: int = 0
    retry_attempts: int = 5
    retry_delay: float = 30.0
    max_message_mb: float = 25.0
    # Filled in from the provider's profile unless smakom.toml gives them (providers.py).
    provider: Provider = "custom"
    auth: Auth = "password"
    rate_per_day: int = 0


@dataclass(frozen=True)
class OAuthConfig:
    """The organisation's app registration for OAuth2 sign-in, and where its tokens come from.

    Empty values mean the provider's defaults (oauth.py): Microsoft's public cloud and the
    Exchange Online scopes; a sovereign cloud or a test server gives its own.
    """

    client_id: str = ""
    tenant: str = "organizations"
    authority: str = ""
    smtp_scope: str = ""
    imap_scope: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class InboxConfig:
    """The mailbox `smakom inbox` reads over IMAP, and the folders it sorts mail into."""

    host: str = ""
    port: int = 0  # 0: the usual port of the security mode, 993 (tls) or 143 (starttls)
    security: InboxSecurity = "tls"
    username: str = ""
    ca_file: str = ""
    timeout: float = 30.0
    folder: str = "INBOX"
    bounce_folder: str = "smakom/studsar"
    unsubscribe_folder: str = "smakom/avregistreringar"
    auto_reply_folder: str = "smakom/autosvar"
    unreadable_folder: str = "smakom/olasliga"
    soft_bounce_limit: int = 3

    @property
    def server_port(self) -> int:
        return self.port or (143 if self.security == "starttls" else 993)


@dataclass(frozen=True)
class BrandConfig:
    logo: str = ""
    logo_alt: str = ""
    logo_width: int = 200
    banner: str = "Nyhetsbrev"
    primary_color: str = "#005a7a"
    background_color: str = "#eef2f4"
    text_color: str = "#2b2b2b"
    link_color: str = "#005a7a"


@dataclass(frozen=True)
class ContactConfig:
    heading: str = "Kontakt"
    name: str = ""
    role: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""


@dataclass(frozen=True)
class SocialLink:
    label: str = ""
    url: str = ""
    icon: str = ""


@dataclass(frozen=True)
class SocialConfig:
    heading: str = ""
    text: str = ""
    links: tuple[SocialLink, ...] = ()


@dataclass(frozen=True)
class FooterConfig:
    text: str = ""
    unsubscribe_text: str = "Skulle du vilja avsluta din prenumeration,"
    unsubscribe_link_text: str = "klicka här"


@dataclass(frozen=True)
class Config:
    """A whole `smakom.toml`, with `path` the file it came from."""

    path: Path
    newsletter: NewsletterConfig = field(default_factory=NewsletterConfig)
    sender: SenderConfig = field(default_factory=SenderConfig)
    unsubscribe: UnsubscribeConfig = field(default_factory=UnsubscribeConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    brand: BrandConfig = field(default_factory=BrandConfig)
    contact: ContactConfig = field(default_factory=ContactConfig)
    social: SocialConfig = field(default_factory=SocialConfig)
    footer: FooterConfig = field(default_factory=FooterConfig)

    @property
    def folder(self) -> Path:
        """The newsletter folder: relative paths in the file are relative to it."""
        return self.path.parent

    @property
    def subscribers_path(self) -> Path:
        return self.folder / self.newsletter.subscribers

    @property
    def suppression_path(self) -> Path:
        return self.folder / "unsubscribed.csv"

    @property
    def issues_dir(self) -> Path:
        return self.folder / self.newsletter.issues

    @property
    def templates_dir(self) -> Path:
        return self.folder / self.newsletter.templates

    @property
    def outbox_dir(self) -> Path:
        return self.folder / "outbox"

    @property
    def journal_dir(self) -> Path:
        return self.folder / "sent"

    @property
    def list_id(self) -> str:
        """The RFC 2919 list identifier: configured, or derived from the sender's domain."""
        if self.newsletter.list_id:
            return self.newsletter.list_id
        domain = self.sender.email.rpartition("@")[2] or "localhost"
        return f"newsletter.{domain}"


def find_config(start: Path) -> Path:
    """Look for `smakom.toml` in `start` and then in each parent folder."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise SmakomError(
        _(
            "No {config_name} found in {start} or any folder above it. Run the "
            "command inside a newsletter folder, give --config PATH, or create one "
            "with `smakom init DIR`."
        ).format(config_name=CONFIG_NAME, start=start)
    )


def load_config(path: Path) -> Config:
    """Read and check `smakom.toml`; every unknown key or wrong type is an error naming it."""
    try:
        text = read_saved_text(path)
    except FileNotFoundError:
        raise SmakomError(_("{path}: no such configuration file.").format(path=path)) from None
    except OSError as exc:
        raise SmakomError(
            _("{path}: cannot be read ({exc}).").format(path=path, exc=exc.strerror or exc)
        ) from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SmakomError(_("{path}: not valid TOML: {exc}.").format(path=path, exc=exc)) from None
    if "password" in _all_keys(table):
        raise SmakomError(
            _(
                "{path}: a password must never be stored in {config_name}. Remove it "
                "and run `smakom login` to keep it in the system keyring."
            ).format(path=path, config_name=CONFIG_NAME)
        )
    config = _build(Config, table, path, prefix="", extra={"path": path.resolve()})
    config = _with_provider(config, table.get("smtp", {}))
    _check_values(config)
    _check_sign_in(config)
    if config.smtp.ca_file:
        ca_file = str(config.folder / config.smtp.ca_file)
        config = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, ca_file=ca_file))
    if config.oauth.ca_file:
        oauth = dataclasses.replace(config.oauth, ca_file=str(config.folder / config.oauth.ca_file))
        config = dataclasses.replace(config, oauth=oauth)
    _check_inbox(config)
    if config.inbox.ca_file:
        ca_file = str(config.folder / config.inbox.ca_file)
        inbox = dataclasses.replace(config.inbox, ca_file=ca_file)
        config = dataclasses.replace(config, inbox=inbox)
    return config


def _with_provider(config: Config, given: dict[str, Any]) -> Config:
    """Fill the [smtp] keys smakom.toml leaves out from the provider's profile."""
    from smakom_cli.signin.providers import PROFILES

    smtp = config.smtp
    profile = PROFILES.get(smtp.provider)
    if profile is None:
        return config
    filled = {key: value for key, value in profile.defaults().items() if key not in given}
    if not smtp.username:
        # With a provider, the mailbox that signs in is the sender's, unless told otherwise.
        filled["username"] = config.sender.email
    return dataclasses.replace(config, smtp=dataclasses.replace(smtp, **filled))


def _check_sign_in(config: Config) -> None:
    """[smtp] auth and the [oauth] app registration it needs."""
    smtp = config.smtp
    path = config.path
    if smtp.auth != "oauth2":
        return
    if smtp.provider == "google":
        raise SmakomError(
            _(
                "{path}: smakom signs in to Google with an app password: set [smtp] "
                'auth = "password" (or remove it) and store the app password with '
                "`smakom login`."
            ).format(path=path)
        )
    if not config.oauth.client_id:
        raise SmakomError(
            _(
                '{path}: [smtp] auth = "oauth2" needs [oauth] client_id, the '
                "Application (client) ID of your organisation's app registration in "
                "Microsoft Entra (see docs/mail-providers.md, Microsoft 365)."
            ).format(path=path)
        )
    if not smtp.username:
        raise SmakomError(
            _(
                "{path}: [smtp] username (or [sender] email) must be the mailbox that signs in."
            ).format(path=path)
        )


def _all_keys(table: dict[str, Any]) -> set[str]:
    """Every key in the table and in the tables inside it, arrays of tables (`[[…]]`) too."""
    keys = set(table)
    for value in table.values():
        inner = value if isinstance(value, list) else [value]
        for item in inner:
            if isinstance(item, dict):
                keys |= _all_keys(item)
    return keys


def _build(
    cls: type[T], table: object, path: Path, prefix: str, extra: dict[str, Any] | None = None
) -> T:
    """Turn a TOML table into the dataclass `cls`, naming any unknown key or wrong type."""
    where = prefix.rstrip(".") or _("the top level")
    if not isinstance(table, dict):
        raise SmakomError(_("{path}: [{where}] must be a table.").format(path=path, where=where))
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = dict(extra or {})
    for key, value in table.items():
        if key not in fields or key in values:
            known = ", ".join(sorted(k for k in fields if k not in values))
            raise SmakomError(
                _("{path}: unknown key '{prefix}{key}' (known keys here: {known}).").format(
                    path=path, prefix=prefix, key=key, known=known
                )
            )
        values[key] = _convert(hints[key], value, path, f"{prefix}{key}")
    return cls(**values)


def _convert(hint: Any, value: object, path: Path, key: str) -> object:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise SmakomError(_("{path}: '{key}' must be a list.").format(path=path, key=key))
        return tuple(_convert(item_type, item, path, f"{key}[{i}]") for i, item in enumerate(value))
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise SmakomError(
                _("{path}: '{key}' must be one of {join}, not {value!r}.").format(
                    path=path, key=key, join=", ".join(choices), value=value
                )
            )
        return value
    if hint in (int, float):
        return _number_setting(hint, value, path, key)
    if hint is str and isinstance(value, str):
        _check_controls(value, path, key)
        _check_format(value, path, key)
        return value
    if isinstance(hint, type) and not isinstance(hint, types.GenericAlias):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        expected = {str: _("text in quotes"), int: _("a whole number"), float: _("a number")}.get(
            hint, hint.__name__
        )
        raise SmakomError(
            _("{path}: '{key}' must be {expected}, not {value!r}.").format(
                path=path, key=key, expected=expected, value=value
            )
        )
    raise TypeError(f"unsupported configuration type {hint!r}")  # pragma: no cover


def _check_values(config: Config) -> None:
    _check_images(config)


def _pattern(key: str) -> str:
    """The key as RANGES and FORMATS name it: "social.links[2].url" -> "social.links.url"."""
    return re.sub(r"\[\d+\]", "", key)


def _number_setting(hint: type, value: object, path: Path, key: str) -> float | int:
    """A number inside its declared range, or one line naming the key and what it allows."""
    whole = hint is int
    allowed = RANGES.get(_pattern(key))
    # A whole number is a number too; a fraction is not a whole number; true is neither.
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (isinstance(value, int) or not whole)
        and _allows(allowed, value)
    ):
        return value if whole else float(value)
    if allowed is not None:
        expected = allowed.describe(whole)
    else:
        expected = _("a whole number") if whole else _("a finite number")
    raise SmakomError(
        _("{path}: '{key}' must be {expected}, not {shown}.").format(
            path=path, key=key, expected=expected, shown=_shown(value)
        )
    )


def _allows(allowed: Range | None, number: float) -> bool:
    """Inside the range (or finite, for a key without one); a whole number too large for a
    float (TOML allows any length) is out of range."""
    try:
        as_float = float(number)
    except OverflowError:
        return False
    return allowed.allows(as_float) if allowed is not None else math.isfinite(as_float)


def _check_controls(value: str, path: Path, key: str) -> None:
    """Refuse a control character (a line break, NUL, …) where the text must be one line."""
    allowed = _LINE_BREAKS if _pattern(key) in MULTILINE_KEYS else ""
    found = next((c for c in value if is_control(c) and c not in allowed), None)
    if found is None:
        return
    if found in "\r\n\x85\u2028\u2029":
        what = _("a line break")
    else:
        what = _("the control character {character!r}").format(character=found)
    raise SmakomError(
        _(
            "{path}: '{key}' must be one line of text, but has {what} in it ({shown}); remove it."
        ).format(path=path, key=key, what=what, shown=_shown(value))
    )


def is_control(char: str) -> bool:
    """A character no header and no single line of text may carry: C0 and C1 controls, DEL,
    and the Unicode line and paragraph separators."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in "\u2028\u2029"


_PATTERNS = {
    "color": (_COLOR, N_("must be a colour like #005a7a or #fff")),
    "dns_label": (
        _DNS_LABELS,
        N_(
            "must be a DKIM selector: letters, digits and dashes, parts joined by dots (the part "
            "before ._domainkey)"
        ),
    ),
}


def _check_format(value: str, path: Path, key: str) -> None:
    """A text setting with a shape (address, link, colour) has it; empty means not set."""
    shape = FORMATS.get(_pattern(key))
    if shape is None or not value:
        return
    problem = ""
    if shape == "email":
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            problem = _("must be an e-mail address, not {shown} ({exc})").format(
                shown=_shown(value), exc=exc
            )
    elif shape == "list_id":
        if not _LIST_ID.fullmatch(value) or len(value) > 255:
            problem = _(
                "must be a name like nyhetsbrev.smakom.se: letters, digits and hyphens "
                "between dots (RFC 2919), not {shown}"
            ).format(shown=_shown(value))
    elif shape in _PATTERNS:
        pattern, wanted = _PATTERNS[shape]
        if not pattern.fullmatch(value) or len(value) > 200:
            problem = _("{wanted}, not {shown}").format(wanted=_(wanted), shown=_shown(value))
    else:
        parts = urllib.parse.urlsplit(value) if value.isprintable() and " " not in value else None
        scheme = parts.scheme if parts and parts.hostname else ""
        if shape == "url" and scheme not in ("http", "https"):
            problem = _("must be a full address starting with https://, not {shown}").format(
                shown=_shown(value)
            )
        elif shape == "unsubscribe_url" and not (
            scheme == "https"
            or (scheme == "http" and parts is not None and parts.hostname in _LOCAL_HOSTS)
        ):
            problem = _(
                "must start with https:// (RFC 8058; plain http only to 127.0.0.1 or "
                "localhost), not {shown}"
            ).format(shown=_shown(value))
    if problem:
        raise SmakomError(
            _("{path}: '{key}' {problem}.").format(path=path, key=key, problem=problem)
        )


def _shown(value: object) -> str:
    """A value as a short repr for one line of a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else str(value)


def _check_images(config: Config) -> None:
    """`[newsletter] images` and the provider's size limit: the keys the message size needs."""
    path = config.path
    mode = config.newsletter.images
    if mode == "link" and not config.newsletter.web_base_url:
        raise SmakomError(
            _(
                "{path}: 'newsletter.images' = \"link\" needs 'newsletter.web_base_url', "
                "where `smakom archive` publishes the images."
            ).format(path=path)
        )


def _check_inbox(config: Config) -> None:
    """The [inbox] table: a known security mode and folders that can be told apart."""
    inbox = config.inbox
    path = config.path
    folders = {"folder": inbox.folder}
    folders |= {
        key: getattr(inbox, key)
        for key in ("bounce_folder", "unsubscribe_folder", "auto_reply_folder", "unreadable_folder")
    }
    for key, name in folders.items():
        if not name.strip() or any(ord(c) < 32 for c in name):
            raise SmakomError(
                _("{path}: 'inbox.{key}' must be a folder name, not {name!r}.").format(
                    path=path, key=key, name=name
                )
            )
    sorted_into = [folders[key] for key in folders if key != "folder"]
    if inbox.folder in sorted_into:
        raise SmakomError(
            _(
                "{path}: [inbox] sorts mail out of '{folder}', so it cannot also be "
                "the folder handled mail is moved to; give the folders different names."
            ).format(path=path, folder=inbox.folder)
        )
