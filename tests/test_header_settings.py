"""No setting can put a line into a header: every single-line setting refuses control
characters when smakom.toml is read, naming the key, and the message builder refuses a
header with a line break as a last guard."""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smakom_cli.audience.unsubscribe_links import link_for
from smakom_cli.cli import app
from smakom_cli.compose.issue import load_issue
from smakom_cli.compose.message import MessageBuilder, Recipient
from smakom_cli.compose.render import RenderedIssue, render_issue
from smakom_cli.config import MULTILINE_KEYS, Config, load_config
from smakom_cli.errors import SmakomError
from tests.conftest import EXAMPLES

ISSUE = "issues/2021-01.md"
# Every setting a message's headers are made of (From, Reply-To, Subject, List-Id,
# List-Unsubscribe, Message-ID).
HEADER_SETTINGS = (
    "newsletter.name",
    "newsletter.list_id",
    "newsletter.test_subject_prefix",
    "sender.name",
    "sender.email",
    "sender.reply_to",
    "unsubscribe.mailto",
    "unsubscribe.url",
)
HEADERS = {
    "To", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "From", "Reply-To",
    "Subject", "List-Id", "MIME-Version", "Content-Type",
}  # fmt: skip
BREAKS = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x7f", "\x85", "\u2028", "\r\nBcc: x@y.z", "\t"]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def text_settings(cls: type = Config, prefix: str = "") -> Iterator[tuple[str, bool]]:
    """Every text key of every table, from the dataclasses: (dotted key, in a list of tables)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint, key = hints[item.name], f"{prefix}{item.name}"
        if dataclasses.is_dataclass(hint):
            yield from text_settings(hint, f"{key}.")
        elif typing.get_origin(hint) is tuple:
            [member, *_] = typing.get_args(hint)
            yield from ((found, True) for found, _ in text_settings(member, f"{key}."))
        elif hint is str:
            yield key, False


SINGLE_LINE = sorted(s for s in text_settings() if s[0] not in MULTILINE_KEYS)


def toml_string(text: str) -> str:
    """`text` as a TOML basic string, every control character escaped."""
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c for c in text
    )
    return f'"{escaped}"'


def config_with(folder: Path, key: str, value: str, listed: bool = False) -> Path:
    """A smakom.toml that sends and unsubscribes, with `key` set to `value`."""
    table, _, name = key.rpartition(".")
    base = {
        "sender": {"email": '"nyhetsbrev@smakom.se"'},
        "unsubscribe": {"url": '"https://www.smakom.se/avregistrera"'},
    }
    if not listed:
        base.setdefault(table, {})[name] = toml_string(value)
    lines = []
    for section, values in base.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in values.items()]
    if listed:
        lines += [f"[[{table}]]", f"{name} = {toml_string(value)}"]
    path = folder / "smakom.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@functools.cache
def example_issue() -> RenderedIssue:
    """The bundled example issue, rendered once for every example of the property."""
    config = load_config(EXAMPLES / "smakom.toml")
    return render_issue(load_issue(EXAMPLES / ISSUE), config)


def test_the_walk_finds_the_header_settings() -> None:
    """Every setting a header is made of is among the single-line ones the property covers."""
    assert set(HEADER_SETTINGS) <= {key for key, _ in SINGLE_LINE}


@PROPERTY
@given(
    setting=st.sampled_from(SINGLE_LINE),
    before=st.text(max_size=12),
    control=st.sampled_from(BREAKS) | st.characters(max_codepoint=0x9F, categories=["Cc"]),
    after=st.text(max_size=12),
)
def test_a_control_character_in_any_single_line_setting_is_refused_naming_the_key(
    tmp_path: Path, setting: tuple[str, bool], before: str, control: str, after: str
) -> None:
    """CR, LF, NUL, any other control or a Unicode line separator, anywhere in a value."""
    key, listed = setting
    path = config_with(tmp_path, key, before + control + after, listed)
    table, _, name = key.rpartition(".")
    named = f"'{table}[0].{name}'" if listed else f"'{key}'"
    with pytest.raises(SmakomError, match=re.escape(named)):
        load_config(path)


@PROPERTY
@given(
    key=st.sampled_from(HEADER_SETTINGS),
    value=st.one_of(
        st.text(max_size=30),
        st.builds(
            "".join,
            st.lists(
                st.sampled_from(
                    [*BREAKS, "a@b.se", "https://x.se/u", " ", "Bcc:", "=?utf-8?q?", "å", "<", ">"]
                ),
                max_size=6,
            ),
        ),
    ),
)
def test_no_setting_that_loads_puts_a_line_into_a_header(
    tmp_path: Path, key: str, value: str
) -> None:
    """Whatever a header setting holds: refused when read, or every message has exactly its
    own headers, none of them with a line break in its value."""
    try:
        config = load_config(config_with(tmp_path, key, value))
    except SmakomError:
        return
    rendered = example_issue()
    builder = MessageBuilder(rendered, config, subject_prefix=config.newsletter.test_subject_prefix)
    link = link_for(config, bytes(32), "anna@example.com")
    data = builder.build(Recipient("anna@example.com", "Anna", {}), link)
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert set(message.keys()) <= HEADERS
    assert len(message.keys()) == len(set(message.keys()))
    assert message["To"].addresses[0].addr_spec == "anna@example.com"
    assert not [name for name in message if re.search(r"[\r\n\x00]", str(message[name]))]


def test_a_line_break_in_list_id_is_refused_by_check_naming_the_key(
    runner: CliRunner, newsletter: Path
) -> None:
    """`list_id = "a.se\\r\\nBcc: x@y.z"` stops `check` and the dry run with one line (it
    used to pass, and every message carried a Bcc line)."""
    path = newsletter / "smakom.toml"
    text = path.read_text(encoding="utf-8")
    old = 'list_id = "nyhetsbrev.smakom.se"'
    assert old in text
    path.write_text(text.replace(old, r'list_id = "a.se\r\nBcc: x@y.z"'), encoding="utf-8")
    for command in (["check", ISSUE], ["send", ISSUE, "--dry-run"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "'newsletter.list_id' must be one line of text" in result.output
    assert not (newsletter / "outbox").exists()


def test_the_message_builder_refuses_a_header_with_a_line_break() -> None:
    """The last guard: a value that reached the builder unchecked stops the message."""
    config = load_config(EXAMPLES / "smakom.toml")
    bad = dataclasses.replace(config.newsletter, list_id="a.se\r\nBcc: x@y.z")
    builder_config = dataclasses.replace(config, newsletter=bad)
    with pytest.raises(SmakomError, match="List-Id header would contain a line break"):
        MessageBuilder(example_issue(), builder_config)
