"""What a doctor check finds: one line, ok, a warning or a problem, with what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `what` was checked, what was `found`, and what `todo` about it."""

    status: Status
    what: str
    found: str
    todo: str = ""


@dataclass(frozen=True)
class DoctorReport:
    """Every finding of one `smakom doctor` run, in the order they were checked."""

    findings: tuple[Finding, ...]
    offline: bool = False

    @property
    def problems(self) -> int:
        return sum(finding.status == "problem" for finding in self.findings)

    @property
    def warnings(self) -> int:
        return sum(finding.status == "warning" for finding in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing is a problem (warnings are worth a look, not a stop), 1 otherwise."""
        return 1 if self.problems else 0


def shown(value: str, limit: int = 80) -> str:
    """A value from outside (a DNS record, a server's reply) short enough for one line."""
    return value if len(value) <= limit else value[: limit - 1] + "…"
