"""The interface language: chosen from SMAKOM_LANG or the locale, and every marked message has
a Swedish translation with the same placeholders."""

from __future__ import annotations

import string
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from smakom_cli.i18n import LOCALE_DIR, choose_language

PACKAGE = Path(__file__).resolve().parent.parent / "smakom_cli"
SWEDISH_PO = LOCALE_DIR / "sv" / "LC_MESSAGES" / "smakom.po"
SWEDISH_MO = SWEDISH_PO.with_suffix(".mo")


def _no_system() -> str | None:
    return None


def test_smakom_lang_decides_first() -> None:
    """SMAKOM_LANG wins over the locale, in either direction."""
    assert choose_language({"SMAKOM_LANG": "sv", "LANG": "en_US.UTF-8"}, _no_system) == "sv"
    assert choose_language({"SMAKOM_LANG": "en", "LC_ALL": "sv_SE.UTF-8"}, _no_system) == "en"


def test_the_first_locale_variable_set_decides() -> None:
    """LC_ALL before LC_MESSAGES before LANG; any sv… is Swedish, anything else English."""
    assert choose_language({"LANG": "sv_SE.UTF-8"}, _no_system) == "sv"
    assert choose_language({"LANG": "sv_FI"}, _no_system) == "sv"
    assert choose_language({"LC_MESSAGES": "sv", "LANG": "en_GB"}, _no_system) == "sv"
    assert choose_language({"LC_ALL": "C.UTF-8", "LANG": "sv_SE.UTF-8"}, _no_system) == "en"
    assert choose_language({"LANG": "de_DE.UTF-8"}, _no_system) == "en"


def test_the_system_language_when_no_variable_is_set() -> None:
    """Windows and macOS name the user's language when no locale variable does."""
    assert choose_language({}, lambda: "sv-SE") == "sv"
    assert choose_language({"LANG": ""}, lambda: "sv") == "sv"
    assert choose_language({}, lambda: "en-SE") == "en"
    assert choose_language({}, _no_system) == "en"


@given(
    st.dictionaries(st.sampled_from(["SMAKOM_LANG", "LC_ALL", "LC_MESSAGES", "LANG"]), st.text())
)
def test_any_environment_gives_one_of_the_two_languages(environment: dict[str, str]) -> None:
    """Whatever the variables hold, the language is Swedish or English, never an error."""
    assert choose_language(environment, _no_system) in {"sv", "en"}


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _marked() -> Catalog:
    """Every message marked in the package's code, extracted now."""
    catalog = Catalog()
    for _, _, message, _, _ in extract_from_dir(str(PACKAGE)):
        catalog.add(message)
    return catalog


def _swedish() -> Catalog:
    with SWEDISH_PO.open("rb") as file:
        return read_po(file)


def _forms(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def _translations(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def test_every_marked_message_has_a_swedish_translation() -> None:
    """No message marked with _() or ngettext() in the code lacks a finished Swedish entry."""
    swedish = _swedish()
    missing = []
    for message in _marked():
        if not message.id:
            continue
        entry = swedish.get(message.id)
        if entry is None or entry.fuzzy or not all(_translations(entry)):
            missing.append(message.id)
    assert not missing, f"{len(missing)} messages without Swedish, e.g. {missing[:5]}"


def test_translations_keep_the_placeholders() -> None:
    """A translation names exactly the placeholders of its original, in every plural form."""
    wrong = []
    for message in _swedish():
        if not message.id or not message.string:
            continue
        original = set().union(*(_fields(form) for form in _forms(message)))
        for translated in _translations(message):
            if translated and _fields(translated) != original:
                wrong.append((message.id, translated))
    assert not wrong, wrong


def test_the_compiled_catalog_is_the_po_file() -> None:
    """The committed .mo (what the wheel carries) holds what the .po says: it was compiled."""
    with SWEDISH_MO.open("rb") as file:
        compiled = {m.id: m.string for m in read_mo(file) if m.id}
    written = {m.id: m.string for m in _swedish() if m.id and m.string and not m.fuzzy}
    assert compiled == written
