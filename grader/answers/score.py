"""Grading one student's Exercise 2 answers: the key ideas their claims state and their closeness to the reference."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from .calibration import HINT_CONFIRMATION, MEANING_RANGE, OFF_TOPIC_COSINE
from .claims import is_keyword_list, split_sentences, unread_language, verdict
from .concepts import match_concepts, match_ideas, question_ideas
from .confidence import NEEDS_REVIEW_P_OFF, UNSCORED, machine_p_off
from .parse import AnswersFileError, read_answers_file
from .results import ANSWER_TEXT_LIMIT, AnswersResult, QuestionResult
from .rubric import Exercise2Rubric, QuestionRubric, ScoringSettings
from .sections import Sections, assign_by_meaning, split_answers
from .semantic import semantic_scores
from .similarity import SimilarityMethod, get_method, resolve_method_name
from .text import content_lemmas, tokenize

_COPY_SHINGLE = 6
UNSCORED_FLAG = "language-not-read"  # an answer the checker does not judge at all: 0 until a TA grades it
DENIAL_WEIGHT = 0.5  # a claim that denies a key idea costs as much as a listed misconception
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


def _missing_result(q: QuestionRubric, how: str) -> QuestionResult:
    why = (
        f"No answer to question {q.number} was found in the file."
        if how != "none"
        else f"No answer to question {q.number}: the file has no recognisable question numbers (e.g. 'Q{q.number}')."
    )
    return QuestionResult(number=q.number, points=0.0, max_points=q.points, flags=["empty"], reason=why)


def _unscored(q: QuestionRubric, answer: str, flag: str, why: str) -> QuestionResult:
    """An answer the checker must not judge: 0 until a TA looks, and said so."""
    return QuestionResult(
        number=q.number,
        points=0.0,
        max_points=q.points,
        flags=[flag],
        needs_review=True,
        reason=f"0/{q.points:g} {UNSCORED}: {why}.",  # confidence.py reads it back
        answer_text=answer[:ANSWER_TEXT_LIMIT],
    )


def _far_from_question(answer: str, prompt: str, method: SimilarityMethod | None) -> bool:
    if set(content_lemmas(answer)) & set(content_lemmas(prompt)):
        return False
    return method is None or float(method.cosine_matrix([answer], [prompt])[0, 0]) < OFF_TOPIC_COSINE[method.name]


def score_question(
    q: QuestionRubric,
    answer: str,
    semantic: float,
    cosine: float,
    settings: ScoringSettings,
    *,
    method: SimilarityMethod | None = None,
    lab: frozenset = frozenset(),
    meaning_range: tuple[float, float] | None = None,
    unrelated: bool = False,
) -> QuestionResult:
    """One answer's points: the key ideas its claims state, then closeness to the reference answer,
    which counts only as far as key ideas are stated; wrong claims and the rubric's caps last.

    A question with only a reference answer is scored on closeness alone (its sentences, matched by
    meaning, explain the score); an answer `unrelated` to it (no word shared, far in meaning) that is
    as far from the question gets 0.
    """
    language = unread_language(answer)
    if language:
        return _unscored(q, answer, UNSCORED_FLAG, f"{language}; the checker reads English only")
    sentences = split_sentences(answer)
    claims = [s for s in sentences if s.is_claim] if q.concepts else sentences
    n_words = sum(s.words for s in sentences)
    ideas = question_ideas(q)
    if meaning_range is None:
        meaning_range = MEANING_RANGE[method.name] if method else (1.0, 2.0)
    match = match_ideas(claims, ideas, method, meaning_range, HINT_CONFIRMATION[method.name] if method else 0.0)
    coverage = min(1.0, match.weight(ideas) / (q.concept_weight if q.concepts else sum(i.weight for i in ideas)))
    if q.concepts:
        evidence = min(1.0, coverage / settings.evidence_gate) if settings.evidence_gate else 1.0
        total = settings.concept_weight + settings.similarity_weight
        fraction = (settings.concept_weight * coverage + settings.similarity_weight * semantic * evidence) / total
    else:  # closeness alone, or 0 when far from both the reference and the question in words and meaning
        unrelated = unrelated and _far_from_question(answer, q.prompt, method)
        fraction = 0.0 if unrelated else semantic
    wrong = match_concepts(claims, q.misconceptions)
    denied = match.denied if q.concepts else []  # closeness alone scores a question without concepts
    fraction -= wrong.found_weight + DENIAL_WEIGHT * len(denied)
    found, missing = match.found(ideas), match.missing(ideas)
    notes = [f"wrong claim: {name}" for name in wrong.found]
    notes += [f"says the opposite of: {name}" for name in denied]
    answer_verdict, reference_verdict = verdict(answer), verdict(q.reference)
    wrong_verdict = None not in (answer_verdict, reference_verdict) and answer_verdict != reference_verdict
    if wrong_verdict:  # "No." to a question whose answer is "Yes": whatever follows argues the wrong side
        fraction = 0.0
        said, expected = ("yes", "no") if answer_verdict else ("no", "yes")
        notes.append(f"answers {said} where the model answer says {expected}")
    for rule in q.partial_credit:
        if all(name in missing for name in rule.when_missing) and fraction > rule.cap:
            fraction = rule.cap
            notes.append(rule.note or f"capped: missing {', '.join(rule.when_missing)}")

    flags = []
    keyword_list = is_keyword_list(sentences)
    if keyword_list:
        flags.append("keyword-list")
        notes.append("a list of terms, not sentences that say something about them")
    elif n_words and (coverage == 0 if q.concepts else unrelated):
        flags.append("off-topic")
        notes.append("states none of the key ideas")
    if n_words < settings.min_words:
        flags.append("too-short")
    if _copied_share(answer, lab) >= settings.copy_threshold:
        flags.append("copied-from-lab-text")
        notes.append("copied from the lab text")
        fraction = 0.0
    fraction = min(1.0, max(0.0, fraction))
    disagree = q.concepts and abs(coverage - semantic) >= settings.review_disagreement and not keyword_list
    disagree = bool(disagree and coverage > 0)

    points = _round_to_step(fraction * q.points, settings.points_step)
    parts = [f"{points:g}/{q.points:g}", f"{len(found)} of {len(ideas)} key ideas stated"]
    parts.append(f"closeness to the model answer {semantic:.2f}")
    if match.by_meaning:
        parts.append("in other words: " + ", ".join(match.by_meaning))
    if missing and q.concepts:
        parts.append("missing: " + ", ".join(missing))
    parts += notes
    if disagree:
        parts.append("key ideas and closeness disagree")
    return QuestionResult(
        number=q.number,
        points=points,
        max_points=q.points,
        concepts_found=found if q.concepts else [],
        concepts_missing=missing if q.concepts else [],
        misconceptions_found=wrong.found,
        concept_coverage=round(coverage, 3),
        similarity=round(cosine, 3),
        semantic_score=round(semantic, 3),
        flags=flags,
        reason="; ".join(parts) + ".",
        answer_text=answer[:ANSWER_TEXT_LIMIT],
    )


def score_sections(rubric: Exercise2Rubric, sections: Sections, method: SimilarityMethod) -> list[QuestionResult]:
    answered = [q for q in rubric.questions if sections.texts.get(q.number, "").strip()]
    scores, cosines, unrelated = semantic_scores(
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
            method=method,
            lab=lab,
            unrelated=bool(unrelated[i]),
        )
        if sections.how == "meaning":
            result.flags.append("unnumbered")
            result.reason += " The file does not number its answers: this passage was given to the question by meaning."
        results.append(result)
    for q, result in zip(rubric.questions, results, strict=True):
        result.prompt_sha256 = q.prompt_sha256  # what a later class's review checks before learning from its decisions
    return results


def with_confidence(result: QuestionResult, method: str) -> QuestionResult:
    """The result with p_off, the calibrated chance that its points are off by 0.5 or more, and needs_review:
    p_off from NEEDS_REVIEW_P_OFF, or an answer the checker did not score (or cannot say how sure it is of)."""
    chance = machine_p_off(result.answer_text, result.points, result.max_points, result.reason, method)
    result.p_off = None if chance is None else round(chance, 3)
    unscored = UNSCORED_FLAG in result.flags
    result.needs_review = unscored or result.p_off is None or result.p_off >= NEEDS_REVIEW_P_OFF
    return result


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
    method_used = _method(name, _rubric_corpus(rubric))
    sections = split_answers(parsed.text, {q.number: q.prompt for q in rubric.questions})
    if sections.how in ("none", "order") and parsed.text.strip():
        topics = {q.number: f"{q.prompt} {q.reference}" for q in rubric.questions}
        sections = assign_by_meaning(parsed.text, topics, method_used.cosine_matrix)
    questions = [with_confidence(q, name) for q in score_sections(rubric, sections, method_used)]
    return AnswersResult(
        points=round(sum(q.points for q in questions), 6),
        max_points=rubric.max_points,
        method=name,
        questions=questions,
        file=path.name,
        split_by=sections.how,
        warnings=parsed.warnings,
    )
