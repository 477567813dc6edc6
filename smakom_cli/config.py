"""The newsletter folder's `smakom.toml`: finding it, reading it and checking every key.

The file holds everything that is the same in every issue: sender, list identity, SMTP
settings, brand, contact block, social links and footer. It never holds a password.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from smakom_cli.errors import SmakomError

T = TypeVar("T")

CONFIG_NAME = "smakom.toml"
SECURITY_MODES = ("starttls", "tls", "none")


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


@dataclass(frozen=True)
class SenderConfig:
    name: str = ""
    email: str = ""
    reply_to: str = ""


@dataclass(frozen=True)
class UnsubscribeConfig:
    """Where a reader unsubscribes: an address, a web page with a signed token, or both."""

    mailto: str = ""
    url: str = ""


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    ca_file: str = ""
    timeout: float = 30.0
    connections: int = 1
    rate_per_minute: int = 0
    rate_per_hour: int = 0
    retry_attempts: int = 5
    retry_delay: float = 30.0


@dataclass(frozen=True)
class InboxConfig:
    """The mailbox `smakom inbox` reads over IMAP, and the folders it sorts mail into."""

    host: str = ""
    port: int = 0  # 0: the usual port of the security mode, 993 (tls) or 143 (starttls)
    security: str = "tls"
    username: str = ""
    ca_file: str = ""
    timeout: float = 30.0
    folder: str = "INBOX"
    bounce_folder: str = "smakom/studsar"
    unsubscribe_folder: str = "smakom/avregistreringar"
    auto_reply_folder: str = "smakom/autosvar"
    soft_bounce_limit: int = 3

    @property
    def server_port(self) -> int:
        return self.port or (143 if self.security == "starttls" else 993)


INBOX_SECURITY_MODES = ("tls", "starttls")


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
        f"No {CONFIG_NAME} found in {start} or any folder above it. "
        "Run the command inside a newsletter folder, give --config PATH, "
        "or create one with `smakom init DIR`."
    )


def load_config(path: Path) -> Config:
    """Read and check `smakom.toml`; every unknown key or wrong type is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SmakomError(f"{path}: no such configuration file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SmakomError(f"{path}: cannot be read ({exc}).") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SmakomError(f"{path}: not valid TOML: {exc}.") from None
    if "password" in _all_keys(table):
        raise SmakomError(
            f"{path}: a password must never be stored in {CONFIG_NAME}. "
            "Remove it and run `smakom login` to keep it in the system keyring."
        )
    config = _build(Config, table, path, prefix="", extra={"path": path.resolve()})
    _check_values(config)
    if config.smtp.ca_file:
        ca_file = str(config.folder / config.smtp.ca_file)
        config = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, ca_file=ca_file))
    _check_inbox(config)
    if config.inbox.ca_file:
        ca_file = str(config.folder / config.inbox.ca_file)
        inbox = dataclasses.replace(config.inbox, ca_file=ca_file)
        config = dataclasses.replace(config, inbox=inbox)
    return config


def _all_keys(table: dict[str, Any]) -> set[str]:
    keys = set(table)
    for value in table.values():
        if isinstance(value, dict):
            keys |= _all_keys(value)
    return keys


def _build(
    cls: type[T], table: object, path: Path, prefix: str, extra: dict[str, Any] | None = None
) -> T:
    """Turn a TOML table into the dataclass `cls`, naming any unknown key or wrong type."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(table, dict):
        raise SmakomError(f"{path}: [{where}] must be a table.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = dict(extra or {})
    for key, value in table.items():
        if key not in fields or key in values:
            known = ", ".join(sorted(k for k in fields if k not in values))
            raise SmakomError(f"{path}: unknown key '{prefix}{key}' (known keys here: {known}).")
        values[key] = _convert(hints[key], value, path, f"{prefix}{key}")
    return cls(**values)


def _convert(hint: Any, value: object, path: Path, key: str) -> object:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise SmakomError(f"{path}: '{key}' must be a list.")
        return tuple(_convert(item_type, item, path, f"{key}[{i}]") for i, item in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(hint, types.GenericAlias):
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        expected = {str: "text in quotes", int: "a whole number", float: "a number"}.get(
            hint, hint.__name__
        )
        raise SmakomError(f"{path}: '{key}' must be {expected}, not {value!r}.")
    raise TypeError(f"unsupported configuration type {hint!r}")  # pragma: no cover


def _check_values(config: Config) -> None:
    smtp = config.smtp
    path = config.path
    if smtp.security not in SECURITY_MODES:
        raise SmakomError(
            f"{path}: 'smtp.security' must be one of {', '.join(SECURITY_MODES)}, "
            f"not {smtp.security!r}."
        )
    for key in ("port", "connections", "retry_attempts"):
        if getattr(smtp, key) < (0 if key == "retry_attempts" else 1):
            raise SmakomError(f"{path}: 'smtp.{key}' is too small ({getattr(smtp, key)}).")
    for key in ("rate_per_minute", "rate_per_hour"):
        if getattr(smtp, key) < 0:
            raise SmakomError(f"{path}: 'smtp.{key}' cannot be negative (0 means no limit).")
    url = config.unsubscribe.url
    if url and not url.startswith("https://"):
        raise SmakomError(f"{path}: 'unsubscribe.url' must start with https:// (RFC 8058).")


def _check_inbox(config: Config) -> None:
    """The [inbox] table: a known security mode, a real port, sensible limits and folders."""
    inbox = config.inbox
    path = config.path
    if inbox.security not in INBOX_SECURITY_MODES:
        raise SmakomError(
            f"{path}: 'inbox.security' must be one of {', '.join(INBOX_SECURITY_MODES)} "
            f"(IMAP is never read unencrypted), not {inbox.security!r}."
        )
    if not 0 <= inbox.port <= 65535:
        raise SmakomError(
            f"{path}: 'inbox.port' must be between 1 and 65535 (or 0 for the usual one), "
            f"not {inbox.port}."
        )
    if not 1 <= inbox.soft_bounce_limit <= 100:
        raise SmakomError(
            f"{path}: 'inbox.soft_bounce_limit' must be between 1 and 100 issues, "
            f"not {inbox.soft_bounce_limit}."
        )
    if not 0 < inbox.timeout <= 3600:
        raise SmakomError(
            f"{path}: 'inbox.timeout' must be more than 0 and at most 3600 seconds, "
            f"not {inbox.timeout}."
        )
    folders = {"folder": inbox.folder}
    folders |= {
        key: getattr(inbox, key)
        for key in ("bounce_folder", "unsubscribe_folder", "auto_reply_folder")
    }
    for key, name in folders.items():
        if not name.strip() or any(ord(c) < 32 for c in name):
            raise SmakomError(f"{path}: 'inbox.{key}' must be a folder name, not {name!r}.")
    sorted_into = [folders[key] for key in folders if key != "folder"]
    if inbox.folder in sorted_into:
        raise SmakomError(
            f"{path}: [inbox] sorts mail out of '{inbox.folder}', so it cannot also be the "
            "folder handled mail is moved to; give the folders different names."
        )
