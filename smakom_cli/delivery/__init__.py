"""An issue to a list: the mailing, the check, the preview, the workflow of a send (plan, run,
report), the dispatcher, the SMTP session, the journal and the outcomes.

May import: `compose`, `audience`, `signin`, `returns` (the sync before a send), and the
modules at the top of the package. Never prints or prompts.
"""
