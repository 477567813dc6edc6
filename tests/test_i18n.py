"""The interface language: chosen from SMAKOM_LANG or the locale, and every marked message has
a Swedish translation with the same placeholders."""

from __future__ import annotations

import ast
import os
import re
import string
import subprocess
import sys
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


def smakom(
    args: list[str], language: dict[str, str], cwd: Path | None = None, answer: str = ""
) -> subprocess.CompletedProcess[str]:
    """`smakom ARGS` in a process whose only language settings are `language`."""
    unset = ("SMAKOM_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    environment = {k: v for k, v in os.environ.items() if k not in unset} | language
    return subprocess.run(
        [str(Path(sys.executable).with_name("smakom")), *args],
        input=answer,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        cwd=cwd,
        timeout=60,
        check=False,
    )


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


def test_no_translation_is_asked_for_inside_an_f_string() -> None:
    """_() inside an f-string is invisible to the extraction (Python 3.11 tokenises an f-string
    as one string): its message would never reach the catalog."""
    hidden = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                for inner in ast.walk(node):
                    if _marks_a_literal(inner):
                        hidden.append(f"{path.relative_to(PACKAGE)}:{inner.lineno}")
    assert not hidden, hidden


def test_no_module_that_translates_assigns_to_the_underscore() -> None:
    """`for _ in ...` or `a, _, b = ...` inside a function that also calls _() makes _ a
    local there, and the call fails (UnboundLocalError) on a path tests may not reach."""
    assigned = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "smakom_cli.i18n"
            and any(alias.name == "_" for alias in node.names)
            for node in ast.walk(tree)
        )
        comprehensions = {
            id(target)
            for node in ast.walk(tree)
            if isinstance(node, ast.comprehension)
            for target in ast.walk(node.target)
        }
        for node in ast.walk(tree):
            if (
                imports
                and isinstance(node, ast.Name)
                and node.id == "_"
                and isinstance(node.ctx, ast.Store)
                and id(node) not in comprehensions
            ):
                assigned.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not assigned, assigned


# Where a sentence for the office starts its way: an error, a line of output, a prompt, help.
_SAID_TO_THE_OFFICE = {"SmakomError", "error", "warning", "info", "success", "prompt", "confirm"}


def test_what_the_office_is_told_is_marked_for_translation() -> None:
    """An error, an output line, a prompt or a help text written as a plain or f-string (not
    through _() or ngettext()) would stay English in Swedish."""
    unmarked = []
    for path in PACKAGE.rglob("*.py"):
        if "i18n" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", "") or getattr(node.func, "attr", "")
            owner = getattr(getattr(node.func, "value", None), "id", "")
            told = name == "SmakomError" or (
                name in _SAID_TO_THE_OFFICE and owner in {"output", "typer"}
            )
            texts = [node.args[0]] if told and node.args else []
            texts += [k.value for k in node.keywords if k.arg == "help"]
            for text in texts:
                if _has_words(text):
                    unmarked.append(f"{path.relative_to(PACKAGE)}:{text.lineno}")
    assert not unmarked, unmarked


def _has_words(node: ast.AST) -> bool:
    """A string or f-string whose own text has words (a composition like f"{a} {b}" has none;
    "smakom" is a name)."""
    if isinstance(node, ast.JoinedStr):
        parts = [p.value for p in node.values if isinstance(p, ast.Constant)]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts = [node.value]
    else:
        return False
    return bool(re.search(r"[A-Za-z]{2,}", " ".join(map(str, parts)).replace("smakom", "")))


def _marks_a_literal(node: ast.AST) -> bool:
    """A call like _("text"), whose text the extraction should have found."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", "") in {"_", "ngettext", "N_"}
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


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


def _key(text: object) -> object:
    """A message's id or translation comparable whatever the reader made of its plural forms."""
    return tuple(text) if isinstance(text, list | tuple) else text


def test_the_compiled_catalog_is_the_po_file() -> None:
    """The committed .mo (what the wheel carries) holds what the .po says: it was compiled."""
    with SWEDISH_MO.open("rb") as file:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(file) if m.id}
    written = {_key(m.id): _key(m.string) for m in _swedish() if m.id and m.string and not m.fuzzy}
    assert compiled == written


def test_help_is_swedish_with_smakom_lang_sv() -> None:
    """click's own words in `smakom --help` are Swedish: usage, sections, the help option."""
    result = smakom(["--help"], {"SMAKOM_LANG": "sv"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Användning: smakom [FLAGGOR] KOMMANDO [ARGUMENT]...")
    assert "Flaggor:" in result.stdout
    assert "Kommandon:" in result.stdout
    assert "Visa den här hjälpen och avsluta." in result.stdout
    assert "Usage" not in result.stdout
    assert "Show this message" not in result.stdout


def test_a_swedish_locale_gives_swedish_and_smakom_lang_en_english() -> None:
    """LANG=sv_SE.UTF-8 alone gives Swedish; SMAKOM_LANG=en overrides it."""
    swedish = smakom(["--help"], {"LANG": "sv_SE.UTF-8"})
    assert swedish.stdout.startswith("Användning:"), swedish.stdout
    english = smakom(["--help"], {"LANG": "sv_SE.UTF-8", "SMAKOM_LANG": "en"})
    assert english.stdout.startswith("Usage: smakom [OPTIONS] COMMAND [ARGS]..."), english.stdout
    assert "Show this message and exit." in english.stdout


def test_usage_errors_are_swedish() -> None:
    """A wrong option or command is refused in Swedish, with the hint, and exit code 2."""
    unknown = smakom(["send", "--bogus", "x.md"], {"SMAKOM_LANG": "sv"})
    assert unknown.returncode == 2
    assert "Skriv 'smakom send --help' för hjälp." in unknown.stderr
    assert "Fel: Flaggan finns inte: --bogus" in unknown.stderr
    typo = smakom(["sendd"], {"SMAKOM_LANG": "sv"})
    assert typo.returncode == 2
    assert "Fel: Kommandot 'sendd' finns inte. Menade du 'send'?" in typo.stderr
    missing = smakom(["send", "--to"], {"SMAKOM_LANG": "sv"})
    assert "Fel: Flaggan '--to' behöver ett värde." in missing.stderr, missing.stderr


def test_the_send_question_is_asked_and_declined_in_swedish(newsletter: Path) -> None:
    """The confirmation takes j/N, says what it wants after a wrong answer, and a plain Enter
    declines: "Avbrutet!", exit 1, nothing sent."""
    result = smakom(
        ["send", "issues/2021-01.md", "--no-sync"],
        {
            "SMAKOM_LANG": "sv",
            "SMAKOM_SMTP_PASSWORD": "not-used",
            "SMAKOM_UNSUBSCRIBE_SECRET": "s" * 32,
        },
        cwd=newsletter,
        answer="kanske\n\n",
    )
    assert result.returncode == 1
    assert "[j/N]:" in result.stdout
    assert "Svara j eller n." in result.stderr
    assert result.stderr.rstrip().endswith("Avbrutet!")
    assert not (newsletter / "sent").exists()
