"""The interface language: the one `_()` and `ngettext()` that every module imports.

The office sees Swedish on a Swedish computer and English everywhere else. The language is
decided once, when this module is first imported (at start-up): `SMAKOM_LANG` if it is set,
else the first of LC_ALL, LC_MESSAGES and LANG that is, else the user's language on Windows
and macOS; any `sv…` means Swedish. Translate first, then format, so the catalog holds the
sentence with its placeholders: `_("Sent {count}").format(count=n)`.

The catalogs are `locale/<language>/LC_MESSAGES/smakom.po` beside this file, compiled to the
`.mo` files that ship in the package (docs/translating.md says how to update them).
"""

from __future__ import annotations

import gettext
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "DOMAIN",
    "LANGUAGE",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "_",
    "choose_language",
    "ngettext",
]

DOMAIN = "smakom"
LOCALE_DIR = Path(__file__).parent / "locale"
# English is the language of the source; Swedish has a catalog.
LANGUAGES = ("en", "sv")
# The variables that name the language of messages, the first set one winning (POSIX).
_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def choose_language(environment: Mapping[str, str], system: Callable[[], str | None]) -> str:
    """ "sv" or "en": `SMAKOM_LANG`, else the locale variables, else what `system()` says."""
    chosen = environment.get("SMAKOM_LANG", "").strip()
    if not chosen:
        chosen = next(
            (environment[name] for name in _LOCALE_VARIABLES if environment.get(name, "").strip()),
            "",
        )
    if not chosen:
        chosen = system() or ""
    return "sv" if chosen.strip().lower().startswith("sv") else "en"


def _system_language() -> str | None:
    """The user's language where no locale variable is usual (Windows, macOS), else None."""
    if sys.platform == "win32":
        import ctypes

        # LANG_SWEDISH is 0x1D, the primary language in the low ten bits of the LANGID.
        ui_language = ctypes.windll.kernel32.GetUserDefaultUILanguage()
        return "sv" if (ui_language & 0x3FF) == 0x1D else None
    if sys.platform == "darwin":
        import plistlib

        preferences = Path.home() / "Library" / "Preferences" / ".GlobalPreferences.plist"
        try:
            with preferences.open("rb") as file:
                settings = plistlib.load(file)
        except (OSError, ValueError):
            return None
        languages = settings.get("AppleLanguages") if isinstance(settings, dict) else None
        if isinstance(languages, list) and languages and isinstance(languages[0], str):
            return languages[0]
        locale = settings.get("AppleLocale") if isinstance(settings, dict) else None
        return locale if isinstance(locale, str) else None
    return None


def _translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language`, read straight from its file (no locale search)."""
    if language == "en":
        return gettext.NullTranslations()
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as file:
        return gettext.GNUTranslations(file)


LANGUAGE = choose_language(os.environ, _system_language)
_catalog = _translations(LANGUAGE)


def _(message: str) -> str:
    """`message` in the interface language."""
    return _catalog.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of `singular`/`plural` that suits `count`, in the interface language."""
    return _catalog.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks `message` for the catalog without translating it: it is translated where shown."""
    return message
