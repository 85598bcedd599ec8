"""CSV that spreadsheets open safely: a text cell starting like a formula is kept as text."""

from typing import Any

# A cell starting with one of these is a formula to spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_escape(value: Any) -> str:
    """A cell value that no spreadsheet will run as a formula (a leading quote keeps it text).
    Numbers stay numbers: a negative value is data, not a formula."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text
