"""Reading the subscriber list as people really export it: Excel, Swedish headers, mistakes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smakom_cli.audience.subscribers import (
    InvalidRow,
    Subscriber,
    find_subscriber,
    iter_recipients,
    iter_subscribers,
    read_columns,
    summarise,
)
from smakom_cli.errors import SmakomError


def write(folder: Path, text: str, encoding: str = "utf-8") -> Path:
    path = folder / "subscribers.csv"
    path.write_bytes(text.encode(encoding))
    return path


def valid(path: Path) -> list[Subscriber]:
    return [item for item in iter_subscribers(path) if isinstance(item, Subscriber)]


def invalid(path: Path) -> list[InvalidRow]:
    return [item for item in iter_subscribers(path) if isinstance(item, InvalidRow)]


def nobody_unsubscribed(_key: str) -> bool:
    return False


def test_swedish_excel_export_in_windows_1252(tmp_path: Path) -> None:
    """A semicolon-separated Windows-1252 export with Swedish headers reads å, ä and ö right."""
    path = write(
        tmp_path,
        "Namn;E-post;Kommun\r\nÅsa Öberg;asa.oberg@example.se;Malå kommun\r\n",
        encoding="cp1252",
    )
    [subscriber] = valid(path)
    assert subscriber.name == "Åsa Öberg"
    assert subscriber.email == "asa.oberg@example.se"
    assert subscriber.fields["organisation"] == "Malå kommun"
    assert read_columns(path) == ("name", "email", "organisation")


def test_utf8_with_bom(tmp_path: Path) -> None:
    """Excel's 'CSV UTF-8' starts with a BOM; it is not part of the first header."""
    path = write(tmp_path, "\ufeffemail;Namn\r\nbjorn@example.se;Björn Östlund\r\n")
    assert read_columns(path) == ("email", "name")
    assert valid(path)[0].name == "Björn Östlund"


def test_tab_separated_without_bom(tmp_path: Path) -> None:
    """A tab-separated UTF-8 file is read by counting the tabs in its header."""
    path = write(tmp_path, "email\tname\torganisation\nkarin@example.se\tKarin Öhman\tJokkmokk\n")
    assert valid(path)[0].fields["organisation"] == "Jokkmokk"


@pytest.mark.parametrize("header", ["email", " Email ", "E-post", "Epost", "e-postadress"])
def test_address_column_names(tmp_path: Path, header: str) -> None:
    """The address column may be called email or one of the Swedish names for it."""
    path = write(tmp_path, f"{header},Namn\nanna@example.se,Anna\n")
    assert valid(path)[0].email == "anna@example.se"


def test_every_column_reaches_templates(tmp_path: Path) -> None:
    """Columns beyond the known ones are kept under their stripped, lowercase header."""
    path = write(
        tmp_path, "email, Roll ,Organisation,Kommun\na@example.se,Ordförande,SmåKom,Ydre\n"
    )
    [subscriber] = valid(path)
    assert dict(subscriber.fields) == {
        "email": "a@example.se",
        "roll": "Ordförande",
        "organisation": "SmåKom",
        "kommun": "Ydre",
    }


def test_quoted_values_keep_line_numbers(tmp_path: Path) -> None:
    """A quoted value with separators and line breaks does not shift later line numbers."""
    path = write(
        tmp_path,
        "email;name;organisation\n"
        'a@example.se;"Svensson; Anna";"Sorsele kommun\nkansliet"\n'
        "anna.svensson@;Anna;\n"
        "c@example.se;Cecilia;Dorotea\n",
    )
    items = list(iter_subscribers(path))
    assert [item.line for item in items] == [2, 4, 5]
    assert isinstance(items[0], Subscriber)
    assert items[0].name == "Svensson; Anna"
    assert items[0].fields["organisation"] == "Sorsele kommun\nkansliet"


