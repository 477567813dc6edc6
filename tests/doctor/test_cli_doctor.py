"""`smakom doctor` through the real CLI, against the local DNS server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from tests.conftest import MemoryKeyring
from tests.dns_server import DnsTestServer
from tests.doctor.conftest import use_inbox, use_provider
from tests.doctor.zones import BROKEN_MICROSOFT, GOOGLE, MISALIGNED, TENANT, changed
from tests.imap_server import DovecotServer
from tests.oauth_server import OAuthTestServer
from tests.smtp_server import SmtpTestServer, use_server

Zone = dict[tuple[str, str], list[str]]


def doctor(runner: CliRunner, dns: DnsTestServer, *options: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["doctor", "--dns", dns.address, "--timeout", "1", *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output.splitlines()


def lines(output: list[str], status: str) -> list[str]:
    return [line for line in output if line.startswith(status + " ")]


@pytest.fixture
def microsoft(setup: Path) -> Path:
    return setup


def test_everything_ok(
    runner: CliRunner,
    microsoft: Path,
    dns: DnsTestServer,
    dovecot: DovecotServer,
    secure_keyring: MemoryKeyring,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example folder at the test servers, a good Microsoft 365 zone and a secure keyring:
    every line ok, exit 0, and nothing was sent."""
    use_inbox(microsoft, dovecot, monkeypatch)
    code, output = doctor(runner, dns)
    assert code == 0, output
    assert not lines(output, "problem") and not lines(output, "warning"), output
    checked = " ".join(lines(output, "ok"))
    for what in (
        "smakom.toml",
        "issues/2021-01.md",
        "keyring",
        "SMTP (127.0.0.1",
        "SMTP sign-in (kansli@smakom.se)",
        "SPF (smakom.se)",
        "DKIM (smakom.se)",
        "DMARC (_dmarc.smakom.se)",
        "DMARC alignment",
        "MX (smakom.se)",
        "one-click service",
        "sync key",
        "link-signing key",
        "inbox (",
    ):
        assert what in checked, (what, output)
    assert smtp_server.messages == []


@pytest.mark.parametrize("case", sorted(BROKEN_MICROSOFT))
def test_each_broken_zone_one_problem(
    runner: CliRunner, microsoft: Path, dns: DnsTestServer, case: str
) -> None:
    """Each broken zone of the issue: one problem line, naming the record and its value."""
    zone, what, fix = BROKEN_MICROSOFT[case]
    dns.zone = zone
    code, output = doctor(runner, dns)
    problems = lines(output, "problem")
    assert code == 1
    assert len(problems) == 1, output
    assert f"{what} (" in problems[0] and fix in problems[0], problems


def test_misaligned_from(runner: CliRunner, microsoft: Path, dns: DnsTestServer) -> None:
    """SPF for another host only and no DKIM of its own: the From domain aligns with nothing."""
    dns.zone = MISALIGNED
    code, output = doctor(runner, dns)
    assert code == 1
    alignment = [line for line in lines(output, "problem") if "DMARC alignment" in line]
    assert alignment and "aligns with neither DKIM" in alignment[0], output


def test_spf_alone_is_a_warning(runner: CliRunner, microsoft: Path, dns: DnsTestServer) -> None:
    """No DKIM CNAMEs: DMARC rests on SPF alone, which forwarding breaks, and doctor says so."""
    dns.zone = BROKEN_MICROSOFT["DKIM for onmicrosoft only"][0]
    _code, output = doctor(runner, dns)
    assert any("rests on SPF alone" in line for line in lines(output, "warning")), output


def test_google(
    runner: CliRunner, setup: Path, dns: DnsTestServer, smtp_server: SmtpTestServer
) -> None:
    """Google's include and its google._domainkey selector, through two levels of includes."""
    use_provider(setup, smtp_server, "google")
    dns.zone = GOOGLE
    code, output = doctor(runner, dns)
    assert code == 0, output
    dns.zone = changed(GOOGLE, {("google._domainkey.smakom.se", "TXT"): None})
    code, output = doctor(runner, dns)
    assert code == 1
    assert "google._domainkey.smakom.se" in lines(output, "problem")[0]


def test_custom_selector_from_settings(
    runner: CliRunner, setup: Path, dns: DnsTestServer, smtp_server: SmtpTestServer
) -> None:
    """A custom provider: the DKIM selector is [sender] dkim_selector; without it, a warning."""
    use_provider(setup, smtp_server, "custom")
    dns.zone = changed(
        GOOGLE,
        {
            ("s2026._domainkey.smakom.se", "TXT"): [
                GOOGLE[("google._domainkey.smakom.se", "TXT")][0]
            ]
        },
    )
    _code, output = doctor(runner, dns)
    assert any("dkim_selector" in line for line in lines(output, "warning")), output
    path = setup / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("[sender]\n", '[sender]\ndkim_selector = "s2026"\n'), encoding="utf-8"
    )
    _code, output = doctor(runner, dns)
    assert any(line.startswith("ok") and "DKIM" in line for line in output), output


