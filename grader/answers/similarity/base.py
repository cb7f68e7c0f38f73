"""The small interface every similarity method implements, and the registry of methods by name."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from grader.registry import Registry

METHOD_ENV = "GRADER_ANSWERS_METHOD"


@dataclass(frozen=True)
class PairFeatures:
    """How close one answer is to its reference, seen by one method."""

    cosine: float  # whole-text similarity
    recall: float  # how much of the reference's content the answer covers (question words discounted)
    precision: float  # how much of the answer is about the reference's content


class SimilarityMethod(ABC):
    name: str = ""

    @abstractmethod
    def pair_features(
        self, answers: Sequence[str], references: Sequence[str], questions: Sequence[str]
    ) -> list[PairFeatures]:
        """Features of each (answer, reference) pair; the question's words count less in recall."""

    @abstractmethod
    def cosine_matrix(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every text in a with every text in b."""


_EMBEDDING = "grader.answers.similarity.embedding"
METHODS: Registry[Callable[..., SimilarityMethod]] = Registry("similarity method", error=ValueError)
METHODS.register("minilm", f"{_EMBEDDING}:MiniLMSimilarity", available=f"{_EMBEDDING}:minilm_available", preference=10)
METHODS.register("tfidf", "grader.answers.similarity.tfidf:TfidfSimilarity")


def resolve_method_name(method: str = "auto") -> str:
    """The concrete method `method` stands for; the env variable overrides "auto" (e.g. to force tfidf)."""
    if method == "auto":
        method = os.environ.get(METHOD_ENV, "").strip() or "auto"
    if method == "auto":
        return METHODS.preferred()[0]
    METHODS.get(method)  # ValueError for an unknown or uninstalled method
    return method


def get_method(method: str = "auto", **options) -> SimilarityMethod:
    return METHODS.get(resolve_method_name(method))(**options)
