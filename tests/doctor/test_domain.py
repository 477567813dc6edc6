"""The verdicts on the sender's domain, from DNS answers given as data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.doctor.dns import Answer, parse_server
from smakom_cli.doctor.domain import (
    DomainRecords,
    alignment_verdict,
    check_domain,
    dkim_verdict,
    dmarc_verdict,
    expected,
    mx_verdict,
    organisational_domain,
    spf_verdict,
)
from smakom_cli.errors import SmakomError

MICROSOFT = expected("microsoft365", "", "smakom.onmicrosoft.com")
GOOGLE = expected("google", "", "")


def txt(name: str, *records: str, failure: str = "") -> Answer:
    return Answer(name, "TXT", records, failure)


def spf(*records: str, **more: tuple[str, ...]) -> dict[str, Answer]:
    tree = {"smakom.se": txt("smakom.se", *records)}
    tree["spf.protection.outlook.com"] = txt(
        "spf.protection.outlook.com", "v=spf1 ip4:1.2.3.4 -all"
    )
    return tree


def test_spf_ok_and_its_endings() -> None:
    """-all and ~all pass; ?all, +all and no ending are problems that give the fixed record."""
    for ending in ("-all", "~all"):
        verdict = spf_verdict(
            "smakom.se", spf(f"v=spf1 include:spf.protection.outlook.com {ending}"), MICROSOFT
        )
        assert verdict.status == "ok"
    for ending in ("?all", "+all", "all", ""):
        verdict = spf_verdict(
            "smakom.se",
            spf(f"v=spf1 include:spf.protection.outlook.com {ending}".strip()),
            MICROSOFT,
        )
        assert verdict.status == "problem"
        assert "v=spf1 include:spf.protection.outlook.com ~all" in verdict.todo


def test_spf_include_found_through_another_include() -> None:
    """The provider's include inside the organisation's own include counts."""
    tree = spf("v=spf1 include:_spf.smakom.se -all")
    tree["_spf.smakom.se"] = txt("_spf.smakom.se", "v=spf1 include:spf.protection.outlook.com -all")
    assert spf_verdict("smakom.se", tree, MICROSOFT).status == "ok"


def test_spf_redirect_ending() -> None:
    """A record ending in redirect= ends as the record it redirects to."""
    tree = spf("v=spf1 redirect=_spf.smakom.se")
    tree["_spf.smakom.se"] = txt("_spf.smakom.se", "v=spf1 include:spf.protection.outlook.com -all")
    assert spf_verdict("smakom.se", tree, MICROSOFT).status == "ok"


def test_spf_too_many_lookups() -> None:
    """More than ten DNS lookups is a permerror receivers act on."""
    record = (
        "v=spf1 include:spf.protection.outlook.com "
        + " ".join(f"a:h{i}.se" for i in range(10))
        + " -all"
    )
    verdict = spf_verdict("smakom.se", spf(record), MICROSOFT)
    assert verdict.status == "problem" and "10 DNS lookups" in verdict.found


def test_spf_prefix_is_not_a_record() -> None:
    """ "v=spf10" is not an SPF record (RFC 7208 §4.5), so the domain has none."""
    verdict = spf_verdict("smakom.se", spf("v=spf10 -all"), MICROSOFT)
    assert verdict.status == "problem" and "no SPF record" in verdict.found


def test_dkim_google_revoked_key() -> None:
    """An empty p= is a revoked key, not a key."""
    answers = (("google", Answer("x", "CNAME"), txt("x", "v=DKIM1; p=")),)
    verdict = dkim_verdict("smakom.se", answers, GOOGLE)
    assert verdict.status == "problem" and "revoked" in verdict.found


def test_dkim_microsoft_txt_instead_of_cname() -> None:
    """Microsoft 365 signs only with its own keys: a TXT key at selector1 is the wrong record."""
    key = txt("selector1._domainkey.smakom.se", "v=DKIM1; p=abc")
    answers = (
        ("selector1", Answer("s1", "CNAME"), key),
        ("selector2", Answer("s2", "CNAME"), key),
    )
    verdict = dkim_verdict("smakom.se", answers, MICROSOFT)
    assert verdict.status == "problem" and "not the CNAME" in verdict.found


def test_dmarc_fallback_to_organisational_domain() -> None:
    """A subdomain sender is covered by the organisation's record (RFC 7489 §6.6.3)."""
    answers = (txt("_dmarc.nyhetsbrev.smakom.se"), txt("_dmarc.smakom.se", "v=DMARC1; p=reject"))
    assert dmarc_verdict("nyhetsbrev.smakom.se", answers).status == "ok"
    assert organisational_domain("nyhetsbrev.smakom.se") == "smakom.se"


