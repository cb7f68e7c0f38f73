"""Cutting an answer into sentences and telling the ones that state something from bare terms.

A key idea counts only when a sentence claims it: "an autoencoder compresses the input" states
something, "autoencoder, bottleneck, PCA" does not. Without a part-of-speech tagger, a sentence
is a claim when it has a few words and a predicate: an auxiliary, a modal or a verb that answers
to these questions use. Items of a list introduced by a claim ("They do well with:") inherit it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .language import language
from .text import STOPWORDS, Token, lemma, split_at, tokenize

_WORDS = language()  # the word lists of language.yaml

PREDICATE_LEMMAS = frozenset(lemma(w) for w in _WORDS.predicate_words)
_SUBJECT_WORDS = _WORDS.subject_words
_MIN_CLAIM_WORDS = 3
_LIST_ITEMS = 3  # "autoencoder, bottleneck, PCA": three items without a verb make a list
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u25cf\u25aa+]|\(?[a-z0-9]{1,2}[.)])\s+", re.IGNORECASE)
_SHORT_LINE_WORDS = 6
_KEYWORD_LIST_CLAIM_SHARE = 0.34


@dataclass(frozen=True)
class Sentence:
    text: str
    tokens: tuple[Token, ...]
    is_claim: bool

    @property
    def words(self) -> int:
        return sum(1 for t in self.tokens if not t.is_punct)

    @property
    def negated(self) -> bool:
        return any(t.negated for t in self.tokens)


_AUXILIARY_LEMMAS = frozenset(lemma(w) for w in _WORDS.claim_auxiliaries)
_SEGMENT_BREAKS = frozenset({",", ";", ":", "(", ")"})


def _segments(tokens: list[Token]) -> list[list[Token]]:
    words = ([t for t in part if not t.is_punct] for part in split_at(tokens, _SEGMENT_BREAKS))
    return [segment for segment in words if segment]


def _segment_predicates(segment: list[Token]) -> bool:
    """An auxiliary or a subject pronoun anywhere, or a known verb in verb position: after another word
    and not after "to" ("hard to interpret" and a list item "learn features" are not statements), in
    a segment with at least one small word ("self organizing maps" names a thing)."""
    has_small_word = any(t.is_stop for t in segment)
    for i, t in enumerate(segment):
        if t.lemma in _AUXILIARY_LEMMAS or (t.text in _SUBJECT_WORDS and i + 1 < len(segment)):
            return True
        if t.lemma not in PREDICATE_LEMMAS or len(segment) < _MIN_CLAIM_WORDS or not has_small_word:
            continue  # a two-word item ("labeled data", "self-organizing map") names a thing
        if i > 0 and segment[i - 1].text != "to":
            return True
        if i == 0 and t.text != t.lemma and t.text.endswith(("s", "ed")):
            return True  # "Needs lots of data", "Learns without labels": the subject left out
    return False


def _has_predicate(tokens: list[Token]) -> bool:
    """A statement, or one answer phrase ("To simulate parts of the product"): anything but a list of
    three or more items with no predicate."""
    words = [t for t in tokens if not t.is_punct]
    if len(words) == 2:  # "They can.", "It is."
        return words[0].text in _SUBJECT_WORDS and words[1].lemma in _AUXILIARY_LEMMAS
    if len(words) < _MIN_CLAIM_WORDS:
        return False
    segments = _segments(tokens)
    return len(segments) < _LIST_ITEMS or any(_segment_predicates(segment) for segment in segments)


def _lines_to_units(text: str) -> list[tuple[str, bool]]:
    """(text, is_list_item) units: a line break ends a unit when it is a list, a heading or a short line."""
    units: list[tuple[str, bool]] = []
    lines: list[str] = []  # the unit so far; its words are counted as it grows (counting the joined
    words, is_item = 0, False  # text again at every line took time growing with the square of its length)
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        line_words = len(line.split())
        bullet = bool(_BULLET.match(line))
        both_short = line_words <= _SHORT_LINE_WORDS and words <= _SHORT_LINE_WORDS
        ends_sentence = bool(lines) and lines[-1].endswith((".", "!", "?", ":", ";"))
        if not line or bullet or both_short or ends_sentence or not lines:
            if lines:
                units.append((" ".join(lines), is_item))
            lines, words, is_item = ([line], line_words, bullet) if line else ([], 0, False)
        else:
            lines.append(line)
            words += line_words
    if lines:
        units.append((" ".join(lines), is_item))
    return units


# "overfit / expensive / black-box" is a list. Tried only where a run of spaces begins, so each run is read once.
_LIST_SEPARATORS = re.compile(r"(?<!\s)\s+[/|\u2022\u00b7]\s+")


_SEMICOLON_ITEM_WORDS = 4


def _semicolon_list_as_commas(unit: str) -> str:
    """ "overfitting; small data; black box" is one list, not three sentences of one phrase each."""
    parts = unit.split(";")
    if len(parts) >= _LIST_ITEMS and all(len(p.split()) <= _SEMICOLON_ITEM_WORDS for p in parts):
        return unit.replace(";", ",")
    return unit


def split_sentences(text: str) -> list[Sentence]:
    """The answer's sentences, each marked as a claim or not."""
    sentences: list[Sentence] = []
    introduced = False  # inside a list that a claim ending in ":" introduced
    for unit, is_item in _lines_to_units(_LIST_SEPARATORS.sub(", ", text)):
        if not is_item:
            introduced = False
        tokens = tokenize(_semicolon_list_as_commas(unit))
        groups: dict[int, list[Token]] = {}
        for t in tokens:
            groups.setdefault(t.sentence, []).append(t)
        for group in groups.values():
            if not any(not t.is_punct for t in group):
                continue
            claim = _has_predicate(group) or (is_item and introduced)
            sentences.append(Sentence(" ".join(t.text for t in group), tuple(group), claim))
        if not is_item and unit.endswith(":") and sentences and sentences[-1].is_claim:
            introduced = True
    return sentences


