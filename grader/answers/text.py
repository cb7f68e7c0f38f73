"""Tokenising, light lemmatising and negation scopes for short written answers.

The lemmatiser is a small inflectional normaliser: it maps "clusters", "clustering" and
"clustered" to one form. It only has to be consistent, because rubric phrasings and answers
go through the same function; it does not have to produce dictionary words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .language import language

_WORDS = language()  # the word lists of language.yaml
STOPWORDS = _WORDS.stopwords
NEGATION_CUES = _WORDS.negation_cues
# Negating "not only X but also Y" would invert a positive statement.
_NOT_NEGATING_NEXT = _WORDS.not_negating_next
# Words that close a negation scope: a contrast starts a new claim.
_SCOPE_BREAKERS = _WORDS.scope_breakers
# "and"/"or"/"so" followed by one of these starts a new clause, which the negation does not reach.
_CLAUSE_JOINERS = _WORDS.clause_joiners
_CLAUSE_STARTERS = _WORDS.clause_starters
# A comma ends a negation scope only where a new clause starts after it: "not black boxes, hard to
# interpret" stays negated, "not black boxes, they need data" and "..., and need data" do not.
_CLAUSE_AFTER_COMMA = _CLAUSE_STARTERS | _WORDS.clause_after_comma
_SCOPE_MAX_TOKENS = 12
# In "they can not", the negation also takes the auxiliary: "they can" must not match.
_AUXILIARIES = _WORDS.auxiliaries
_IRREGULAR = _WORDS.irregular

_BRITISH_ISE = re.compile(r"is(e|ed|es|ing|ation|ations)$")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[.,;:!?()\[\]]")
_SENTENCE_END = frozenset({".", "!", "?", ";"})
_PUNCT = frozenset(".,;:!?()[]")


@dataclass(frozen=True)
class Token:
    text: str
    lemma: str
    is_stop: bool
    is_punct: bool
    negated: bool
    sentence: int


def normalise(text: str) -> str:
    """Lower-case ASCII-ish text with typographic quotes and dashes made plain."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-").replace("\u2014", " - ")
    return text.lower()


def _split_word(word: str) -> list[str]:
    """Expand contractions and join hyphenated compounds ("non-linear" -> "nonlinear")."""
    if word == "cannot":
        return ["can", "not"]
    if word.endswith("n't"):
        stem = word[:-3]
        return [_IRREGULAR.get(stem, stem), "not"] if stem else ["not"]
    if "'" in word:
        word = word.split("'", 1)[0]  # "network's" -> "network", "they're" -> "they"
    return [word.replace("-", "")] if word else []


def _undouble(stem: str) -> str:
    doubled = len(stem) > 3 and stem[-1] == stem[-2]
    # "stopped" -> "stop", "labelled" -> "label", but "filled" -> "fill"
    if doubled and (stem[-1] not in "lsz" or stem.endswith(("ell", "oll"))):
        return stem[:-1]
    return stem


def _drop_final_e(stem: str) -> str:
    if stem.endswith("e") and len(stem) > 3 and not stem.endswith(("ee", "le")):
        return stem[:-1]
    return stem


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """Inflectional normal form of one lower-case word."""
    if word in _IRREGULAR:
        return _drop_final_e(_IRREGULAR[word])
    if len(word) <= 3 or not word.isalpha():
        return word
    if len(word) > 6:
        word = _BRITISH_ISE.sub(r"iz\1", word)  # "generalise" and "generalize" meet
    stem = word
    if word.endswith("ies") or word.endswith("ied"):
        stem = word[:-3] + "y"
    elif word.endswith("sses") or word.endswith(("xes", "ches", "shes", "zes")):
        stem = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        stem = word[:-1]
    elif word.endswith("ing") and len(word) >= 6:
        stem = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) >= 5:
        stem = _undouble(word[:-2])
    return _drop_final_e(stem)


def _raw_words(text: str) -> list[str]:
    words: list[str] = []
    for match in _TOKEN_RE.finditer(normalise(text)):
        piece = match.group(0)
        words.extend([piece] if piece in _PUNCT else _split_word(piece))
    return words


def _ends_scope(words: list[str], i: int) -> bool:
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if word == ",":
        return nxt in _CLAUSE_AFTER_COMMA
    if word in _PUNCT or word in _SCOPE_BREAKERS:
        return True
    return word in _CLAUSE_JOINERS and nxt in _CLAUSE_STARTERS