def test_dmarc_pct_is_a_warning_and_two_records_a_problem() -> None:
    """pct below 100 is worth a look; two DMARC records make receivers ignore both."""
    assert (
        dmarc_verdict("a.se", (txt("_dmarc.a.se", "v=DMARC1; p=reject; pct=20"),)).status
        == "warning"
    )
    two = txt("_dmarc.a.se", "v=DMARC1; p=reject", "v=DMARC1; p=none")
    assert dmarc_verdict("a.se", (two,)).status == "problem"


def test_alignment() -> None:
    """Both align: ok; one: a warning naming what it rests on; neither: a problem."""
    assert alignment_verdict("a.se", True, True, MICROSOFT).status == "ok"
    assert "SPF alone" in alignment_verdict("a.se", True, False, MICROSOFT).found
    assert "DKIM alone" in alignment_verdict("a.se", False, True, MICROSOFT).found
    assert alignment_verdict("a.se", False, False, MICROSOFT).status == "problem"


def test_null_mx() -> None:
    """A null MX ("0 .") says the domain takes no mail: replies and bounces are lost."""
    verdict = mx_verdict("a.se", Answer("a.se", "MX", ("0 .",)))
    assert verdict.status == "problem" and "null MX" in verdict.found


def test_parse_server() -> None:
    """--dns takes an IP address, with a port or an IPv6 address in brackets."""
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("9.9.9.9") == ("9.9.9.9", 53)
    assert parse_server("[::1]:53") == ("::1", 53)
    assert parse_server("::1") == ("::1", 53)
    for bad in ("dns.example.org", "1.2.3.4:0", "1.2.3.4:x"):
        try:
            parse_server(bad)
        except SmakomError:
            continue
        raise AssertionError(bad)


records = st.lists(st.text(max_size=300), max_size=4).map(tuple)


@given(
    st.sampled_from(["microsoft365", "google", "custom"]),
    records,
    records,
    records,
    st.lists(st.text(max_size=40), max_size=3).map(tuple),
    st.sampled_from(["", "the DNS server answered SERVFAIL"]),
)
def test_any_answers_give_findings(
    provider: str,
    spf_txt: tuple[str, ...],
    dkim_txt: tuple[str, ...],
    dmarc_txt: tuple[str, ...],
    mx: tuple[str, ...],
    failure: str,
) -> None:
    """Whatever DNS says, every verdict is a finding: never an exception."""
    wanted = expected(provider, "s1", "t.onmicrosoft.com")
    answers = tuple(
        (s, Answer("c", "CNAME", dkim_txt[:1]), txt("k", *dkim_txt, failure=failure))
        for s in wanted.selectors
    )
    tree = {"a.se": txt("a.se", *spf_txt), "spf.protection.outlook.com": txt("x", *spf_txt)}
    domain = DomainRecords(
        "a.se", tree, answers, (txt("_dmarc.a.se", *dmarc_txt),), Answer("a.se", "MX", mx)
    )
    findings = check_domain(domain, wanted)
    assert len(findings) == 5
    assert all(f.status in ("ok", "warning", "problem") for f in findings)


@given(st.text(max_size=60))
def test_any_dns_option_is_an_address_or_one_sentence(text: str) -> None:
    """Whatever --dns is given, it is a (host, port) or a SmakomError, never another exception."""
    try:
        host, port = parse_server(text)
    except SmakomError as exc:
        assert "--dns" in str(exc)
    else:
        assert host and 1 <= port <= 65535
