"""Signing in and secrets: the keyring and environment variables, OAuth2 (msal), the mail
providers' profiles, and the one resolver (`resolver.Resolver`) that turns the settings, the
environment the command line hands in and the keyring into every login and key a command needs.

May import: `config`, `errors`, `lazy`, `i18n`.
"""
