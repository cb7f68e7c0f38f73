"""Calibrated semantic score: how well an answer matches its reference, in [0, 1].

A few features of the (answer, reference) pair go through one global linear map per method,
learned on the development part of a public short-answer data set (see bench.py --fit). The
map is global: nothing is fitted per question, so it applies to questions it has never seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .calibration import CALIBRATION, OFF_TOPIC_COSINE
from .similarity import SimilarityMethod
from .text import content_lemmas, word_count

FEATURES = ("cosine", "recall", "precision", "lexical_recall", "lexical_precision")


def lexical_overlap(answer: str, reference: str, question: str) -> tuple[float, float]:
    """(share of the reference's own content lemmas in the answer, share of the answer's in the reference)."""
    q = set(content_lemmas(question))
    ref = [r for r in dict.fromkeys(content_lemmas(reference)) if r not in q] or list(
        dict.fromkeys(content_lemmas(reference))
    )
    ans = {a for a in content_lemmas(answer) if a not in q}
    recall = sum(r in ans for r in ref) / len(ref) if ref else 0.0
    ref_set = set(ref)
    precision = sum(a in ref_set for a in ans) / len(ans) if ans else 0.0
    return recall, precision


def feature_matrix(
    method: SimilarityMethod, answers: Sequence[str], references: Sequence[str], questions: Sequence[str]
) -> np.ndarray:
    pairs = method.pair_features(answers, references, questions)
    rows = []
    for pair, answer, reference, question in zip(pairs, answers, references, questions, strict=True):
        rows.append([pair.cosine, pair.recall, pair.precision, *lexical_overlap(answer, reference, question)])
    return np.array(rows, dtype=float).reshape(len(rows), len(FEATURES))


def calibrate(method_name: str, features: np.ndarray) -> np.ndarray:
    intercept, *weights = CALIBRATION[method_name]
    return np.clip(intercept + features @ np.array(weights), 0.0, 1.0)


def score_features(method_name: str, features: np.ndarray, answers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(calibrated scores in [0, 1], off-topic mask). Answers without a single word score 0.

    Off-topic means no content word of the reference and a cosine below the method's line. The
    calibration was learned on real attempts, so it does not zero these itself (short paraphrases
    share no words either); the Exercise 2 scorer does, when no key idea was found either.
    """
    scores = calibrate(method_name, features)
    empty = np.array([word_count(a) == 0 for a in answers], dtype=bool)
    no_shared_words = features[:, FEATURES.index("lexical_recall")] == 0
    off_topic = ~empty & no_shared_words & (features[:, 0] < OFF_TOPIC_COSINE[method_name])
    scores[empty] = 0.0
    return scores, off_topic


def semantic_scores(
    method: SimilarityMethod, answers: Sequence[str], references: Sequence[str], questions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrated scores, raw cosine similarities, off-topic mask), one per answer."""
    if not answers:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    features = feature_matrix(method, answers, references, questions)
    scores, off_topic = score_features(method.name, features, answers)
    return scores, features[:, 0], off_topic
