"""What became of one message: the one vocabulary of the SMTP layer, the sender and the journal."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """One message's fate; the values are what the journal and the report files say."""

    SENT = "sent"  # the server took it
    FAILED = "failed"  # refused for good (5xx): never sent again unasked
    DEFERRED = "deferred"  # refused for now (4xx): retried, and sent by the next run if need be
    SKIPPED = "skipped"  # unsubscribed while the send ran
    UNCERTAIN = "uncertain"  # the answer to the end of DATA was lost: it may have arrived
    DROPPED = "dropped"  # the connection went before the end of DATA: not taken, retried now
    UNSENT = "unsent"  # not attempted, because the run is stopping
    SENDER_REFUSED = "sender-refused"  # MAIL FROM refused: no message can go