def _negated_positions(words: list[str]) -> set[int]:
    negated: set[int] = set()
    for i, word in enumerate(words):
        if word not in NEGATION_CUES:
            continue
        if word == "not" and i + 1 < len(words) and words[i + 1] in _NOT_NEGATING_NEXT:
            continue
        if word == "not" and i > 0 and words[i - 1] in _AUXILIARIES:
            negated.add(i - 1)
        for j in range(i + 1, min(len(words), i + 1 + _SCOPE_MAX_TOKENS)):
            if _ends_scope(words, j):
                break
            negated.add(j)
    return negated


def tokenize(text: str) -> list[Token]:
    """Tokens with lemma, stop-word and negation marks; punctuation kept as sentence/scope boundaries."""
    words = _raw_words(text)
    negated = _negated_positions(words)
    tokens: list[Token] = []
    sentence = 0
    for i, word in enumerate(words):
        is_punct = word in _PUNCT
        tokens.append(Token(word, lemma(word), word in STOPWORDS, is_punct, i in negated, sentence))
        if word in _SENTENCE_END:
            sentence += 1
    return tokens


# Words that reverse what a claim says without a negation ("needs little data" against "needs much
# data"); two of them cancel out, as two negations do: "does poorly with little data" says what "needs
# much data" says. With their counterparts ("many", "well") they make a text judge an amount or a quality.
REVERSING_LEMMAS = frozenset(lemma(w) for w in _WORDS.reversing_words)
STANCE_LEMMAS = REVERSING_LEMMAS | frozenset(lemma(w) for w in _WORDS.affirming_words)


@dataclass(frozen=True)
class Stance:
    """How a span of text says its thing: `negated` when a negation acts on it, `reversed` when an odd
    number of negations and reversing words do, `judged` when it has amount or quality words at all."""

    negated: bool
    reversed: bool
    judged: bool

    def agrees_with(self, other: Stance) -> bool:
        """Whether two texts about one thing say it the same way. Without amount or quality words on
        both sides, only their negations are compared ("needs labels" against "needs no labels")."""
        if self.judged and other.judged:
            return self.reversed == other.reversed
        return self.negated == other.negated

    def contradicts(self, other: Stance) -> bool:
        """Whether this text surely says the opposite of `other`, a statement of the idea: only when both
        or neither have amount or quality words ("performs poorly with little data" against "does not
        extrapolate" is unsure), and only when this text is the one turned around ("a network can be
        trained with data" does not deny "it learns from the data alone, with no labels")."""
        if self.judged != other.judged or self.agrees_with(other):
            return False
        return self.reversed if self.judged else self.negated


def split_at(tokens: Sequence[Token], breaks: frozenset[str]) -> list[list[Token]]:
    """The runs of tokens between the break words (the breaks themselves dropped)."""
    parts: list[list[Token]] = [[]]
    for t in tokens:
        if t.text in breaks:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def reverses(tokens: Sequence[Token], negated: bool) -> bool:
    """Whether a negation (`negated`) and the reversing words among the tokens, counted together, are odd."""
    return negated != (sum(t.lemma in REVERSING_LEMMAS for t in tokens) % 2 == 1)


_STANCE_CLAUSE_BREAKS = frozenset(",;:") | _WORDS.stance_clause_breaks


def stance(tokens: Sequence[Token]) -> Stance:
    """Each clause's negations and reversing words are counted on their own; a text whose clauses
    disagree ("poorly with little data, ..., when computing power is limited") is not judged."""
    parities = {
        reverses(clause, any(t.negated for t in clause))
        for clause in split_at(tokens, _STANCE_CLAUSE_BREAKS)
        if any(t.lemma in STANCE_LEMMAS for t in clause)
    }
    negated = any(t.negated for t in tokens)
    judged = len(parities) == 1
    return Stance(negated=negated, reversed=parities.pop() if judged else negated, judged=judged)


def content_lemmas(text: str) -> list[str]:
    """Lemmas of the content words, in order (no stop words, no punctuation)."""
    return [t.lemma for t in tokenize(text) if not t.is_stop and not t.is_punct]


def word_count(text: str) -> int:
    return sum(1 for t in tokenize(text) if not t.is_punct)
