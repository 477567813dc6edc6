"""An issue to a list: the mailing, the check, the preview, the jobs of `smakom send` (one call
each: `send.send_issue`, `send.send_proof`), the workflow of a send (plan, run, report), the
dispatcher, the SMTP session, the journal and the outcomes.

May import: `compose`, `audience`, `signin`, `returns.sync` (a send syncs first and while it
runs), and the modules at the top of the package. Never prints or prompts.
"""
