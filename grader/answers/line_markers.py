"""Question markers at the start of a line ("1.", "Q1:", "## Question 2", "**Ex2-Q3**", "8.2.1"), read in one pass.

What counts as a marker, in the words of the regular expression it replaces (IGNORECASE, MULTILINE):

    ^[ \\t]*(?P<deco>[#>*_\\s(\\[]*)(?:ex(?:ercise)?\\s*\\d{1,2}\\s*[-_.:/]?\\s*)?
    (?:(?P<word>q(?:uestion)?|ques|answer|ans|a|task)\\s*[.:#-]?\\s*)?
    (?P<section>(?:\\d{1,2}\\.){1,3})?(?P<num>\\d{1,2})
    (?P<term>\\s*[.):\\]]|\\*\\*|\\s*$|\\s*[-\\u2013\\u2014]\\s|\\s+(?=\\S))

Python's `re` backtracks through the neighbouring runs of spaces in that pattern, and tries it again at
every line start inside a run of blank lines: a student's file of spaces or newlines took time that grew
with the square of its length, holding the GIL. The reader below finds the same markers (the tests hold
it to the expression on many short texts) in time that grows with the length: every run of spaces is
measured once, and a decoration that runs over several lines is read once for all of them. Only a few
characters around each run are ever tried two ways (one or two digits, a longer or shorter word).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_DECORATION = re.compile(r"[#>*_\s(\[]*")  # heading, quote, bold and bracket symbols, spaces and blank lines
_SPACES = re.compile(r"\s*")
_DIGIT = re.compile(r"\d")
_WHITESPACE = re.compile(r"\s")
# In the order the expression's alternation tries them: "Question" before "Q" before "Ques".
_WORDS = tuple(re.compile(word, re.IGNORECASE) for word in ("question", "q", "ques", "answer", "ans", "a", "task"))
_EXERCISE_WORDS = tuple(re.compile(word, re.IGNORECASE) for word in ("exercise", "ex"))
_AFTER_EXERCISE = "-_.:/"  # "Ex2-Q1", "Exercise 2: 1"
_AFTER_WORD = ".:#-"  # "Q.1", "Question #1"
_CLOSERS = ".):]"
_DASHES = "-\u2013\u2014"


@dataclass(frozen=True)
class LineMarker:
    start: int  # the line start it was read from (blank lines before it included)
    end: int  # where the text after it begins
    decoration: str  # the symbols and spaces before it
    word: str | None  # "Question", "Q", "Answer", ... as written
    section: str | None  # "8.2." of "8.2.1"
    number: int
    closed: bool  # followed by ".", ")", ":", "]" or a dash and a space: "2." is a marker, "2 layers" is not


class _Text:
    """The text with the end of each run of spaces remembered, so that no run is measured twice."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self._space_ends: dict[int, int] = {}
        self._line_ends: dict[int, int] = {}

    def after_spaces(self, i: int) -> int:
        end = self._space_ends.get(i)
        if end is None:
            end = self._space_ends[i] = _SPACES.match(self.text, i).end()
        return end

    def line_end_in_spaces(self, i: int) -> int:
        """The last line end inside the run of spaces at i, or -1."""
        end = self._line_ends.get(i)
        if end is None:
            end = self._line_ends[i] = self.text.rfind("\n", i, self.after_spaces(i))
        return end

    def digit_ends(self, i: int) -> tuple[int, ...]:
        """Where a number of one or two digits at i may end, two digits first."""
        if not _DIGIT.match(self.text, i):
            return ()
        return (i + 2, i + 1) if _DIGIT.match(self.text, i + 1) else (i + 1,)

    def char_in(self, i: int, chars: str) -> bool:
        return i < self.size and self.text[i] in chars


def _exercise_ends(t: _Text, i: int) -> Iterator[int]:
    """Where an "Ex2 -" or "Exercise 2:" prefix at i may end. A separator after the spaces is always taken: what
    follows a prefix starts with a letter or a digit, so stopping before the separator cannot lead to a marker."""
    for word in _EXERCISE_WORDS:
        found = word.match(t.text, i)
        if not found:
            continue
        for end in t.digit_ends(t.after_spaces(found.end())):
            end = t.after_spaces(end)
            yield t.after_spaces(end + 1) if t.char_in(end, _AFTER_EXERCISE) else end


def _word_ends(t: _Text, i: int) -> Iterator[tuple[str, int]]:
    """("Question", where its number may start) for each marker word at i."""
    for word in _WORDS:
        found = word.match(t.text, i)
        if not found:
            continue
        end = t.after_spaces(found.end())
        yield found.group(0), t.after_spaces(end + 1) if t.char_in(end, _AFTER_WORD) else end


def _section_ends(t: _Text, i: int) -> list[int]:
    """Ends of a section number ("8.", "8.2.", "8.2.1.") at i, longest first. Each part ("12." or "2.") can be
    read one way only: a second digit rules out a dot right after the first."""
    ends: list[int] = []
    while len(ends) < 3:
        dotted = [end for end in t.digit_ends(i) if t.char_in(end, ".")]
        if not dotted:
            break
        i = dotted[0] + 1
        ends.append(i)
    return ends[::-1]


def _term(t: _Text, i: int) -> tuple[int, bool] | None:
    """(end, closed) of what must follow the number at i, tried in the expression's order."""
    spaces_end = t.after_spaces(i)
    if t.char_in(spaces_end, _CLOSERS):
        return spaces_end + 1, True
    if t.text.startswith("**", i):
        return i + 2, False
    if spaces_end == t.size:  # the end of the text
        return spaces_end, False
    line_end = t.line_end_in_spaces(i)  # the end of the line, when the spaces reach past it
    if line_end >= 0:
        return line_end, False
    if t.char_in(spaces_end, _DASHES) and _WHITESPACE.match(t.text, spaces_end + 1):
        return spaces_end + 2, True
    if spaces_end > i:  # spaces, then the text goes on
        return spaces_end, False
    return None


def _marker_after(t: _Text, start: int, i: int) -> LineMarker | None:
    """The marker whose decoration ends at i, if any: the expression's choices in the order it tries them."""
    for after_exercise in (*_exercise_ends(t, i), i):
        for word, after_word in (*_word_ends(t, after_exercise), (None, after_exercise)):
            for section_end in (*_section_ends(t, after_word), None):
                number_start = after_word if section_end is None else section_end
                for number_end in t.digit_ends(number_start):
                    term = _term(t, number_end)
                    if term is None:
                        continue
                    section = t.text[after_word:section_end] if section_end is not None else None
                    number = int(t.text[number_start:number_end])
                    return LineMarker(start, term[0], t.text[start:i], word, section, number, term[1])
    return None


def read_line_markers(text: str) -> list[LineMarker]:
    """Every line marker in the text, in order; the text after a marker is searched from its end on."""
    t = _Text(text)
    found: list[LineMarker] = []
    start = 0
    while True:
        decoration_end = _DECORATION.match(text, start).end()
        marker = _marker_after(t, start, decoration_end)
        if marker is not None:
            found.append(marker)
            if text[marker.end - 1] == "\n":  # the marker ends at a line start
                start = marker.end
                continue
            resume = marker.end
        else:
            # A line start inside this decoration (blank lines, "**" on a line of its own) has the same
            # decoration end, so no marker either: the next try is the line after it.
            resume = decoration_end
        line_end = text.find("\n", resume)
        if line_end < 0:
            return found
        start = line_end + 1