_CLAUSES_FROM_WORDS = 10
_CLAUSE_BREAKS = frozenset(",;:") | _WORDS.clause_breaks


def pieces(sentence: Sentence) -> list[Sentence]:
    """The sentence and, when it joins several clauses, each clause of 3 or more words on its own: one
    idea stated inside a long sentence is closer in meaning to its clause than to the whole."""
    out = [sentence]
    if sentence.words < _CLAUSES_FROM_WORDS:
        return out
    for clause in split_at(sentence.tokens, _CLAUSE_BREAKS):
        words = [t for t in clause if not t.is_punct]
        if len(words) >= _MIN_CLAIM_WORDS and len(clause) < len(sentence.tokens) - 1:
            out.append(Sentence(" ".join(t.text for t in clause), tuple(clause), sentence.is_claim))
    return out


_OTHER_MODEL_WORDS = _WORDS.other_model_words
_OTHER_MODEL_PAIRS = _WORDS.other_model_pairs  # lemma pairs


def names_other_model(tokens: list[Token] | tuple[Token, ...]) -> bool:
    """Whether the text names a method other than a neural network (SVM, decision tree, PCA, ...)."""
    pairs = zip(("", *(t.lemma for t in tokens)), (t.lemma for t in tokens))
    return any(word in _OTHER_MODEL_WORDS or (previous, word) in _OTHER_MODEL_PAIRS for previous, word in pairs)


def about_other_model(sentence: Sentence) -> bool:
    """Whether the sentence's subject is another method ("Decision trees overfit", "PCA finds ..."):
    a claim about it is not a claim about neural networks."""
    previous = ""
    for t in sentence.tokens:
        if t.lemma in _OTHER_MODEL_WORDS or (previous, t.lemma) in _OTHER_MODEL_PAIRS:
            return True
        if t.is_punct or t.lemma in _AUXILIARY_LEMMAS or t.lemma in PREDICATE_LEMMAS:
            return False
        previous = t.lemma
    return False


_YES_WORDS = _WORDS.yes_words
_NO_WORDS = _WORDS.no_words
_NO_PHRASES = _WORDS.no_phrases  # "not really"


def verdict(text: str) -> bool | None:
    """The yes (True) or no (False) an answer opens with ("No.", "Yes, ...", "Not really."), or None.
    The word must stand alone: "No doubt they can" and "Yes and no" give no verdict."""
    words = [t.text for t in tokenize(text[:200])]
    while words and words[0] in {"-", "*", ":", "(", ")", '"', "'"}:
        words.pop(0)
    if tuple(words[:2]) in _NO_PHRASES:
        return False
    if len(words) >= 2 and words[1] in {".", ",", "!", ";", ":", "-"} or len(words) == 1:
        if words[0] in _YES_WORDS:
            return True
        if words[0] in _NO_WORDS:
            return False
    return None


def claim_share(sentences: list[Sentence]) -> float:
    """Share of the answer's words that sit in claims; 1.0 for an empty answer."""
    total = sum(s.words for s in sentences)
    return sum(s.words for s in sentences if s.is_claim) / total if total else 1.0


def is_keyword_list(sentences: list[Sentence]) -> bool:
    return sum(s.words for s in sentences) >= _MIN_CLAIM_WORDS and claim_share(sentences) < _KEYWORD_LIST_CLAIM_SHARE


_LATIN = re.compile(r"[a-zA-Z]")
# Function words of the languages students here write in besides English; a keyword list in English has none.
_FOREIGN_FUNCTION_WORDS = frozenset().union(*_WORDS.foreign_function_words.values())


def unread_language(text: str) -> str | None:
    """Why the checker cannot read this answer (not English), or None when it can."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 20:
        return None
    latin = sum(1 for c in letters if _LATIN.match(unicodedata.normalize("NFKD", c)[0]))
    if latin < 0.7 * len(letters):
        scripts = {unicodedata.name(c, "").split(" ")[0] for c in letters if not _LATIN.match(c)}
        script = next(iter(scripts - {""}), "non-Latin") if len(scripts) == 1 else "non-Latin"
        return f"written mostly in {script if len(script) <= 3 else script.title()} script"
    words = re.findall(r"[a-zA-Z\u00c0-\u024f]+", text.lower())
    english = sum(w in STOPWORDS for w in words)
    foreign = sum(w in _FOREIGN_FUNCTION_WORDS for w in words)
    if len(words) >= 8 and foreign >= 0.15 * len(words) and foreign > english:
        return "not written in English"
    return None
