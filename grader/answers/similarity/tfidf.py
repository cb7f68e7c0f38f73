"""TF-IDF over lemmas: the fallback that needs nothing beyond the standard library and numpy."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..text import content_lemmas
from .base import PairFeatures, SimilarityMethod

_QUESTION_WORD_WEIGHT = 0.1  # a word the question already uses says little about the answer


class TfidfSimilarity(SimilarityMethod):
    """Sublinear TF-IDF cosine; IDF comes from a background corpus given at construction."""

    name = "tfidf"

    def __init__(self, corpus: Iterable[str] = ()) -> None:
        docs = [set(content_lemmas(t)) for t in corpus]
        self._n_docs = len(docs)
        self._df = Counter(lemma for doc in docs for lemma in doc)

    def idf(self, lemma: str) -> float:
        return math.log((self._n_docs + 1) / (self._df.get(lemma, 0) + 1)) + 1.0

    def _vector(self, text: str) -> dict[str, float]:
        counts = Counter(content_lemmas(text))
        return {lemma: (1 + math.log(n)) * self.idf(lemma) for lemma, n in counts.items()}

    @staticmethod
    def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
        dot = sum(v * b.get(k, 0.0) for k, v in a.items())
        norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
        return dot / norm if norm else 0.0

    def cosine_matrix(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        va, vb = [self._vector(t) for t in texts_a], [self._vector(t) for t in texts_b]
        return np.array([[self._cosine(a, b) for b in vb] for a in va], dtype=float).reshape(len(va), len(vb))

    def _recall(self, answer: set[str], reference: list[str], question: set[str]) -> float:
        weights = {r: self.idf(r) * (_QUESTION_WORD_WEIGHT if r in question else 1.0) for r in set(reference)}
        total = sum(weights.values())
        return sum(w for r, w in weights.items() if r in answer) / total if total else 0.0

    def pair_features(
        self, answers: Sequence[str], references: Sequence[str], questions: Sequence[str]
    ) -> list[PairFeatures]:
        out = []
        for answer, reference, question in zip(answers, references, questions, strict=True):
            a_lemmas, r_lemmas = content_lemmas(answer), content_lemmas(reference)
            q_set, a_set, r_set = set(content_lemmas(question)), set(a_lemmas), set(r_lemmas)
            own = [a for a in a_set if a not in q_set]
            precision = sum(a in r_set for a in own) / len(own) if own else 0.0
            cosine = self._cosine(self._vector(answer), self._vector(reference))
            out.append(PairFeatures(cosine, self._recall(a_set, r_lemmas, q_set), precision))
        return out
