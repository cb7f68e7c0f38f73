"""Finding a rubric's key concepts in an answer, on lemmas and with negation taken into account.

A phrasing matches when all its content lemmas occur in one sentence of the answer, in any
order, close together, and with the same polarity: "cannot be used for clustering" does not
match the phrasing "used for clustering", but does match "not used for clustering".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .rubric import Concept
from .text import NEGATION_CUES, Token, tokenize


@dataclass(frozen=True)
class Phrase:
    lemmas: tuple[str, ...]
    negated: bool


@lru_cache(maxsize=4096)
def compile_phrase(phrasing: str) -> Phrase:
    tokens = [t for t in tokenize(phrasing) if not t.is_punct]
    negated = any(t.text in NEGATION_CUES for t in tokens)
    content = tuple(dict.fromkeys(t.lemma for t in tokens if not t.is_stop))
    if not content:  # a phrasing made only of small words ("yes", "can be") matches on all of them
        content = tuple(dict.fromkeys(t.lemma for t in tokens if t.text not in NEGATION_CUES))
    return Phrase(content, negated)


def _window(n_lemmas: int) -> int:
    return max(5, 3 * n_lemmas)


def _sentences(tokens: list[Token]) -> list[list[Token]]:
    groups: dict[int, list[Token]] = {}
    for t in tokens:
        if not t.is_punct:
            groups.setdefault(t.sentence, []).append(t)
    return list(groups.values())


def _matches_in(sentence: list[Token], phrase: Phrase) -> bool:
    wanted = set(phrase.lemmas)
    width = _window(len(wanted))
    for start, first in enumerate(sentence):
        if first.lemma not in wanted:
            continue
        seen: dict[str, Token] = {}
        for tok in sentence[start : start + width]:
            if tok.lemma in wanted and tok.lemma not in seen:
                seen[tok.lemma] = tok
        if len(seen) == len(wanted) and any(t.negated for t in seen.values()) == phrase.negated:
            return True
    return False


def phrase_found(tokens: list[Token], phrasing: str) -> bool:
    phrase = compile_phrase(phrasing)
    return bool(phrase.lemmas) and any(_matches_in(s, phrase) for s in _sentences(tokens))


@dataclass(frozen=True)
class ConceptMatch:
    found: list[str]
    missing: list[str]
    found_weight: float


def match_concepts(tokens: list[Token], concepts: list[Concept]) -> ConceptMatch:
    found, missing, weight = [], [], 0.0
    for concept in concepts:
        if any(phrase_found(tokens, p) for p in concept.phrasings):
            found.append(concept.name)
            weight += concept.weight
        else:
            missing.append(concept.name)
    return ConceptMatch(found, missing, weight)
