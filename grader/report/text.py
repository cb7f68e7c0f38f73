"""What the reports print, as rich Text: a student's string is shown exactly as written.

A str handed to rich is read as markup, so a student's "[/]" crashes the grader and "[link=...]"
puts a hyperlink in the TA's terminal; Text is never parsed. rich does pass an ESC through, so
control characters (an ANSI colour, a carriage return, a bidi override) are shown as escapes.
The reports build every line and cell with these two functions, the grader's words included.
`neutralise` is the same rule for every other place a student's string is shown: the HTML pages
apply it to every value they print (grader/report/html/shell.py), the feedback uses its character class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.text import Text

# C0 and C1 controls but newline and tab, and the marks and overrides that reorder the text shown around them.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def neutralise(value: object) -> str:
    """`value` as written, with newlines and tabs kept and every other control character written as its escape
    (\\x1b, \\u202e), so it can neither move the cursor nor reorder the text around it."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), str(value))


def first_names(names: Sequence[str], limit: int = 20) -> str:
    """'alice, bob and 3 more': the first `limit` names, then how many are left unnamed."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def literal(value: object, style: str = "") -> Text:
    """`value` as written, in `style`; newlines and tabs are kept, other control characters read like \\x1b."""
    return Text(neutralise(value), style=style)


def line(*parts: object | tuple[object, str]) -> Text:
    """Text.assemble with every part literal: a part is a value, or (value, style)."""
    return Text.assemble(*(literal(*part) if isinstance(part, tuple) else literal(part) for part in parts))
