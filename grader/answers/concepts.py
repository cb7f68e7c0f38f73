"""Finding a rubric's key concepts in an answer, on lemmas and with negation taken into account.

A phrasing matches when all its content lemmas occur in one sentence of the answer, in any
order, close together, and with the same polarity: "cannot be used for clustering" does not
match the phrasing "used for clustering", but does match "not used for clustering"; "works
poorly on small data" does not match "works on small data" (see text.REVERSING_LEMMAS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .claims import Sentence, about_other_model, names_other_model, pieces
from .language import language
from .rubric import Concept, QuestionRubric
from .similarity import SimilarityMethod
from .text import NEGATION_CUES, STANCE_LEMMAS, Stance, Token, reverses, stance, tokenize

_ARTICLES = language().articles


@dataclass(frozen=True)
class Phrase:
    lemmas: tuple[str, ...]
    reversed: bool  # an odd number of negations and reversing words: "not a black box", "need little data"


@lru_cache(maxsize=4096)
def compile_phrase(phrasing: str) -> Phrase:
    tokens = [t for t in tokenize(phrasing) if not t.is_punct]
    negated = any(t.text in NEGATION_CUES for t in tokens)
    content = tuple(dict.fromkeys(t.lemma for t in tokens if not t.is_stop or t.lemma in STANCE_LEMMAS))
    if len(content) < 2:  # "can be used", "they can": one content word is too little, the small words count too
        content = tuple(dict.fromkeys(t.lemma for t in tokens if t.text not in NEGATION_CUES | _ARTICLES))
    return Phrase(content, reverses(tokens, negated))


def _window(n_lemmas: int) -> int:
    return max(5, 3 * n_lemmas)


def _sentences(tokens: list[Token]) -> list[list[Token]]:
    groups: dict[int, list[Token]] = {}
    for t in tokens:
        if not t.is_punct:
            groups.setdefault(t.sentence, []).append(t)
    return list(groups.values())


def _polarities_in(sentence: list[Token], phrase: Phrase, strict: bool) -> set[bool]:
    """For each place the sentence holds the phrasing's lemmas: True when it says it the phrasing's way,
    False when the other way round ("they are not black boxes" for "black box")."""
    wanted = set(phrase.lemmas)
    width = len(wanted) + 2 if strict else _window(len(wanted))
    found: set[bool] = set()
    for start, first in enumerate(sentence):
        if first.lemma not in wanted:
            continue
        seen: dict[str, int] = {}  # lemma -> its first position in the window
        for i in range(start, min(len(sentence), start + width)):
            if sentence[i].lemma in wanted:
                seen.setdefault(sentence[i].lemma, i)
        if len(seen) < len(wanted):
            continue
        positions = sorted(seen.values())
        if strict and [sentence[i].lemma for i in positions] != list(phrase.lemmas):
            continue
        span = sentence[positions[0] : positions[-1] + 1]  # "work poorly on small data" is not "work on small data"
        negated = any(sentence[i].negated for i in positions)
        found.add(reverses(span, negated) == phrase.reversed)
    return found


def _polarities(tokens: list[Token], phrasing: str, strict: bool = False) -> set[bool]:
    phrase = compile_phrase(phrasing)
    if not phrase.lemmas:
        return set()
    return set().union(*(_polarities_in(s, phrase, strict) for s in _sentences(tokens)))


def phrase_found(tokens: list[Token], phrasing: str, strict: bool = False) -> bool:
    """Whether one sentence holds the phrasing's lemmas close together with its polarity; `strict`:
    in the phrasing's order and nearly adjacent (for wrong claims, where a loose match accuses)."""
    return True in _polarities(tokens, phrasing, strict)


def phrase_denied(tokens: list[Token], phrasing: str) -> bool:
    """Whether the text holds a plain phrasing only the other way round ("cannot be used" for "can be
    used"). A phrasing that is itself negated is not denied by its words alone: "the example itself is
    the target" does not deny "no target"."""
    return _denies(_polarities(tokens, phrasing), phrasing)


