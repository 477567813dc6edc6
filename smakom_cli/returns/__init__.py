"""The way back from the readers: the one-click service (WSGI, SQLite), the sync that brings
its events home, the inbox (one call, `inbox.sort_inbox`: the IMAP session `imap`, the pure
policy `sorting`, the classifier `bounces` with `requests`) and the inbox log.

May import: `compose`, `audience`, `signin`, `delivery.journal` (who got which issue), and the
modules at the top of the package. Never prints or prompts.
"""
