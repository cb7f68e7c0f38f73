"""Grading one student's Exercise 2 answers: concept coverage combined with semantic similarity."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from .concepts import match_concepts
from .parse import AnswersFileError, read_answers_file
from .results import ANSWER_TEXT_LIMIT, AnswersResult, QuestionResult
from .rubric import Exercise2Rubric, QuestionRubric, ScoringSettings
from .sections import Sections, split_answers
from .semantic import semantic_scores
from .similarity import SimilarityMethod, get_method, resolve_method_name
from .text import tokenize

_COPY_SHINGLE = 6
_LAB_TEXT_LIMIT = 5_000_000


def _round_to_step(value: float, step: float) -> float:
    return round(math.floor(value / step + 0.5 + 1e-9) * step, 6)


def _words(text: str) -> list[str]:
    return [t.text for t in tokenize(text) if not t.is_punct]


def shingles(text: str, size: int) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


@lru_cache(maxsize=4)
def _lab_shingles(path: str, mtime: float) -> frozenset[tuple[str, ...]]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return frozenset(shingles(handle.read(_LAB_TEXT_LIMIT), _COPY_SHINGLE))


def _copied_share(answer: str, lab: frozenset) -> float:
    own = shingles(answer, _COPY_SHINGLE)
    return len(own & lab) / len(own) if own and lab else 0.0


@lru_cache(maxsize=8)
def _method(name: str, corpus: tuple[str, ...]) -> SimilarityMethod:
    return get_method(name, corpus=corpus)


def _rubric_corpus(rubric: Exercise2Rubric) -> tuple[str, ...]:
    texts = []
    for q in rubric.questions:
        texts += [q.prompt, q.reference, *(p for c in q.concepts for p in c.phrasings)]
    return tuple(texts)


def _combine(coverage: float | None, semantic: float, settings: ScoringSettings) -> float:
    if coverage is None:
        return semantic
    total = settings.concept_weight + settings.similarity_weight
    if total == 0:
        return coverage
    return (settings.concept_weight * coverage + settings.similarity_weight * semantic) / total


def _missing_result(q: QuestionRubric, how: str) -> QuestionResult:
    why = (
        f"No answer to question {q.number} was found in the file."
        if how != "none"
        else f"No answer to question {q.number}: the file has no recognisable question numbers (e.g. 'Q{q.number}')."
    )
    return QuestionResult(number=q.number, points=0.0, max_points=q.points, flags=["empty"], reason=why)


def score_question(
    q: QuestionRubric,
    answer: str,
    semantic: float,
    cosine: float,
    settings: ScoringSettings,
    *,
    off_topic: bool = False,
    lab: frozenset = frozenset(),
) -> QuestionResult:
    tokens = tokenize(answer)
    n_words = sum(1 for t in tokens if not t.is_punct)
    concepts = match_concepts(tokens, q.concepts)
    off_topic = off_topic and not concepts.found
    if off_topic:
        semantic = 0.0  # about something else: closeness to a real attempt's score does not apply
    wrong = match_concepts(tokens, q.misconceptions)
    coverage = min(1.0, concepts.found_weight / q.concept_weight) if q.concepts else None
    fraction = _combine(coverage, semantic, settings) - wrong.found_weight
    notes = [f"wrong claim: {name}" for name in wrong.found]
    for rule in q.partial_credit:
        if all(name in concepts.missing for name in rule.when_missing) and fraction > rule.cap:
            fraction = rule.cap
            notes.append(rule.note or f"capped: missing {', '.join(rule.when_missing)}")
    fraction = min(1.0, max(0.0, fraction))

    flags = ["off-topic"] if off_topic else []
    if n_words < settings.min_words:
        flags.append("too-short")
    if _copied_share(answer, lab) >= settings.copy_threshold:
        flags.append("copied-from-lab-text")
    disagree = coverage is not None and abs(coverage - semantic) >= settings.review_disagreement
    needs_review = disagree or bool(wrong.found and concepts.found) or "copied-from-lab-text" in flags

    points = _round_to_step(fraction * q.points, settings.points_step)
    parts = [f"{points:g}/{q.points:g}"]
    if q.concepts:
        parts.append(f"{len(concepts.found)} of {len(q.concepts)} key ideas")
    parts.append(f"closeness to the model answer {semantic:.2f}")
    if concepts.missing and q.concepts:
        parts.append("missing: " + ", ".join(concepts.missing))
    parts += notes
    if disagree:
        parts.append("key ideas and closeness disagree")
    return QuestionResult(
        number=q.number,
        points=points,
        max_points=q.points,
        concepts_found=concepts.found,
        concepts_missing=concepts.missing,
        misconceptions_found=wrong.found,
        concept_coverage=None if coverage is None else round(coverage, 3),
        similarity=round(cosine, 3),
        semantic_score=round(semantic, 3),
        flags=flags,
        needs_review=needs_review,
        reason="; ".join(parts) + ".",
        answer_text=answer[:ANSWER_TEXT_LIMIT],
    )


def score_sections(rubric: Exercise2Rubric, sections: Sections, method: SimilarityMethod) -> list[QuestionResult]:
    answered = [q for q in rubric.questions if sections.texts.get(q.number, "").strip()]
    scores, cosines, off_topic = semantic_scores(
        method,
        [sections.texts[q.number] for q in answered],
        [q.reference for q in answered],
        [q.prompt for q in answered],
    )
    by_number = {q.number: i for i, q in enumerate(answered)}
    lab = frozenset()
    if rubric.lab_text is not None and Path(rubric.lab_text).is_file():
        lab = _lab_shingles(str(rubric.lab_text), Path(rubric.lab_text).stat().st_mtime)
    results = []
    for q in rubric.questions:
        if q.number not in by_number:
            results.append(_missing_result(q, sections.how))
            continue
        i = by_number[q.number]
        result = score_question(
            q,
            sections.texts[q.number],
            float(scores[i]),
            float(cosines[i]),
            rubric.scoring,
            off_topic=bool(off_topic[i]),
            lab=lab,
        )
        if sections.how == "order":
            result.flags.append("unnumbered")
            result.needs_review = True
        results.append(result)
    return results


def _failed(rubric: Exercise2Rubric, method: str, error: str, file: str | None) -> AnswersResult:
    return AnswersResult(points=None, max_points=rubric.max_points, method=method, error=error, file=file)


def grade_answers(path: Path | None, rubric: Exercise2Rubric, *, method: str = "auto") -> AnswersResult:
    """Grade one student's written answers; a missing or unreadable file is an error result, never an exception."""
    name = resolve_method_name(method)
    if path is None or not Path(path).exists():
        return _failed(rubric, name, "no answers file", None)
    path = Path(path)
    try:
        parsed = read_answers_file(path, rubric.limits)
    except AnswersFileError as exc:
        return _failed(rubric, name, f"{path.name}: {exc}", path.name)
    except Exception as exc:  # an untrusted file must not stop the batch, whatever goes wrong
        return _failed(rubric, name, f"{path.name}: unreadable ({type(exc).__name__}: {exc})", path.name)
    sections = split_answers(parsed.text, {q.number: q.prompt for q in rubric.questions})
    questions = score_sections(rubric, sections, _method(name, _rubric_corpus(rubric)))
    return AnswersResult(
        points=round(sum(q.points for q in questions), 6),
        max_points=rubric.max_points,
        method=name,
        questions=questions,
        file=path.name,
        split_by=sections.how,
        warnings=parsed.warnings,
    )