def _denies(polarities: set[bool], phrasing: str) -> bool:
    return polarities == {False} and not compile_phrase(phrasing).reversed


@dataclass(frozen=True)
class ConceptMatch:
    found: list[str]
    missing: list[str]
    found_weight: float


def match_concepts(claims: list[Sentence], concepts: list[Concept]) -> ConceptMatch:
    """Concepts that one of the claims states in one of their phrasings (used for misconceptions)."""
    found, missing, weight = [], [], 0.0
    for concept in concepts:
        if any(phrase_found(list(c.tokens), p, strict=True) for c in claims for p in concept.phrasings):
            found.append(concept.name)
            weight += concept.weight
        else:
            missing.append(concept.name)
    return ConceptMatch(found, missing, weight)


# --- key ideas: the rubric's concepts, or the reference answer's own sentences -----------------------------------

_REFERENCE_CLAUSE = re.compile(r"[^.;!?]+[.;!?]?")


@dataclass(frozen=True)
class Idea:
    """One thing a good answer states: found by its phrasings (hints) or by the meaning of its texts."""

    name: str
    weight: float
    phrasings: tuple[str, ...]
    meanings: tuple[str, ...]  # its own statement first, then the reference sentences that state it

    @property
    def names_other_model(self) -> bool:
        """Its own texts name another method (not the reference's), so claims about one may state it."""
        return any(names_other_model(tokenize(text)) for text in (*self.phrasings, self.meanings[0]))


def reference_clauses(reference: str) -> list[str]:
    return [c.strip() for c in _REFERENCE_CLAUSE.findall(reference) if len(c.split()) >= 3]


def question_ideas(question: QuestionRubric) -> list[Idea]:
    """The rubric's concepts, each with the reference sentences that state it; without concepts, the
    reference answer's sentences are the ideas, found by meaning alone."""
    clauses = reference_clauses(question.reference)
    if not question.concepts:
        return [Idea(clause, 1.0, (), (clause,)) for clause in clauses] or [
            Idea(question.reference, 1.0, (), (question.reference,))
        ]
    ideas = []
    clause_tokens = [(clause, tokenize(clause)) for clause in clauses]
    for concept in question.concepts:
        stating = [c for c, tokens in clause_tokens if any(phrase_found(tokens, p) for p in concept.phrasings)]
        meanings = (concept.description or concept.name, *stating)
        ideas.append(Idea(concept.name, concept.weight, tuple(concept.phrasings), tuple(meanings)))
    return ideas


@dataclass(frozen=True)
class IdeaMatch:
    strengths: dict[str, float]  # idea name -> how surely a claim states it, 0 to 1
    by_meaning: list[str]  # ideas found by meaning only, not by a phrasing
    denied: list[str]  # ideas a claim contradicts: as close in meaning, opposite polarity

    def found(self, ideas: list[Idea]) -> list[str]:
        return [i.name for i in ideas if self.strengths[i.name] >= FOUND_STRENGTH]

    def missing(self, ideas: list[Idea]) -> list[str]:
        return [i.name for i in ideas if self.strengths[i.name] < FOUND_STRENGTH]

    def weight(self, ideas: list[Idea]) -> float:
        return sum(i.weight * self.strengths[i.name] for i in ideas)


FOUND_STRENGTH = 0.5
UNCONFIRMED_HINT = 0.25
COMPETING_MARGIN = 0.05
SHARED_MEANING_DISCOUNT = 0.05  # chosen on half of the lab's graded answers, as calibration.MEANING_RANGE


def _only_the_phrasing(claim: Sentence, found: list[str]) -> bool:
    """Whether the claim says nothing but one of the phrasings `found` in it ("They can.", "Yes, they
    can."): too short for its meaning to be read, so the phrasing alone confirms it."""
    own = {t.lemma for t in claim.tokens if not t.is_stop and not t.is_punct}
    return any(own <= set(compile_phrase(p).lemmas) for p in found)


@lru_cache(maxsize=1024)
def _text_stance(text: str) -> Stance:
    return stance(tokenize(text))


