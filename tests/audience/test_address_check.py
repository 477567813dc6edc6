"""Checking an address: the quick check of usual addresses agrees with email-validator."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smakom_cli.audience.subscribers import Address, parse_address
from smakom_cli.errors import SmakomError

# Letters that matter to the rules: dots, hyphens, atext specials, digits, case, non-ASCII.
_PARTS = st.sampled_from(
    ["a", "Z", "0", "9", ".", "-", "_", "+", "!", "{", "~", "xn--", "--", "å", " ", '"', "@"]
)
_TLDS = ["se", "com", "ORG", "1", "test", "local", "arpa", "invalid", "x-y", "a1", "onion"]


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = "".join(draw(st.lists(_PARTS, min_size=0, max_size=8)))
    labels = draw(st.lists(st.text("aZ09-å", min_size=0, max_size=6), min_size=0, max_size=3))
    tld = draw(st.sampled_from(_TLDS))
    return f"{local}@{'.'.join([*labels, tld])}"


def _validator(text: str) -> Address | None:
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return Address(checked.ascii_email or checked.normalized, checked.normalized.lower())


def _ours(text: str) -> Address | None:
    try:
        return parse_address(text)
    except SmakomError:
        return None


@settings(max_examples=400)
@given(addresses())
@example("Anna.Aberg@Example.COM")
@example("a" * 65 + "@kommun.se")
@example("anna@ab--cd.se")
@example("anna@xn--sle-loa.se")
@example("anna@localhost.localhost")
@example(".anna@kommun.se")
@example("anna.@kommun.se")
@example("an..na@kommun.se")
@example("anna@kommun.s1")
@example("anna@-kommun.se")
def test_an_address_is_accepted_or_refused_as_email_validator_does(text: str) -> None:
    """Every address is accepted, and sent to and keyed, exactly as email-validator says."""
    assert _ours(text) == _validator(text.strip())


def test_a_usual_address_keeps_its_local_part_and_lowers_the_domain() -> None:
    """`Anna.Aberg@Ragunda.SE` is sent as written but for the domain, and keyed in lower case."""
    assert parse_address(" Anna.Aberg@Ragunda.SE ") == Address(
        "Anna.Aberg@ragunda.se", "anna.aberg@ragunda.se"
    )