def test_blank_lines_and_trailing_separators(tmp_path: Path) -> None:
    """Blank lines, rows of bare separators and trailing separators are harmless."""
    path = write(tmp_path, "email,name,,\n\na@example.se,Anna,,\n,,,\n\nb@example.se,,\n")
    summary = summarise(path, nobody_unsubscribed)
    assert (summary.rows, summary.active, summary.invalid) == (2, 2, ())
    assert [s.name for s in valid(path)] == ["Anna", ""]


def test_duplicates_get_one_message(tmp_path: Path) -> None:
    """The same address in another case or with spaces is sent once; the first row wins."""
    path = write(
        tmp_path,
        "email;name\nanna@example.se;Första\n ANNA@Example.SE ;Andra\nbo@example.se;Bo\n",
    )
    recipients = list(iter_recipients(path, nobody_unsubscribed))
    assert [(r.key, r.name) for r in recipients] == [
        ("anna@example.se", "Första"),
        ("bo@example.se", "Bo"),
    ]
    assert summarise(path, nobody_unsubscribed).duplicates == 1


def test_invalid_addresses_reported_with_line_and_reason(tmp_path: Path) -> None:
    """A wrong or missing address is left out and reported with its line and why."""
    path = write(tmp_path, "email;name\nok@example.se;Ok\nanna.svensson@;Anna\n;Utan adress\n")
    rows = invalid(path)
    assert [(row.line, row.value) for row in rows] == [(3, "anna.svensson@"), (4, "")]
    assert rows[0].reason.startswith("'anna.svensson@' is not an e-mail address (")
    assert rows[1].reason == "the e-mail address is empty"
    assert [s.email for s in iter_recipients(path, nobody_unsubscribed)] == ["ok@example.se"]


def test_unquoted_separator_is_reported(tmp_path: Path) -> None:
    """A value with an unquoted comma shifts the columns, so the row is reported, not guessed."""
    path = write(tmp_path, "email,name\na@example.se,Svensson, Anna\n")
    [row] = invalid(path)
    assert row.line == 2
    assert "put quotes around" in row.reason


def test_internationalised_domain(tmp_path: Path) -> None:
    """An address at a domain with å, ä or ö is accepted and sent to its ASCII form."""
    path = write(tmp_path, "email\nAnna@Exämple.se\nanna@xn--exmple-cua.se\n")
    [subscriber] = list(iter_recipients(path, nobody_unsubscribed))
    assert subscriber.address == "Anna@xn--exmple-cua.se"
    assert subscriber.key == "anna@exämple.se"
    assert summarise(path, nobody_unsubscribed).duplicates == 1


def test_summary_counts_add_up(tmp_path: Path) -> None:
    """Every valid row is either sent, skipped as unsubscribed, or skipped as a duplicate."""
    path = write(
        tmp_path,
        "email\na@example.se\nb@example.se\nA@example.se\nc@example.se\nnot-an-address\n",
    )
    summary = summarise(path, lambda key: key == "b@example.se")
    assert (summary.rows, summary.valid, summary.active) == (5, 4, 2)
    assert (summary.unsubscribed, summary.duplicates, len(summary.invalid)) == (1, 1, 1)
    assert summary.valid == summary.active + summary.unsubscribed + summary.duplicates


