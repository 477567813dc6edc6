"""Every setting in smakom.toml is checked when it is loaded: numbers against their range,
addresses, links and colours against their shape; one clear line, exit 1, never a traceback."""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smakom_cli.cli import app
from smakom_cli.config import RANGES, Config, load_config

ISSUE = "issues/2021-01.md"


def number_settings(cls: type = Config, prefix: str = "") -> Iterator[tuple[str, type, bool]]:
    """Every number key of every table, found from the dataclasses themselves, so a key added
    later is walked too: (dotted key, int or float, whether it sits in a list of tables)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(hint):
            yield from number_settings(hint, f"{key}.")
        elif typing.get_origin(hint) is tuple:
            [member, *_] = typing.get_args(hint)
            if dataclasses.is_dataclass(member):
                for found, kind, _listed in number_settings(member, f"{key}."):
                    yield found, kind, True
        elif hint in (int, float):
            yield key, hint, False


NUMBERS = sorted(number_settings())
# 0, a negative, huge (fits 64 bits, fits no float, too big for a float), inf and nan.
LITERALS = ("0", "-1", "1000000000", "9" * 400, "1e300", "inf", "-inf", "nan", "true", '"5"')


def toml_for(key: str, listed: bool, literal: str) -> str:
    """A smakom.toml setting only `key` (a list of tables gets one table)."""
    table, _, name = key.rpartition(".")
    header = f"[[{table}]]" if listed else f"[{table}]"
    return f'[sender]\nemail = "nyhetsbrev@smakom.se"\n\n{header}\n{name} = {literal}\n'


def test_numbers_were_found() -> None:
    """The walk sees the SMTP and brand numbers, so it is really walking the dataclasses."""
    assert {"smtp.port", "smtp.timeout", "brand.logo_width"} <= {key for key, _, _ in NUMBERS}


@pytest.mark.parametrize(("key", "kind", "listed"), NUMBERS)
def test_every_number_setting_declares_its_range(key: str, kind: type, listed: bool) -> None:
    """A number setting without a declared range cannot slip in unchecked."""
    assert key in RANGES, f"declare the values '{key}' allows in smakom_cli.config.RANGES"


@pytest.mark.parametrize(("key", "kind", "listed"), NUMBERS)
def test_every_number_setting_refuses_what_is_out_of_range(
    runner: CliRunner, newsletter: Path, key: str, kind: type, listed: bool
) -> None:
    """0, -1, huge, inf, nan, true and text: accepted only inside the range, else one line."""
    allowed = RANGES[key]
    bounds = [allowed.low, allowed.high]
    literals = [*LITERALS, *(repr(kind(b)) for b in bounds), repr(kind(allowed.high) + 1)]
    if not allowed.above:
        literals.append(repr(kind(allowed.low) - 1))
    config = newsletter / "smakom.toml"
    for literal in literals:
        config.write_text(toml_for(key, listed, literal), encoding="utf-8")
        value = tomllib.loads(f"v = {literal}")["v"]
        fits = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (kind is float or isinstance(value, int))
            and abs(value) < 1e300
            and allowed.allows(float(value))
        )
        if fits:
            loaded = load_config(config)
            table, _, name = key.rpartition(".")
            if not listed:
                assert getattr(getattr(loaded, table.split(".")[-1]), name) == value
            continue
        result = runner.invoke(app, ["check", ISSUE])
        assert result.exit_code == 1, (key, literal, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith("Error: ")
        assert f"'{key}' must be" in line.replace("[0]", "")
        assert len(line) < 300, line


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("[smtp]\ntimeout = 0", "'smtp.timeout' must be a number above 0 and at most 600 seconds"),
        ("[smtp]\ntimeout = -5", "not -5."),
        ("[smtp]\ntimeout = inf", "'smtp.timeout' must be a number above 0 and at most 600"),
        ("[smtp]\ntimeout = nan", "not nan"),
        ("[smtp]\nport = 70000", "'smtp.port' must be a whole number from 1 to 65535, not 70000"),
        ("[smtp]\nretry_delay = -1", "'smtp.retry_delay' must be a number from 0 to 3600"),
        ("[smtp]\nconnections = 100000", "'smtp.connections' must be a whole number from 1 to 10"),
        ("[smtp]\nrate_per_minute = -1", "from 0 to 10000 (0 means no limit)"),
        ("[brand]\nlogo_width = 0", "'brand.logo_width' must be a whole number from 1 to 600 pix"),
        ("[brand]\nprimary_color = 'blue'", "'brand.primary_color' must be a colour like #005a7a"),
        ("[brand]\nlink_color = '#12345'", "'brand.link_color' must be a colour"),
        ("[sender]\nreply_to = 'charlotta.smakom.se'", "'sender.reply_to' must be an e-mail addr"),
        ("[unsubscribe]\nmailto = 'avregistrera@'", "'unsubscribe.mailto' must be an e-mail"),
        ("[contact]\nwebsite = 'www.smakom.se'", "'contact.website' must be a full address"),
        ("[newsletter]\nweb_base_url = 'ftp://x.se'", "'newsletter.web_base_url' must be a full"),
        ("[[social.links]]\nurl = 'facebook'", "'social.links[0].url' must be a full address"),
        ("[unsubscribe]\nurl = 'http://www.smakom.se/a'", "'unsubscribe.url' must start with"),
        ("[unsubscribe]\nurl = 'https://'", "'unsubscribe.url' must start with https"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    runner: CliRunner, newsletter: Path, setting: str, message: str
) -> None:
    """Each out-of-range number or misshapen text names its key and what it allows."""
    (newsletter / "smakom.toml").write_text(f"{setting}\n", encoding="utf-8")
    result = runner.invoke(app, ["check", ISSUE])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert message in line


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8025/unsubscribe", "http://localhost/u", "https://www.smakom.se/a"]
)
def test_a_local_one_click_service_may_use_plain_http(tmp_path: Path, url: str) -> None:
    """Only a one-click service on this computer may be reached over plain http."""
    path = tmp_path / "smakom.toml"
    path.write_text(f'[unsubscribe]\nurl = "{url}"\n', encoding="utf-8")
    assert load_config(path).unsubscribe.url == url


def test_whole_numbers_are_accepted_for_seconds(tmp_path: Path) -> None:
    """`timeout = 30` (no decimal point) is a number of seconds like 30.0."""
    path = tmp_path / "smakom.toml"
    path.write_text("[smtp]\ntimeout = 30\nretry_delay = 0\n", encoding="utf-8")
    smtp = load_config(path).smtp
    assert smtp.timeout == 30.0
    assert isinstance(smtp.timeout, float)
    assert smtp.retry_delay == 0.0
    assert not math.isnan(smtp.timeout)


def test_the_settings_page_lists_every_range() -> None:
    """The settings page's table of allowed values names every number setting."""
    page = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
    settings = page.read_text(encoding="utf-8")
    for key in RANGES:
        assert f"`{key}`" in settings, f"add '{key}' to docs/settings.md's table of allowed values"
