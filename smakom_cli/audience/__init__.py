"""Who gets an issue: the subscriber list, the suppression list (unsubscribed.csv), the signed
unsubscribe links and the signed Message-ID references.

May import: `config`, `errors`, `atomic`, `lazy`.
"""
