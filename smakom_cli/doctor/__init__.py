"""The setup check: settings, keyring, SMTP, DNS (SPF, DKIM, DMARC, MX), service, inbox.

Each check is a small function returning a `Finding`; `check_setup` runs them all.
"""

from smakom_cli.doctor.checkup import Options, check_setup, doctor_ran
from smakom_cli.doctor.findings import DoctorReport, Finding

__all__ = ["DoctorReport", "Finding", "Options", "check_setup", "doctor_ran"]
