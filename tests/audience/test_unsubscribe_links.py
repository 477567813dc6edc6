"""Unsubscribe tokens: opaque for new links, old readable ones still honoured, forgeries refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.audience.unsubscribe_links import (
    address_from_token,
    make_token,
    read_token,
    subscriber_id,
)
from smakom_cli.errors import SmakomError

SECRET = b"k" * 32
addresses = st.emails().map(str.lower)


def legacy_token(address: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signature = hmac.new(SECRET, address.encode(), hashlib.sha256).digest()[:16]
    return f"{b64(address.encode())}.{b64(signature)}"


def test_a_link_from_an_issue_sent_before_keeps_working() -> None:
    """A token in an issue already sent names the same subscriber id after an upgrade, so
    its unsubscribe link and the one-click service's events still find the reader."""
    sent = "AhuG7s-jBjHNfw-odgtJed8HJ3fDV0pZBA"
    assert make_token(SECRET, " Anna.Aberg@Example.com ") == sent
    assert subscriber_id(SECRET, "anna.aberg@example.com") == "G4buz6MGMc1_D6h2"
    assert read_token(SECRET, sent).subscriber_id == "G4buz6MGMc1_D6h2"
    assert address_from_token(SECRET, sent, ["anna.aberg@example.com"]) == "anna.aberg@example.com"


@given(addresses)
def test_a_new_token_names_its_reader_without_showing_the_address(address: str) -> None:
    """The token maps back to its address among the known ones, and holds no part of it."""
    token = make_token(SECRET, address)
    assert len(token) == 34
    assert address.encode() not in base64.urlsafe_b64decode(token + "==")
    assert read_token(SECRET, token).address == ""
    assert address_from_token(SECRET, token, ["x@example.com", address.upper()]) == address


@given(addresses)
def test_old_links_keep_working(address: str) -> None:
    """A token from an issue sent before opaque links gives its address and the same id."""
    subject = read_token(SECRET, legacy_token(address))
    assert subject.address == address
    assert subject.subscriber_id == subscriber_id(SECRET, address)


@given(st.text(max_size=200))
def test_any_text_is_a_token_or_refused_in_one_sentence(text: str) -> None:
    """Whatever is pasted into `smakom unsubscribe`, it verifies or is a SmakomError."""
    try:
        read_token(SECRET, text)
    except SmakomError as exc:
        assert "\n" not in str(exc)


@given(addresses, st.integers(min_value=0, max_value=33), st.integers(min_value=1, max_value=63))
def test_a_changed_or_cut_token_is_refused(address: str, position: int, change: int) -> None:
    """Changing any one character, or cutting the token short, breaks it."""
    token = make_token(SECRET, address)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    changed = alphabet[(alphabet.index(token[position]) + change) % 64]
    for damaged in (token[:position] + changed + token[position + 1 :], token[:position]):
        with pytest.raises(SmakomError, match="not a valid unsubscribe token"):
            read_token(SECRET, damaged)


def test_a_genuine_link_for_nobody_known_says_so() -> None:
    """A real token whose reader is on no list is an error telling to unsubscribe by address."""
    link = f"https://www.smakom.se/avregistrera?token={make_token(SECRET, 'ny@example.se')}"
    with pytest.raises(SmakomError, match="unsubscribe them by address"):
        address_from_token(SECRET, link, ["anna@example.se"])
