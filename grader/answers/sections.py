"""Cutting an answers document into one text per question.

Students number their answers in many ways: "1.", "Q1", "Question 1:", "## 1", "**Q1**",
auto-numbered Word lists, or by repeating each question. We look for explicit markers first,
then for the repeated question texts, then for exactly one paragraph per question.

The text is a student's, and may be built to stall a parser: every expression here takes time in
proportion to its length (no two neighbouring repeats can trade characters; line_markers.py reads the
markers without one), and tests/test_answers_deadline.py holds them to it with 200,000-character files.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .line_markers import read_line_markers
from .text import content_lemmas, normalise

# "a)", "(b)", "c." at the start of a line: questions 1, 2, 3 when the file uses letters throughout.
_LETTER_MARKER = re.compile(r"^[ \t]*[#*_]*[(\[]?(?P<letter>[a-h])[).\]]\s+", re.IGNORECASE | re.MULTILINE)
# "Q2:" or "Question 2." after the end of a sentence, for text where line breaks were lost. Tried only right
# after a ".", "!" or "?", so each run of spaces is read once.
_INLINE_MARKER = re.compile(r"(?<=[.!?])\s+(?P<word>q|question)\s*(?P<num>\d{1,2})\s*[.:)]", re.IGNORECASE)
# "Answer:", "**Ans.**": the spaces and the emphasis around it as runs that cannot trade characters.
_ANSWER_LABEL = re.compile(r"^\s*[*_]*(?:answer|ans|a)\s*(?:[*_]+\s*)?[:.\-]\s*[*_]*", re.IGNORECASE)
_LEFTOVER_DECORATION = re.compile(r"^[\s*_#:.)\]]+")  # the "**" closing "**Q1.**", a ":" after "Q1"
_SENTENCE = re.compile(r"[^.?!\n]*[.?!]+|[^.?!\n]+")
_SPACES = re.compile(r"\s*")


@dataclass(frozen=True)
class _Marker:
    start: int  # where the marker begins
    end: int  # where the answer text after it begins
    number: int
    strong: bool


@dataclass
class Sections:
    texts: dict[int, str] = field(default_factory=dict)
    how: str = "none"  # "markers", "questions", "order", "whole", "meaning" or "none"


def _line_markers(text: str) -> list[_Marker]:
    markers = []
    found = read_line_markers(text)
    shared_sections = {s for s, count in Counter(m.section for m in found if m.section).items() if count >= 2}
    for m in found:
        if m.section:
            if m.section in shared_sections:  # "8.2.1" ... "8.2.4"; a lone "2.5" is a number
                markers.append(_Marker(m.start, m.end, m.number, True))
            continue
        strong = bool(m.word) or "#" in m.decoration or "*" in m.decoration
        if not strong and not m.closed:
            continue  # "2 layers are enough" is not a marker, "2.", "2)" and "2 - " are
        if m.word and m.word.lower() == "a" and not strong:
            continue
        markers.append(_Marker(m.start, m.end, m.number, strong))
    for m in _INLINE_MARKER.finditer(text):
        markers.append(_Marker(m.start("word"), m.end(), int(m.group("num")), True))
    return sorted(markers, key=lambda k: k.start)


def _letter_markers(text: str, numbers: set[int]) -> list[_Marker]:
    found = [
        _Marker(m.start(), m.end(), ord(m.group("letter").lower()) - ord("a") + 1, True)
        for m in _LETTER_MARKER.finditer(text)
    ]
    chosen = _increasing([m for m in found if m.number in numbers])
    return chosen if len(chosen) >= min(3, len(numbers)) and chosen[0].number == 1 else []


def _choose_markers(markers: list[_Marker], numbers: set[int]) -> list[_Marker]:
    markers = [m for m in markers if m.number in numbers]
    strong = [m for m in markers if m.strong]
    if len({m.number for m in strong}) >= min(2, len(numbers)):
        in_order, each_once = _increasing(strong), _first_of_each(strong)
        return each_once if len(each_once) > len(in_order) else in_order  # "Question 3" written before "Question 2"
    # Plain "1." "2." markers: an answer may hold its own numbered list, so each question's marker is
    # the last one before the next question's, found from the end; question 1 starts at its first.
    chosen: list[_Marker] = []
    limit = None
    for number in sorted({m.number for m in markers}, reverse=True):
        candidates = [m for m in markers if m.number == number and (limit is None or m.start < limit)]
        if not candidates:
            continue
        pick = candidates[0] if number == min(m.number for m in markers) else candidates[-1]
        chosen.insert(0, pick)
        limit = pick.start
    return chosen


def _increasing(markers: list[_Marker]) -> list[_Marker]:
    chosen: list[_Marker] = []
    for m in markers:
        if not chosen or m.number > chosen[-1].number:
            chosen.append(m)
    return chosen


def _first_of_each(markers: list[_Marker]) -> list[_Marker]:
    first: dict[int, _Marker] = {}
    for m in markers:
        first.setdefault(m.number, m)
    return sorted(first.values(), key=lambda m: m.start)


def _prompt_lines(text: str, prompts: dict[int, str]) -> list[_Marker]:
    """Lines that repeat one question's text, as markers."""
    prompt_lemmas = {n: set(content_lemmas(p)) for n, p in prompts.items()}
    found: list[_Marker] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        lemmas = set() if line.isspace() else set(content_lemmas(line))  # a file may hold 200,000 blank lines
        if lemmas:
            scores = {n: len(lemmas & pl) / len(pl) for n, pl in prompt_lemmas.items() if pl}
            ranked = sorted(scores.items(), key=lambda kv: -kv[1])
            best, score = ranked[0]
            runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
            mostly_prompt = len(lemmas & prompt_lemmas[best]) >= 0.6 * len(lemmas)
            if score >= 0.6 and score > runner_up and mostly_prompt:
                found.append(_Marker(offset, offset + len(line), best, True))
        offset += len(line)
    return _increasing(found)


