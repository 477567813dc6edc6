"""Signing in and secrets: the keyring and environment variables, OAuth2 (msal) and the mail
providers' profiles.

May import: `config`, `errors`, `lazy`.
"""