def test_find_subscriber_ignores_case(tmp_path: Path) -> None:
    """Looking up an address finds its first row whatever the case; an unknown one is None."""
    path = write(tmp_path, "email,name\nAnna@Example.se,Anna\nanna@example.se,Dubblett\n")
    found = find_subscriber(path, " ANNA@example.se")
    assert found is not None
    assert (found.name, found.line) == ("Anna", 2)
    assert find_subscriber(path, "nobody@example.se") is None


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is an error that says what the file should contain."""
    path = write(tmp_path, "\ufeff\r\n\r\n")
    with pytest.raises(SmakomError, match=r"subscribers\.csv is empty\. It needs a header row"):
        read_columns(path)


def test_no_email_column_names_the_columns_found(tmp_path: Path) -> None:
    """Without an address column the error lists the columns that are there."""
    path = write(tmp_path, "Namn;Telefon\nAnna;070-123\n")
    with pytest.raises(SmakomError, match=r"has no e-mail column.*'Namn', 'Telefon'"):
        list(iter_subscribers(path))


def test_two_address_columns(tmp_path: Path) -> None:
    """Two columns with the same name are an error, since either could be the one meant."""
    path = write(tmp_path, "email;Email\na@example.se;b@example.se\n")
    with pytest.raises(SmakomError, match="line 1: two columns are called 'email'"):
        read_columns(path)


def test_binary_file(tmp_path: Path) -> None:
    """An Excel workbook saved under a .csv name is rejected, not read as garbage."""
    path = tmp_path / "subscribers.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00email")
    with pytest.raises(SmakomError, match="not a text CSV file"):
        read_columns(path)


def test_neither_utf8_nor_windows_1252(tmp_path: Path) -> None:
    """Bytes that are not text in either encoding are an error, never silently replaced."""
    path = tmp_path / "subscribers.csv"
    path.write_bytes(b"email\na\x81@example.se\n")
    with pytest.raises(SmakomError, match="neither UTF-8 nor Windows-1252"):
        list(iter_subscribers(path))


def test_missing_file(tmp_path: Path) -> None:
    """A missing list is an error that says where it was looked for."""
    path = tmp_path / "subscribers.csv"
    with pytest.raises(SmakomError, match=re.escape(f"The subscriber list {path} does not exist")):
        list(iter_subscribers(path))


OPEN_QUOTE = (
    'email;name;organisation\nanna@kommun.se;"Anna Å;Ragunda\n'
    "bo@kommun.se;Bo;Åre\ncarl@kommun.se;Carl;Bräcke\n"
)


def test_a_quote_that_swallows_the_rows_after_it_is_an_error(tmp_path: Path) -> None:
    """The reported list: one message to "Anna Å;Ragunda bo@kommun.se;…" is now an error
    naming line 2, where the quote opened, and the first row it would swallow."""
    path = write(tmp_path, OPEN_QUOTE)
    with pytest.raises(SmakomError, match=r"subscribers\.csv line 2: a quote mark opens") as caught:
        valid(path)
    assert "line 3 (bo@kommun.se)" in str(caught.value)


def test_a_quoted_line_break_in_a_name_stays_legal(tmp_path: Path) -> None:
    """Excel's cell with a line break (in quotes, across lines) is one value, as before."""
    path = write(
        tmp_path,
        'email;name;organisation\nanna@kommun.se;"Anna Å\nKansliet";"Ragunda\nkommun"\n'
        "bo@kommun.se;Bo;Åre\n",
    )
    [anna, bo] = valid(path)
    assert (anna.name, anna.fields["organisation"]) == ("Anna Å\nKansliet", "Ragunda\nkommun")
    assert (bo.key, bo.line) == ("bo@kommun.se", 5)


NAMES = st.text(alphabet="AaÅåÖö ;\n\"'-", max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(NAMES, min_size=1, max_size=6),
    stray=st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=2)),
)
def test_a_stray_quote_never_drops_an_address_in_silence(
    names: list[str], stray: tuple[int, int]
) -> None:
    """A list Excel wrote (names with quotes, separators, line breaks) with one quote mark
    typed at the start of any cell: every address is read, named as invalid, or it is an
    error; never a shorter list."""
    import csv
    import io
    import tempfile

    addresses = [f"person{n}@kommun.se" for n in range(len(names))]
    row, column = stray[0] % len(names), stray[1]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["email", "name", "organisation"])
    for number, (address, name) in enumerate(zip(addresses, names, strict=True)):
        if number != row:
            writer.writerow([address, name, "Kommun"])
            continue
        # The row typed by hand, with a quote mark at the start of one cell.
        cells = [address, re.sub(r'[;\n"]', "", name), "Kommun"]
        cells[column] = '"' + cells[column]
        buffer.write(";".join(cells) + "\n")
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), buffer.getvalue())
        try:
            items = list(iter_subscribers(path))
        except SmakomError as exc:
            assert "line" in str(exc)
            return
    found = " ".join(item.key if isinstance(item, Subscriber) else item.value for item in items)
    assert all(address in found for address in addresses), (buffer.getvalue(), items)