def _strip_repeated_prompt(answer: str, prompt: str) -> str:
    """Drop leading sentences that only repeat the question, and an "Answer:" label."""
    prompt_lemmas = set(content_lemmas(prompt))
    prompt_words = set(re.findall(r"[a-z]+", normalise(prompt)))
    rest = _LEFTOVER_DECORATION.sub("", answer)
    start = 0  # where the answer begins once the repeated sentences are left out (no copy per sentence)
    while start < len(rest):
        m = _SENTENCE.match(rest, start)
        if not m or not m.group(0).strip():
            break
        sentence = m.group(0)
        lemmas = content_lemmas(sentence)
        words = set(re.findall(r"[a-z]+", normalise(sentence)))
        if lemmas:
            shared = len(set(lemmas) & prompt_lemmas)
            mostly_prompt = sum(lemma in prompt_lemmas for lemma in lemmas) >= 0.7 * len(lemmas)
            repeats = mostly_prompt and shared >= max(2, 0.5 * len(prompt_lemmas))
        else:
            repeats = bool(words) and words <= prompt_words
        if not repeats:
            break
        start = _SPACES.match(rest, m.end()).end()
    rest = rest[start:]
    return _ANSWER_LABEL.sub("", rest, count=1).strip()


def _cut(text: str, markers: list[_Marker]) -> dict[int, str]:
    out = {}
    for i, m in enumerate(markers):
        stop = markers[i + 1].start if i + 1 < len(markers) else len(text)
        out[m.number] = text[m.end : stop]
    return out


def split_answers(text: str, prompts: dict[int, str]) -> Sections:
    numbers = set(prompts)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw: dict[int, str] = {}
    how = "none"
    markers = _choose_markers(_line_markers(text), numbers)
    letters = _letter_markers(text, numbers) if len(markers) < len(numbers) else []
    if len(letters) > len(markers):
        markers = letters
    if len(markers) >= min(2, len(numbers)):
        raw, how = _cut(text, markers), "markers"
    else:
        repeated = _prompt_lines(text, prompts)
        if len(repeated) >= min(2, len(numbers)):
            raw, how = _cut(text, repeated), "questions"
        else:
            paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
            if len(paragraphs) == len(numbers) and len(numbers) > 1:
                raw, how = dict(zip(sorted(numbers), paragraphs, strict=True)), "order"
            elif len(numbers) == 1 and text.strip():
                raw, how = {next(iter(numbers)): text}, "whole"
    texts = {n: _strip_repeated_prompt(body, prompts[n]) for n, body in raw.items()}
    return Sections({n: t for n, t in texts.items() if t}, how)


_PASSAGE_LIMIT = 200


def passages(text: str) -> list[str]:
    """Paragraphs, or the sentences of a text written as one block."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) <= 1:
        paragraphs = [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]
    return paragraphs[:_PASSAGE_LIMIT]


def assign_by_meaning(text: str, topics: dict[int, str], cosine_matrix) -> Sections:
    """Give each passage to the question whose topic (prompt and reference answer) it is closest to.

    For files whose answers cannot be told apart by numbers: the result is always flagged for review.
    `cosine_matrix(passages, topics)` is the similarity method's.
    """
    found = passages(text)
    if not found:
        return Sections({}, "none")
    numbers = sorted(topics)
    closeness = cosine_matrix(found, [topics[n] for n in numbers])
    texts: dict[int, list[str]] = {}
    for passage, row in zip(found, closeness, strict=True):
        texts.setdefault(numbers[int(row.argmax())], []).append(passage)
    return Sections({n: "\n\n".join(parts) for n, parts in texts.items()}, "meaning")