def match_ideas(
    claims: list[Sentence],
    ideas: list[Idea],
    method: SimilarityMethod | None,
    meaning_range: tuple[float, float],
    hint_confirmation: float = 0.0,
) -> IdeaMatch:
    """How surely the answer's claims state each idea: a phrasing in a claim is sure; otherwise the
    closest claim of the same polarity as one of the idea's texts, mapped from meaning_range to 0..1.
    A claim whose subject is another method ("decision trees overfit") only counts for ideas that
    name other methods. A claim as close as the range's top but of the opposite polarity denies it.
    A phrasing counts in full when its claim is at least `hint_confirmation` close to the idea."""
    strengths: dict[str, float] = {}
    by_meaning: list[str] = []
    denied: list[str] = []
    units, other = [], []
    for claim in claims:
        claim_pieces = pieces(claim)
        units += claim_pieces
        other += [about_other_model(claim)] * len(claim_pieces)  # "SVMs are strong because they ..."
    meanings = sorted({m for idea in ideas for m in idea.meanings})
    cosines = method.cosine_matrix([u.text for u in units], meanings) if method and units and meanings else None
    stating = cosines
    if cosines is not None:
        # A reference sentence that states several ideas is as close to a claim of one as of the others:
        # it counts a little less, so the idea's own texts decide which one the claim states.
        shared_by = [sum(m in idea.meanings for idea in ideas) for m in meanings]
        stating = cosines - SHARED_MEANING_DISCOUNT * (np.array(shared_by) - 1)
    meaning_stance = {m: _text_stance(m) for m in meanings}  # the rubric's texts: the same for every answer
    unit_stance = [stance(u.tokens) for u in units]
    low, high = meaning_range
    columns = {idea.name: [j for j, m in enumerate(meanings) if m in idea.meanings] for idea in ideas}
    closest: dict[tuple[int, str], float] = {}  # (unit, idea) -> the unit's cosine to the idea's closest text
    if cosines is not None:
        for idea in ideas:
            for i in range(len(units)):
                closest[i, idea.name] = float(stating[i, columns[idea.name]].max())
    unit_best = [max((closest.get((i, idea.name), 0.0) for idea in ideas), default=0.0) for i in range(len(units))]
    for idea in ideas:
        names_other = idea.names_other_model
        usable = [i for i in range(len(units)) if names_other or not other[i]]
        said = {i: {p: _polarities(list(units[i].tokens), p) for p in idea.phrasings} for i in usable}
        found_in = {i: [p for p, polarities in said[i].items() if True in polarities] for i in usable}
        hits = [i for i in usable if found_in[i]]
        if hits and (
            cosines is None
            or max(cosines[i, j] for i in hits for j in columns[idea.name]) >= hint_confirmation
            or any(_only_the_phrasing(units[i], found_in[i]) for i in hits)
        ):
            strengths[idea.name] = 1.0
            continue
        # A phrasing in a claim about something else ("LeNet has two convolution layers") is half a sign.
        best, against = (UNCONFIRMED_HINT if hits else 0.0), 0.0
        if cosines is not None:
            for j in columns[idea.name]:
                m = meanings[j]
                for i in usable:
                    if closest[i, idea.name] < unit_best[i] - COMPETING_MARGIN:
                        continue  # a claim states the idea it is closest to, not every related one
                    closeness = (float(stating[i, j]) - low) / (high - low)
                    if unit_stance[i].agrees_with(meaning_stance[m]):
                        best = max(best, closeness)
                    elif unit_stance[i].contradicts(meaning_stance[m]):
                        against = max(against, closeness)
        if not hits and any(_denies(polarities, p) for i in usable for p, polarities in said[i].items()):
            against = 1.0
        strengths[idea.name] = min(1.0, max(0.0, best))
        if strengths[idea.name] >= FOUND_STRENGTH:
            by_meaning.append(idea.name)
        elif against >= 1.0:
            denied.append(idea.name)
    return IdeaMatch(strengths, by_meaning, denied)