@pytest.mark.parametrize("behaviour", ["timeout", "servfail", "refused"])
def test_dns_failures_are_lines(
    runner: CliRunner, microsoft: Path, dns: DnsTestServer, behaviour: str
) -> None:
    """A DNS server that says nothing, SERVFAIL or REFUSED: problem lines, never a traceback."""
    dns.broken = {"smakom.se": behaviour, "_dmarc.smakom.se": behaviour}
    code, output = doctor(runner, dns, "--timeout", "0.3")
    assert code == 1
    said = {"timeout": "did not answer in time", "servfail": "SERVFAIL", "refused": "REFUSED"}
    assert any(said[behaviour] in line for line in lines(output, "problem")), output


def test_nxdomain(runner: CliRunner, microsoft: Path, dns: DnsTestServer) -> None:
    """A domain that does not exist at all: SPF, DMARC and MX each say what to add."""
    dns.zone = {}
    code, output = doctor(runner, dns)
    assert code == 1
    assert {line.split(" (")[0].split()[-1] for line in lines(output, "problem")} >= {
        "SPF",
        "DKIM",
        "DMARC",
        "MX",
    }


def test_huge_txt(runner: CliRunner, microsoft: Path, dns: DnsTestServer) -> None:
    """A 60 KB TXT record (fetched over TCP after a truncated UDP answer) is read, not shown."""
    huge = "v=spf1 " + " ".join(f"ip4:10.0.{i // 256}.{i % 256}" for i in range(3000)) + " -all"
    dns.zone = changed(dns.zone, {("smakom.se", "TXT"): [huge[:60_000]]})
    code, output = doctor(runner, dns)
    assert code == 1, output
    spf = next(line for line in output if "SPF (" in line)
    assert len(spf) < 1000 and "spf.protection.outlook.com" in spf


def test_bad_dns_option(runner: CliRunner, microsoft: Path) -> None:
    """--dns with a name instead of an address is one red line."""
    result = runner.invoke(app, ["doctor", "--dns", "dns.example.org"])
    assert result.exit_code == 1
    assert "give the DNS server as an IP address" in result.output


def test_offline_asks_nobody(runner: CliRunner, microsoft: Path, dns: DnsTestServer) -> None:
    """--offline checks the settings, issues and keyring, and asks no DNS server."""
    code, output = doctor(runner, dns, "--offline")
    assert code == 0, output
    assert dns.asked == []
    assert any("smakom.toml" in line for line in lines(output, "ok"))


def test_check_points_to_doctor_until_it_ran(
    runner: CliRunner, microsoft: Path, dns: DnsTestServer
) -> None:
    """`check` names `doctor` in a folder it never checked; after a run with the network, not."""
    result = runner.invoke(app, ["check", "issues/2021-01.md", "--offline"])
    assert "`smakom doctor` has not checked this folder yet" in result.output
    doctor(runner, dns, "--offline")
    result = runner.invoke(app, ["check", "issues/2021-01.md", "--offline"])
    assert "smakom doctor" in result.output, "an offline doctor run checked no sign-in or DNS"
    doctor(runner, dns)
    result = runner.invoke(app, ["check", "issues/2021-01.md", "--offline"])
    assert "smakom doctor" not in result.output, result.output


def test_oauth2_sign_in(
    runner: CliRunner,
    setup: Path,
    dns: DnsTestServer,
    smtp_server: SmtpTestServer,
    oauth_server: OAuthTestServer,
) -> None:
    """Microsoft 365 with OAuth2: before `smakom login` the sign-in line says to run it; after,
    doctor signs in with a token from the OAuth2 server (XOAUTH2) and sends nothing."""
    path = setup / "smakom.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(f'\n[oauth]\ntenant = "{TENANT}"\n', ""),
        encoding="utf-8",
    )
    extra = 'provider = "microsoft365"\nauth = "oauth2"\n' + oauth_server.toml()
    use_server(setup, smtp_server, extra=extra + f'tenant = "{TENANT}"\n')
    smtp_server.handler.token_is_valid = lambda user, token: oauth_server.valid(
        user, token, "https://outlook.office.com/SMTP.Send"
    )
    code, output = doctor(runner, dns)
    sign_in = next(line for line in output if "SMTP sign-in" in line)
    assert code == 1 and sign_in.startswith("problem") and "smakom login" in sign_in, output

    oauth_server.approve_at_once = True
    assert runner.invoke(app, ["login"]).exit_code == 0
    _code, output = doctor(runner, dns)
    sign_in = next(line for line in output if "SMTP sign-in" in line)
    assert sign_in.startswith("ok") and "XOAUTH2" in sign_in, output
    assert smtp_server.messages == []
