"""What a message to the `[unsubscribe] mailto` address must say to be acted on.

The List-Unsubscribe header offers that address (RFC 2369), so a message to it, with the
subject the header proposes ("unsubscribe anna@kommun.se") or with no words at all, is the
request itself. Words can still say the opposite: readers write to that address to say the
link does not work, to ask to stay, or for a colleague. Losing a reader who wrote to stay is
the worst thing `smakom inbox` can do, so the writer's own words are read clause by clause
(subject first, then the body above what it quotes), and the message is a request only when
some clause asks to leave and none asks to stay, negates leaving, or is about the link:

- "Avregistrera mig", "Please unsubscribe me", "Ta bort mig från listan", "Stop",
  "Jag vill inte ha nyhetsbrevet längre", "I no longer wish to receive it": a request;
- "Avregistrera mig INTE", "I don't want to unsubscribe", "jag vill vara kvar på listan",
  "Please keep me on the list": asks to stay;
- "länken för att avregistrera sig fungerar inte", "Unsubscribe-länken i förra brevet":
  about the link, for a person to read;
- a letter (more than a few lines) or words that do not ask to leave: for a person.

A reply to any other address is never a request, whatever it says (see `bounces.classify`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smakom_cli.i18n import _

# Own text longer than this is a letter, which a person reads, even when sent to the mailto.
LETTER_CHARACTERS = 500
LETTER_LINES = 8

_LEAVE = re.compile(
    r"avregistrer\w*|avprenumerer\w*|avsluta\w*|säg(a|er)? upp|unsubscri\w*|opt[- ]?out|"
    r"ta bort mig|radera mig|stryk mig|remove me|take me off|stop(p|pa)?\b|sluta skicka",
    re.IGNORECASE,
)
# Leaving, said with a negation that belongs to it: "vill inte ha … längre", "no longer".
_NO_MORE = re.compile(
    r"\b(vill|önskar)\s+(inte|ej)\s+(längre\s+)?(ha|få)\b|\binte\s+(längre|mer)\b|"
    r"\bno\s+longer\b|\b(do\s+not|don'?t)\s+(want|wish)\s+(to\s+(receive|get)|it|this|the|"
    r"these|your|any)\b|\bnot\s+interested\b|\binte\s+intresserad",
    re.IGNORECASE,
)
_STAY = re.compile(
    r"\b(vara|stå|ligga|finnas)\s+kvar\b|\bfortsätt\w*|\bbehåll\w*|\bha\s+kvar\b|"
    r"\bstay\b|\bremain\b|\bkeep\b|\bcontinue\w*|\bresubscri\w*",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(inte|ej|icke|aldrig|inga?|not|never|no)\b|n'?t\b", re.IGNORECASE)
# The unsubscribe link or page as a topic: a question or a complaint, not a request.
_ABOUT_THE_LINK = re.compile(
    r"(avregistrer|unsubscri|avprenumerer)\w*[- ]?(länk|link|knapp|button|sida|page|funktion)|"
    r"(länk|link|knapp|button)\w*\s+(för|to|att|for)\s+(att\s+)?(avregistrer|unsubscri)|"
    r"\bfungerar\b|\bfunkar\b|\bdoes\s*n[o']?t\s+work|\bnot\s+working\b|\bbroken\b",
    re.IGNORECASE,
)
_ABOUT_SOMEONE_ELSE = re.compile(
    r"\bkolleg\w*|\bcolleague\w*|\bmedarbetare\b|\bföreträdare\b|\bi\s+stället\s+för\b|"
    r"\bon\s+behalf\b|\bhans\b|\bhennes\b|\bhis\b|\bher\b",
    re.IGNORECASE,
)
_CLAUSES = re.compile(r"[.!?;,:\n]+|\s+(?:men|but|utan)\s+", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^((re|sv|vs|fw|fwd|vb|aw|wg)\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """What the writer's words ask for: `leave` is True only for a clear request."""

    leave: bool
    why: str = ""
    """Why it is not a request ("" when it is one), for the person who reads it."""


def read_request(subject: str, own_text: str) -> Reading:
    """Whether the words of a message sent to the mailto address ask to leave the list."""
    subject = _REPLY_PREFIX.sub("", subject).strip()
    body = own_text.strip()
    lines = [line for line in body.splitlines() if line.strip()]
    if len(body) > LETTER_CHARACTERS or len(lines) > LETTER_LINES:
        return Reading(False, _("a letter to the unsubscribe address: a person should read it"))
    clauses = [c.strip() for c in _CLAUSES.split(f"{subject}\n{body}") if c and c.strip()]
    if not clauses:
        return Reading(True)  # the address alone is the request (RFC 2369)
    leaves = False
    for clause in clauses:
        if _ABOUT_THE_LINK.search(clause):
            return Reading(False, _("writes about the unsubscribe link: a person should read it"))
        if _ABOUT_SOMEONE_ELSE.search(clause):
            return Reading(False, _("writes about someone else: a person should read it"))
        negated = bool(_NEGATION.search(clause))
        if _NO_MORE.search(clause) and not _LEAVE.search(clause):
            leaves = True
        elif _LEAVE.search(clause):
            if negated:
                return Reading(False, _("asks not to be unsubscribed: a person should read it"))
            leaves = True
        elif _STAY.search(clause):
            if not negated:
                return Reading(False, _("asks to stay on the list: a person should read it"))
            leaves = True
    if leaves:
        return Reading(True)
    return Reading(False, _("sent to the unsubscribe address without asking to leave"))
