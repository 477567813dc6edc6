"""The sender's domain as Gmail, Yahoo and Outlook.com judge it: SPF, DKIM, DMARC and MX.

`look_up` asks DNS for every record the verdicts need (bounded: SPF's own limit of ten
lookups); the verdicts are pure functions of those answers, so each is tested with data.
Each problem names the record to add or change, with its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from smakom_cli.doctor.dns import Answer, Lookup
from smakom_cli.doctor.findings import Finding, shown
from smakom_cli.i18n import _

# RFC 7208 §4.6.4: a receiver gives up (permerror) after ten DNS lookups for one SPF check.
SPF_LOOKUP_LIMIT = 10
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
# RFC 7489 §6.3: the policies a DMARC record may ask for.
DMARC_POLICIES = ("none", "quarantine", "reject")
_ENDINGS = ("-all", "~all")


@dataclass(frozen=True)
class Expected:
    """What the mail provider needs in the sender's DNS."""

    provider: str
    title: str
    spf_include: str  # "" when smakom does not know it (a custom provider)
    selectors: tuple[str, ...]  # "" when none is known
    cnames: bool  # Microsoft 365: the selectors are CNAMEs to keys Microsoft keeps
    tenant: str  # Microsoft 365: where its CNAMEs point, "<tenant>.onmicrosoft.com"


# learn.microsoft.com/defender-office-365/email-authentication-spf-configure and
# …-dkim-configure; support.google.com/a/answer/10684623 and 174124.
PROVIDER_DNS = {
    "microsoft365": ("Microsoft 365", "spf.protection.outlook.com", ("selector1", "selector2")),
    "google": ("Google", "_spf.google.com", ("google",)),
}


def expected(provider: str, dkim_selector: str, tenant: str) -> Expected:
    """The provider's records; a custom provider's DKIM selector comes from the settings."""
    title, include, selectors = PROVIDER_DNS.get(provider, ("", "", ()))
    if provider not in PROVIDER_DNS:
        selectors = (dkim_selector,) if dkim_selector else ()
    return Expected(
        provider, title, include, selectors, provider == "microsoft365", tenant or "<tenant>"
    )


@dataclass(frozen=True)
class DomainRecords:
    """Every DNS answer the verdicts read for one sender domain."""

    domain: str
    spf: Mapping[str, Answer]  # TXT at the domain, then at each include/redirect followed
    dkim: tuple[tuple[str, Answer, Answer], ...]  # (selector, CNAME, TXT) each
    dmarc: tuple[Answer, ...]  # _dmarc at the domain, then at its organisational domain
    mx: Answer


def look_up(lookup: Lookup, domain: str, wanted: Expected) -> DomainRecords:
    """Ask DNS for what the verdicts need: about ten questions, never more than twenty."""
    dkim = tuple(
        (
            selector,
            lookup.ask(f"{selector}._domainkey.{domain}", "CNAME"),
            lookup.ask(f"{selector}._domainkey.{domain}", "TXT"),
        )
        for selector in wanted.selectors
    )
    dmarc = [lookup.ask(f"_dmarc.{domain}", "TXT")]
    organisation = organisational_domain(domain)
    if organisation != domain and not dmarc_records(dmarc[0]) and not dmarc[0].failure:
        dmarc.append(lookup.ask(f"_dmarc.{organisation}", "TXT"))
    return DomainRecords(
        domain, _spf_tree(lookup, domain), dkim, tuple(dmarc), lookup.ask(domain, "MX")
    )


def organisational_domain(domain: str) -> str:
    """The registered domain, where DMARC falls back to (kommun.se of nyhetsbrev.kommun.se).

    Without the public suffix list this is the last two labels: right for .se, .nu, .com
    and .org, the domains Swedish municipalities and associations use.
    """
    return ".".join(domain.split(".")[-2:])


