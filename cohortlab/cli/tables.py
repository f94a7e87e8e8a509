"""Small result tables printed as text, exactly as ``pandas.DataFrame.to_string(index=False)``
prints them, without importing pandas (``cohortlab simulate`` prints its waterfall and timeline
this way; importing pandas would cost more than the rest of its start-up).

:func:`text_table` handles the values those tables hold: text, integers, booleans and naive
timestamps. For anything else (a NULL, a float, a timestamp with a fraction of a second, text
that is not printable, no rows) it returns None and the caller prints through pandas, so the
output never differs from what pandas prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence


def _plain(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return True
    if isinstance(value, str):  # else pandas, through escaping.one_line_frame
        return value.isprintable()
    if isinstance(value, datetime):
        return value.tzinfo is None and value.microsecond == 0
    return False


def _column_text(values: list[Any]) -> list[str] | None:
    """The cells of one column as pandas writes them, or None when pandas is needed."""
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else type(v) for v in values}
    if len(kinds) != 1:  # pandas gives a mixed column another dtype (object, float): not handled here
        return None
    kind = kinds.pop()
    if kind is datetime:
        dates_only = all(v.hour == 0 and v.minute == 0 and v.second == 0 for v in values)
        fmt = "%Y-%m-%d" if dates_only else "%Y-%m-%d %H:%M:%S"
        return [v.strftime(fmt) for v in values]
    return [str(v) for v in values]


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str | None:
    """``rows`` (tuples in the order of ``columns``) as ``DataFrame.to_string(index=False)``
    writes them: every column right-justified to its widest cell or header (the header of a
    numeric column, integers and booleans, with one space before it), one space between columns.
    None when a value is not one that this function writes exactly like pandas."""
    if not rows or not columns or any(not isinstance(c, str) or not _plain(c) for c in columns):
        return None
    if any(len(r) != len(columns) or not all(_plain(v) for v in r) for r in rows):
        return None
    cells = []
    for i, name in enumerate(columns):
        text = _column_text([r[i] for r in rows])
        if text is None:
            return None
        header = " " + name if isinstance(rows[0][i], int) else name  # bool is an int too, and numeric to pandas
        width = max(len(header), *(len(t) for t in text))
        cells.append([header.rjust(width)] + [t.rjust(width) for t in text])
    return "\n".join(" ".join(col[j] for col in cells) for j in range(len(rows) + 1))


__all__ = ["text_table"]
