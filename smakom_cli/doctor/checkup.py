"""`smakom doctor` as one call: every check of the setup in turn, each a `Finding`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smakom_cli.config import Config
from smakom_cli.doctor.findings import DoctorReport, Finding
from smakom_cli.doctor.folder import check_issues, check_settings
from smakom_cli.doctor.keyring_backend import check_keyring
from smakom_cli.i18n import _

# Beside smakom.toml: that doctor has checked this folder with the network at least once.
MARKER_NAME = ".smakom-doctor"
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Options:
    """How far the doctor looks: offline it asks no server; `dns` is the server to ask."""

    offline: bool = False
    dns: tuple[str, int] | None = None
    timeout: float = DEFAULT_TIMEOUT


def check_setup(config_path: Path, environ: Mapping[str, str], options: Options) -> DoctorReport:
    """Every check a send, a sync and an inbox run depend on, without sending anything."""
    config, settings = check_settings(config_path)
    findings = [settings]
    if config is not None:
        findings.append(check_issues(config))
    findings.append(check_keyring(environ))
    if config is not None and not options.offline:
        findings += check_servers(config, environ, options)
    report = DoctorReport(tuple(findings), offline=options.offline)
    if config is not None and not options.offline:
        _record_run(config, report)
    return report


def check_servers(config: Config, environ: Mapping[str, str], options: Options) -> list[Finding]:
    """The checks that ask a server: SMTP, DNS, the one-click service, the inbox."""
    from smakom_cli.doctor.inbox import check_inbox
    from smakom_cli.doctor.service import check_service
    from smakom_cli.doctor.smtp import check_smtp
    from smakom_cli.signin.resolver import Login, Resolver

    logins = Resolver(config, environ)

    def smtp_login() -> Login | None:
        # Looked up inside the check, so "not signed in" is its line, not the end of the run.
        return logins.smtp_logins()()

    findings = check_smtp(config.smtp, smtp_login, options.timeout)
    findings += check_sender_domain(config, options)
    findings += check_service(config, logins.link_key, logins.sync_key, options.timeout)
    findings.append(check_inbox(config, logins.inbox_login, options.timeout))
    return findings


def check_sender_domain(config: Config, options: Options) -> list[Finding]:
    """SPF, DKIM, DMARC and MX of the From address's domain."""
    from smakom_cli.doctor.dns import Lookup
    from smakom_cli.doctor.domain import check_domain, expected, look_up

    domain = config.sender.email.rpartition("@")[2].lower().rstrip(".")
    if not domain:
        return [
            Finding(
                "problem",
                _("sender domain"),
                _("[sender] email is not set, so there is no domain to check"),
                _("Set [sender] email in smakom.toml."),
            )
        ]
    wanted = expected(config.smtp.provider, config.sender.dkim_selector, _tenant(config))
    records = look_up(Lookup(options.dns, options.timeout), domain, wanted)
    return check_domain(records, wanted)


def _tenant(config: Config) -> str:
    """The Microsoft 365 tenant's onmicrosoft.com domain, when the settings name it."""
    for candidate in (config.oauth.tenant, config.smtp.username.rpartition("@")[2]):
        if candidate.lower().endswith(".onmicrosoft.com"):
            return candidate.lower()
    return ""


def doctor_ran(config: Config) -> bool:
    """Whether `smakom doctor` has checked this folder with the network (for `check`'s hint)."""
    return (config.folder / MARKER_NAME).is_file()


def _record_run(config: Config, report: DoctorReport) -> None:
    """A small marker; a folder that cannot be written to simply gets the hint again."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    line = f"{stamp} problems={report.problems} warnings={report.warnings}\n"
    try:
        (config.folder / MARKER_NAME).write_text(line, encoding="utf-8")
    except OSError:
        return
