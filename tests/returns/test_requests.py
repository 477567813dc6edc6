"""What a message to the unsubscribe address must say to unsubscribe its writer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.returns.requests import Reading, read_request

REQUESTS = [
    ("unsubscribe anna.aberg@example.com", ""),
    ("", ""),
    ("unsubscribe", "Tack för många bra år!"),
    ("Avregistrera mig", ""),
    ("", "Avregistrera mig, tack."),
    ("Re: Nyhetsbrev Januari 2021", "Avsluta min prenumeration"),
    ("", "Kan ni avregistrera mig?"),
    ("", "Ta bort mig från listan"),
    ("", "Hej, jag vill inte ha nyhetsbrevet längre.\n/Lars"),
    ("", "Jag vill inte vara kvar på listan."),
    ("", "Jag har slutat på kommunen, sluta skicka brevet."),
    ("Unsubscribe", "Please unsubscribe me."),
    ("", "Remove me from your list"),
    ("STOP", ""),
    ("", "I no longer wish to receive this newsletter."),
    ("", "I don't want to receive these emails any more, thanks"),
]

NOT_REQUESTS = [
    ("Re: Nyhetsbrev", "Avregistrera mig INTE, jag vill gärna fortsätta få brevet!"),
    ("Re: Nyhetsbrev", "länken för att avregistrera sig fungerar inte för min kollega"),
    ("Unsubscribe-länken i förra brevet", "jag vill vara kvar på listan"),
    ("Unsubscribe-länken i förra brevet", ""),
    ("", "Jag vill inte avregistrera mig, det var ett misstag."),
    ("", "Avregistreringslänken fungerar inte."),
    ("", "Avregistrera min kollega Nils, han har gått i pension."),
    ("", "Hej, en fråga om konferensen i maj."),
    ("", "Please don't unsubscribe me, I love it."),
    ("", "I do not want to unsubscribe."),
    ("", "The unsubscribe link does not work."),
    ("", "Please keep me on the list."),
    ("Re: unsubscribe", "Sorry, clicked by mistake. I would like to stay subscribed."),
    ("", "Avregistrera mig.\n" + "Vi har haft stor glädje av brevet genom åren. " * 12),
]


@pytest.mark.parametrize(("subject", "body"), REQUESTS)
def test_these_ask_to_leave(subject: str, body: str) -> None:
    """Swedish and English requests, the header's proposed subject, and no words at all."""
    assert read_request(subject, body) == Reading(True)


@pytest.mark.parametrize(("subject", "body"), NOT_REQUESTS)
def test_these_do_not(subject: str, body: str) -> None:
    """Negated, about the link, for a colleague, asking to stay, off topic or a letter."""
    reading = read_request(subject, body)
    assert not reading.leave
    assert reading.why


@given(st.text(max_size=600), st.text(max_size=2000))
def test_any_words_give_a_reading(subject: str, body: str) -> None:
    """Whatever a reader writes, the reading answers, and a refusal always says why."""
    reading = read_request(subject, body)
    assert reading.leave or reading.why
