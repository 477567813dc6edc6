"""The sender domain's DNS as the doctor tests serve it: a good zone per provider, and the
broken ones the issue lists, each a small change to a good one."""

from __future__ import annotations

from tests.dns_server import Zone

DOMAIN = "smakom.se"
TENANT = "smakom.onmicrosoft.com"
MICROSOFT_SPF = "v=spf1 include:spf.protection.outlook.com -all"
KEY = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest"

MICROSOFT: dict[tuple[str, str], list[str]] = {
    (DOMAIN, "TXT"): ["MS=ms12345678", MICROSOFT_SPF],
    ("spf.protection.outlook.com", "TXT"): ["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 -all"],
    (f"selector1._domainkey.{DOMAIN}", "CNAME"): [f"selector1-smakom-se._domainkey.{TENANT}"],
    (f"selector2._domainkey.{DOMAIN}", "CNAME"): [f"selector2-smakom-se._domainkey.{TENANT}"],
    (f"selector1-smakom-se._domainkey.{TENANT}", "TXT"): [KEY],
    (f"selector2-smakom-se._domainkey.{TENANT}", "TXT"): [KEY],
    (f"_dmarc.{DOMAIN}", "TXT"): [f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"],
    (DOMAIN, "MX"): ["0 smakom-se.mail.protection.outlook.com"],
}

GOOGLE: dict[tuple[str, str], list[str]] = {
    (DOMAIN, "TXT"): ["v=spf1 include:_spf.google.com ~all"],
    ("_spf.google.com", "TXT"): ["v=spf1 include:_netblocks.google.com ~all"],
    ("_netblocks.google.com", "TXT"): ["v=spf1 ip4:35.190.247.0/24 ~all"],
    (f"google._domainkey.{DOMAIN}", "TXT"): [KEY],
    (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=reject"],
    (DOMAIN, "MX"): ["1 smtp.google.com"],
}


def changed(
    zone: Zone, changes: dict[tuple[str, str], list[str] | None]
) -> dict[tuple[str, str], list[str]]:
    """The zone with some records replaced; None removes them."""
    result = {key: list(values) for key, values in zone.items()}
    for key, values in changes.items():
        if values is None:
            result.pop(key, None)
        else:
            result[key] = values
    return result


# The broken zones of the issue, each with what the one problem line must name.
BROKEN_MICROSOFT = {
    "no SPF": (changed(MICROSOFT, {(DOMAIN, "TXT"): ["MS=ms12345678"]}), "SPF", MICROSOFT_SPF),
    "two SPF records": (
        changed(MICROSOFT, {(DOMAIN, "TXT"): [MICROSOFT_SPF, "v=spf1 a mx ~all"]}),
        "SPF",
        "Merge them into one TXT record",
    ),
    "SPF without the provider": (
        changed(MICROSOFT, {(DOMAIN, "TXT"): ["v=spf1 ip4:192.0.2.10 -all"]}),
        "SPF",
        "v=spf1 ip4:192.0.2.10 include:spf.protection.outlook.com -all",
    ),
    "SPF ending in ?all": (
        changed(MICROSOFT, {(DOMAIN, "TXT"): ["v=spf1 include:spf.protection.outlook.com ?all"]}),
        "SPF",
        "v=spf1 include:spf.protection.outlook.com ~all",
    ),
    "DKIM for onmicrosoft only": (
        changed(
            MICROSOFT,
            {
                (f"selector1._domainkey.{DOMAIN}", "CNAME"): None,
                (f"selector2._domainkey.{DOMAIN}", "CNAME"): None,
            },
        ),
        "DKIM",
        f"CNAME selector1._domainkey.{DOMAIN} → selector1-smakom-se._domainkey.{TENANT}",
    ),
    "DKIM not switched on": (
        changed(MICROSOFT, {(f"selector1-smakom-se._domainkey.{TENANT}", "TXT"): None}),
        "DKIM",
        "Switch DKIM on for smakom.se",
    ),
    "no DMARC": (
        changed(MICROSOFT, {(f"_dmarc.{DOMAIN}", "TXT"): None}),
        "DMARC",
        f"Add a TXT record at _dmarc.{DOMAIN}: v=DMARC1; p=quarantine",
    ),
    "p=none": (
        changed(MICROSOFT, {(f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=none"]}),
        "DMARC",
        "Change p=none to p=quarantine",
    ),
    "no MX": (changed(MICROSOFT, {(DOMAIN, "MX"): None}), "MX", "Add the MX record"),
}
# The From domain covered neither by SPF (an old web host's servers only) nor by DKIM.
MISALIGNED = changed(
    BROKEN_MICROSOFT["DKIM for onmicrosoft only"][0],
    {
        (DOMAIN, "TXT"): ["v=spf1 include:_spf.webbhotell.example -all"],
        ("_spf.webbhotell.example", "TXT"): ["v=spf1 ip4:198.51.100.0/24 -all"],
    },
)
