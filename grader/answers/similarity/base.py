"""The small interface every similarity method implements, and the registry of methods by name."""

from __future__ import annotations

import difflib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., SimilarityMethod]
    available: Callable[[], bool]
    preference: int  # "auto" takes the available method with the highest preference


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, *, available: Callable[[], bool] = lambda: True, preference: int = 0):
    def wrap(factory: Callable[..., SimilarityMethod]) -> Callable[..., SimilarityMethod]:
        _REGISTRY[name] = _Entry(factory, available, preference)
        return factory

    return wrap


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def resolve_method_name(method: str = "auto") -> str:
    """The concrete method `method` stands for; the env variable overrides "auto" (e.g. to force tfidf)."""
    if method == "auto":
        method = os.environ.get(METHOD_ENV, "").strip() or "auto"
    if method == "auto":
        usable = [(e.preference, n) for n, e in _REGISTRY.items() if e.available()]
        return max(usable)[1]
    if method not in _REGISTRY:
        close = difflib.get_close_matches(method, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(method_names())}"
        raise ValueError(f"unknown similarity method {method!r}{hint}")
    if not _REGISTRY[method].available():
        raise ValueError(f"similarity method {method!r} is not installed")
    return method


def get_method(method: str = "auto", **options) -> SimilarityMethod:
    return _REGISTRY[resolve_method_name(method)].factory(**options)