def check_domain(records: DomainRecords, wanted: Expected) -> list[Finding]:
    """The five verdicts on the sender's domain, one line each."""
    domain = records.domain
    spf = spf_verdict(domain, records.spf, wanted)
    dkim = dkim_verdict(domain, records.dkim, wanted)
    unread = _unread(records)
    passes = spf_passes(domain, records.spf, wanted)
    aligned = alignment_verdict(domain, passes, dkim.status == "ok", wanted, unread=unread)
    return [
        spf,
        dkim,
        dmarc_verdict(domain, records.dmarc),
        aligned,
        mx_verdict(domain, records.mx),
    ]


def _unread(records: DomainRecords) -> bool:
    """Whether SPF or DKIM could not be read at all, so alignment cannot be judged."""
    answers = [records.spf.get(records.domain, Answer(records.domain, "TXT"))]
    answers += [answer for _selector, cname, txt in records.dkim for answer in (cname, txt)]
    return any(answer.failure for answer in answers)


# SPF -------------------------------------------------------------------------------------


def spf_records(answer: Answer) -> list[str]:
    """The TXT records that are SPF records (RFC 7208 §4.5: "v=spf1" then a space or the end)."""
    return [r for r in answer.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def _terms(record: str) -> list[str]:
    return record.lower().split()[1:]


def _targets(record: str) -> list[str]:
    """The domains an SPF record sends the receiver on to: include: and redirect=."""
    found = []
    for term in _terms(record):
        bare = term.lstrip("+-~?")
        for prefix in ("include:", "redirect="):
            if bare.startswith(prefix) and "%" not in bare:  # a macro cannot be followed
                found.append(bare.removeprefix(prefix).rstrip("."))
    return found


def _spf_tree(lookup: Lookup, domain: str) -> dict[str, Answer]:
    """The domain's SPF record and those it includes, as far as SPF's lookup limit."""
    tree: dict[str, Answer] = {}
    queue = [domain]
    while queue and len(tree) <= SPF_LOOKUP_LIMIT:
        name = queue.pop(0)
        if name in tree:
            continue
        tree[name] = answer = lookup.ask(name, "TXT")
        records = spf_records(answer)
        if len(records) == 1:
            queue += _targets(records[0])
    return tree


def _reachable(tree: Mapping[str, Answer], start: str) -> list[str]:
    """The names SPF evaluation visits from `start`, each once, in order."""
    seen: list[str] = []
    queue = [start]
    while queue:
        name = queue.pop(0)
        if name in seen or name not in tree:
            continue
        seen.append(name)
        records = spf_records(tree[name])
        if len(records) == 1:
            queue += _targets(records[0])
    return seen


def _ending(tree: Mapping[str, Answer], domain: str) -> str:
    """The record's "all" term, or the one its redirect= ends with; "" for none."""
    name, visited = domain, set()
    while name in tree and name not in visited:
        visited.add(name)
        records = spf_records(tree[name])
        if len(records) != 1:
            return ""
        terms = _terms(records[0])
        for term in terms:
            if term.lstrip("+-~?") == "all":
                return term if term[0] in "+-~?" else "+all"
        redirects = [t.removeprefix("redirect=") for t in terms if t.startswith("redirect=")]
        if not redirects:
            return ""
        name = redirects[0].rstrip(".")
    return ""


def _lookups(tree: Mapping[str, Answer], domain: str) -> int:
    count = 0
    for name in _reachable(tree, domain):
        for record in spf_records(tree[name])[:1]:
            count += sum(
                term.lstrip("+-~?").split(":")[0].split("=")[0].split("/")[0] in _LOOKUP_TERMS
                for term in _terms(record)
            )
    return count


def _new_spf(wanted: Expected) -> str:
    include = wanted.spf_include or _("<the include your mail provider gives>")
    return f"v=spf1 include:{include} -all"


def _with_include(record: str, include: str) -> str:
    """The record with the provider's include added just before its ending."""
    terms = record.split()
    for index, term in enumerate(terms):
        if term.lower().lstrip("+-~?") == "all" or term.lower().startswith("redirect="):
            return " ".join([*terms[:index], f"include:{include}", *terms[index:]])
    return " ".join([*terms, f"include:{include}", "~all"])


def _with_ending(record: str) -> str:
    terms = [t for t in record.split() if t.lower().lstrip("+-~?") != "all"]
    return " ".join([*terms, "~all"])


def spf_verdict(domain: str, tree: Mapping[str, Answer], wanted: Expected) -> Finding:
    """SPF: present, one record, the provider included, ending in -all or ~all, ≤10 lookups."""
    fault = _spf_fault(domain, tree, wanted)
    if fault is not None:
        return fault
    record = spf_records(tree[domain])[0]
    ending = _ending(tree, domain)
    if ending not in _ENDINGS:
        said = (
            _("ends in {ending}").format(ending=ending)
            if ending
            else _("has no -all or ~all at its end")
        )
        return Finding(
            "problem",
            _("SPF ({domain})").format(domain=domain),
            _(
                "the record {said}, so it does not say that other servers may not send as {domain}"
            ).format(said=said, domain=domain),
            _("Change the TXT record at {domain} to: {shown}").format(
                domain=domain, shown=shown(_with_ending(record), 200)
            ),
        )
    return Finding("ok", _("SPF ({domain})").format(domain=domain), shown(record, 100))


def spf_passes(domain: str, tree: Mapping[str, Answer], wanted: Expected) -> bool:
    """Whether the provider's mail passes SPF (its ending only matters for everyone else's)."""
    return _spf_fault(domain, tree, wanted) is None


def _spf_fault(domain: str, tree: Mapping[str, Answer], wanted: Expected) -> Finding | None:
    """What makes SPF fail for the provider's mail, or None."""
    what = f"SPF ({domain})"
    answer = tree.get(domain, Answer(domain, "TXT"))
    if answer.failure:
        return Finding(
            "problem",
            what,
            _("the TXT records of {domain} could not be read: {failure}").format(
                domain=domain, failure=answer.failure
            ),
            _("Run doctor again; if it stays so, ask whoever runs the domain's DNS."),
        )
    records = spf_records(answer)
    if not records:
        return Finding(
            "problem",
            what,
            _(
                "{domain} has no SPF record, so receivers cannot tell your mail from forgeries"
            ).format(domain=domain),
            _("Add a TXT record at {domain}: {new_spf}").format(
                domain=domain, new_spf=_new_spf(wanted)
            ),
        )
    if len(records) > 1:
        return Finding(
            "problem",
            what,
            _(
                "{domain} has {count} SPF records; receivers then ignore SPF "
                "altogether (RFC 7208 permerror)"
            ).format(domain=domain, count=len(records)),
            _("Merge them into one TXT record beginning v=spf1 and remove the others: ")
            + " | ".join(shown(r, 60) for r in records),
        )
    record = records[0]
    reachable = _reachable(tree, domain)
    for name in reachable[1:]:
        included = tree[name]
        if included.failure:
            return Finding(
                "warning",
                what,
                _("the record includes {name}, which could not be read: {failure}").format(
                    name=name, failure=included.failure
                ),
                _("Run doctor again; if it stays so, remove or correct that include."),
            )
        if len(spf_records(included)) != 1:
            return Finding(
                "problem",
                what,
                _("the record includes {name}, which has no single SPF record (permerror)").format(
                    name=name
                ),
                _("Remove include:{name} from the TXT record at {domain}, or correct it.").format(
                    name=name, domain=domain
                ),
            )
    if wanted.spf_include and wanted.spf_include not in reachable:
        return Finding(
            "problem",
            what,
            _(
                "the record does not include {title}'s servers ({spf_include}), so "
                "mail you send through it fails SPF"
            ).format(title=wanted.title, spf_include=wanted.spf_include),
            _("Change the TXT record at {domain} to: ").format(domain=domain)
            + shown(_with_include(record, wanted.spf_include), 200),
        )
    lookups = _lookups(tree, domain)
    if len(reachable) > SPF_LOOKUP_LIMIT or lookups > SPF_LOOKUP_LIMIT:
        return Finding(
            "problem",
            what,
            _(
                "checking the record takes more than {spf_lookup_limit} DNS lookups, "
                "so receivers give up on it (RFC 7208 permerror)"
            ).format(spf_lookup_limit=SPF_LOOKUP_LIMIT),
            _(
                "Remove the includes you no longer send through from the TXT record at {domain}."
            ).format(domain=domain),
        )
    return None


# DKIM ------------------------------------------------------------------------------------


def dkim_tags(record: str) -> dict[str, str]:
    """A DKIM or DMARC record's tags ("v=DKIM1; k=rsa; p=…"), names in lower case."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, equals, value = part.partition("=")
        if equals and name.strip():
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags


def _key(answer: Answer) -> str:
    """ "key" for a published DKIM key, "revoked" for an empty p=, "" for none."""
    keys = [dkim_tags(record).get("p") for record in answer.records]
    if any(keys):
        return "key"
    return "revoked" if "" in keys else ""


def _microsoft_target(selector: str, domain: str, tenant: str) -> str:
    return f"{selector}-{domain.replace('.', '-')}._domainkey.{tenant}"


def dkim_verdict(
    domain: str, selectors: Sequence[tuple[str, Answer, Answer]], wanted: Expected
) -> Finding:
    """DKIM: a key for each of the provider's selectors, as CNAMEs where Microsoft needs them."""
    what = f"DKIM ({domain})"
    if not selectors:
        return Finding(
            "warning",
            what,
            _("smakom does not know which DKIM selector your mail provider signs with"),
            _(
                "Set [sender] dkim_selector in smakom.toml to the selector your "
                "provider names (the part before ._domainkey)."
            ),
        )
    for selector, cname, txt in selectors:
        failure = cname.failure or txt.failure
        if failure:
            return Finding(
                "problem",
                what,
                _("{selector}._domainkey.{domain} could not be read: {failure}").format(
                    selector=selector, domain=domain, failure=failure
                ),
                _("Run doctor again; if it stays so, ask whoever runs the domain's DNS."),
            )
    if wanted.cnames:
        return _microsoft_dkim(domain, selectors, wanted)
    missing = [(selector, _key(txt)) for selector, _cname, txt in selectors if _key(txt) != "key"]
    if missing:
        selector, key = missing[0]
        name = f"{selector}._domainkey.{domain}"
        revoked = key == "revoked"
        where = (
            "Google Admin console → Apps → Google Workspace → Gmail → Authenticate email"
            if wanted.provider == "google"
            else _("your mail provider")
        )
        said = _("an empty key (p=), a revoked one") if revoked else _("no DKIM key")
        return Finding(
            "problem",
            what,
            _("{name} has {said}, so your mail is not signed for {domain}").format(
                name=name, said=said, domain=domain
            ),
            _(
                "Add the TXT record {name} with the key {where} gives, then switch "
                "signing on there."
            ).format(name=name, where=where),
        )
    names = ", ".join(f"{selector}._domainkey" for selector, _c, _t in selectors)
    return Finding("ok", what, _("a key at {names}").format(names=names))


def _microsoft_dkim(
    domain: str, selectors: Sequence[tuple[str, Answer, Answer]], wanted: Expected
) -> Finding:
    what = f"DKIM ({domain})"
    defender = (
        "Microsoft Defender → Email & collaboration → Policies → Email authentication settings "
        "→ DKIM"
    )
    absent = [s for s, cname, txt in selectors if not cname.records and not txt.records]
    if len(absent) == len(selectors):
        records = "; ".join(
            f"CNAME {s}._domainkey.{domain} → {_microsoft_target(s, domain, wanted.tenant)}"
            for s in absent
        )
        return Finding(
            "problem",
            what,
            _(
                "no DKIM for {domain}: Microsoft 365 signs your mail for "
                "onmicrosoft.com only, so DMARC rests on SPF alone, which fails when a "
                "reader's mail is forwarded"
            ).format(domain=domain),
            _(
                "Add {records} (the exact values are in {defender}), then switch DKIM on there."
            ).format(records=records, defender=defender),
        )
    for selector, cname, txt in selectors:
        name = f"{selector}._domainkey.{domain}"
        target = _microsoft_target(selector, domain, wanted.tenant)
        if not cname.records:
            said = "is a TXT record, not" if txt.records else "is missing, and"
            return Finding(
                "problem",
                what,
                _("{name} {said} the CNAME Microsoft 365 signs with").format(name=name, said=said),
                _("Make {name} a CNAME → {target} (the exact value is in {defender}).").format(
                    name=name, target=target, defender=defender
                ),
            )
        pointed = cname.records[0]
        if not (pointed.endswith(".onmicrosoft.com") or pointed.endswith(".dkim.mail.microsoft")):
            return Finding(
                "problem",
                what,
                _("{name} points to {shown}, not to Microsoft 365").format(
                    name=name, shown=shown(pointed)
                ),
                _("Make {name} a CNAME → {target} (the exact value is in {defender}).").format(
                    name=name, target=target, defender=defender
                ),
            )
        if _key(txt) != "key":
            return Finding(
                "problem",
                what,
                _(
                    "{name} points to {shown}, which holds no key: DKIM has not been "
                    "switched on for {domain}"
                ).format(name=name, shown=shown(pointed), domain=domain),
                _("Switch DKIM on for {domain} in {defender} (or correct the CNAME).").format(
                    domain=domain, defender=defender
                ),
            )
    return Finding("ok", what, _("selector1 and selector2 point to Microsoft 365's keys"))


# DMARC -----------------------------------------------------------------------------------


def dmarc_records(answer: Answer) -> list[str]:
    """The TXT records that are DMARC records (RFC 7489 §6.4: they begin "v=DMARC1")."""
    return [r for r in answer.records if dkim_tags(r.split(";")[0]).get("v") == "DMARC1"]


def _new_dmarc(domain: str) -> str:
    return f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"


def dmarc_verdict(domain: str, answers: Sequence[Answer]) -> Finding:
    """DMARC: one record at _dmarc (or the organisational domain's) with a policy that acts."""
    what = f"DMARC (_dmarc.{domain})"
    name = f"_dmarc.{domain}"
    for answer in answers:
        if answer.failure:
            return Finding(
                "problem",
                what,
                _("{name} could not be read: {failure}").format(
                    name=answer.name, failure=answer.failure
                ),
                _("Run doctor again; if it stays so, ask whoever runs the domain's DNS."),
            )
        records = dmarc_records(answer)
        if not records:
            continue
        if len(records) > 1:
            return Finding(
                "problem",
                what,
                _("{name} has {count} DMARC records; receivers then ignore DMARC").format(
                    name=answer.name, count=len(records)
                ),
                _("Keep one TXT record at {name} and remove the others.").format(name=answer.name),
            )
        tags = dkim_tags(records[0])
        policy = tags.get("p", "").lower()
        if policy not in DMARC_POLICIES:
            return Finding(
                "problem",
                what,
                _("the record at {name} has no valid policy (p=)").format(name=answer.name),
                _("Change the TXT record at {name} to: {new_dmarc}").format(
                    name=answer.name, new_dmarc=_new_dmarc(domain)
                ),
            )
        if policy == "none":
            return Finding(
                "problem",
                what,
                _(
                    "p=none: receivers are asked to deliver mail that fails DMARC as if it "
                    "passed, so anyone can send in the name of {domain} and your own mail "
                    "earns less trust"
                ).format(domain=domain),
                _(
                    "Change p=none to p=quarantine in the TXT record at {name}, once its "
                    "reports (rua=) show your newsletter passes."
                ).format(name=answer.name),
            )
        percent = tags.get("pct", "100")
        if percent.isdigit() and int(percent) < 100:
            return Finding(
                "warning",
                what,
                _(
                    "p={policy} for only {percent} percent of the mail that fails (pct={percent})"
                ).format(policy=policy, percent=percent),
                _("Remove pct= from the TXT record at {name} when you are ready.").format(
                    name=answer.name
                ),
            )
        return Finding(
            "ok", what, _("p={policy} at {name}").format(policy=policy, name=answer.name)
        )
    return Finding(
        "problem",
        what,
        _(
            "{domain} has no DMARC record: Gmail, Yahoo and Outlook.com require one of bulk senders"
        ).format(domain=domain),
        _("Add a TXT record at {name}: {new_dmarc}").format(
            name=name, new_dmarc=_new_dmarc(domain)
        ),
    )


def alignment_verdict(
    domain: str, spf_passes: bool, dkim_passes: bool, wanted: Expected, *, unread: bool = False
) -> Finding:
    """Whether DMARC can pass: the From domain is the domain SPF checks (smakom's envelope
    sender is the From address) and the domain DKIM signs for once its key is published."""
    what = f"DMARC alignment (From: {domain})"
    if unread and not (spf_passes and dkim_passes):
        return Finding(
            "warning",
            what,
            _("not judged: the SPF or DKIM records could not be read"),
            _("Run doctor again once DNS answers."),
        )
    if spf_passes and dkim_passes:
        return Finding("ok", what, _("the From domain aligns with both DKIM and SPF"))
    signer = wanted.tenant if wanted.cnames else _("another domain, or not at all")
    if spf_passes:
        return Finding(
            "warning",
            what,
            _(
                "DMARC rests on SPF alone; it fails for every reader whose mail is "
                "forwarded (DKIM signs as {signer})"
            ).format(signer=signer),
            _("Publish the DKIM records the DKIM line names."),
        )
    if dkim_passes:
        return Finding(
            "warning",
            what,
            _("DMARC rests on DKIM alone; SPF does not pass for your provider"),
            _("Correct the SPF record the SPF line names."),
        )
    return Finding(
        "problem",
        what,
        _(
            "the From domain {domain} aligns with neither DKIM (which signs as "
            "{signer}) nor SPF, so DMARC fails for every message and receivers may "
            "refuse or bin them"
        ).format(domain=domain, signer=signer),
        _("Fix the SPF and DKIM records the lines above name."),
    )


# MX --------------------------------------------------------------------------------------


def mx_verdict(domain: str, answer: Answer) -> Finding:
    """MX: the sender's domain receives mail (replies, bounces, the unsubscribe address)."""
    what = f"MX ({domain})"
    if answer.failure:
        return Finding(
            "problem",
            what,
            _("the MX records of {domain} could not be read: {failure}").format(
                domain=domain, failure=answer.failure
            ),
            _("Run doctor again; if it stays so, ask whoever runs the domain's DNS."),
        )
    hosts = [record.partition(" ")[2] for record in answer.records]
    if not hosts or hosts == ["."]:
        said = _("says it receives no mail (a null MX)") if hosts else _("has no MX record")
        return Finding(
            "problem",
            what,
            _(
                "{domain} {said}: replies, bounces and unsubscribe mails cannot reach "
                "you, and some receivers refuse mail from such a domain"
            ).format(domain=domain, said=said),
            _("Add the MX record your mail provider gives for {domain}.").format(domain=domain),
        )
    return Finding("ok", what, ", ".join(shown(host, 60) for host in hosts[:3]))
