"""The answers' sentence vectors kept beside the results (grader/review/vector_file.py): a second `grader review`
on the same results encodes nothing it has seen, a changed answer or another model is encoded again, the file
holds no student text, a file that is not ours is ignored with a warning and rewritten, and two writers at once
never leave a broken file.

The encoder is a real one, small: hashed words into 64 values, counting the texts it is given.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import write_npz, write_rubric

from grader.results.model import InputHashes, Result
from grader.results.store import save_result
from grader.review.session import ReviewSession
from grader.review.vector_file import VECTORS_NAME, AnswerVectorFile, KeyedEncoder, text_digest

DIMENSIONS = 64
REPO_ROOT = Path(__file__).resolve().parents[1]
WORDS = re.compile(r"[a-z0-9]+")


def word_vectors(texts: list[str]) -> np.ndarray:
    """Each text's words hashed into DIMENSIONS counts, scaled to unit length."""
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in WORDS.findall(text.lower()):
            out[row, int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % DIMENSIONS] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class CountingEncoder:
    """word_vectors, remembering every text it encoded."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.encoded += texts
        return word_vectors(texts)


ANSWERS = {
    "ann": ["An autoencoder learns codes without labels.", "Large labelled datasets and GPUs.", "Overfitting.", "Ok"],
    "ben": ["No, networks need labels.", "Computers are faster now.", "They are slow.", "Nonlinear activations."],
    "cal": ["Clustering the codes of an autoencoder.", "GPUs.", "They need much data.", "They fit curves."],
}


def student_result(student: str, texts: list[str]) -> Result:
    questions = [
        {"number": number, "answer_text": text, "points": 0.5, "max_points": 1.0, "reason": "partly right"}
        for number, text in enumerate(texts, start=1)
    ]
    answers = {"points": 0.5 * len(texts), "max_points": float(len(texts)), "method": "test", "questions": questions}
    return Result(student=student, status="graded", answers=answers, inputs=InputHashes(grader_version="test"))


@pytest.fixture
def klass(tmp_path, tiny_split):
    write_npz(tiny_split, tmp_path / "split.npz")
    rubric = write_rubric(tmp_path / "rubric.yaml", Path("split.npz"), tiny_split)
    results = tmp_path / "results"
    for student, texts in ANSWERS.items():
        save_result(student_result(student, texts), results)
    return rubric, results


def open_review(klass, encode) -> ReviewSession:
    rubric, results = klass
    return ReviewSession(results=results, rubric=rubric, submissions=results.parent / "submissions", encode=encode)


def distinct_texts() -> set[str]:
    return {text for texts in ANSWERS.values() for text in texts}


def test_a_second_review_on_the_same_results_encodes_no_answer(klass):
    first, second = CountingEncoder(), CountingEncoder()
    opened = open_review(klass, KeyedEncoder("words-64", first))
    assert set(first.encoded) == distinct_texts()
    assert (klass[1] / VECTORS_NAME).is_file()

    reopened = open_review(klass, KeyedEncoder("words-64", second))

    assert second.encoded == []
    for question, vectors in opened.queue.vectors.items():
        assert np.array_equal(reopened.queue.vectors[question], vectors)


def test_a_changed_answer_alone_is_encoded_again(klass):
    open_review(klass, KeyedEncoder("words-64", CountingEncoder()))
    texts = list(ANSWERS["ben"])
    texts[2] = "They are slow to train and need GPUs."
    save_result(student_result("ben", texts), klass[1])  # a regrade read another answers file
    again = CountingEncoder()

    reopened = open_review(klass, KeyedEncoder("words-64", again))

    assert again.encoded == ["They are slow to train and need GPUs."]
    row = [answer.student for answer in reopened.queue.answers[3]].index("ben")
    assert np.allclose(reopened.queue.vectors[3][row], word_vectors(["They are slow to train and need GPUs."])[0])


def test_another_model_is_never_served_the_first_models_vectors(klass):
    open_review(klass, KeyedEncoder("words-64", CountingEncoder()))
    other = CountingEncoder()

    open_review(klass, KeyedEncoder("words-64-v2", other))

    assert set(other.encoded) == distinct_texts()
    path = klass[1] / VECTORS_NAME
    assert len(AnswerVectorFile(path, "words-64-v2").load()) == len(distinct_texts())
    assert AnswerVectorFile(path, "words-64").load() == {}  # the new model's file replaced the first's


def test_the_vector_file_holds_hashes_and_vectors_but_no_answer_text(klass):
    open_review(klass, KeyedEncoder("words-64", CountingEncoder()))
    data = (klass[1] / VECTORS_NAME).read_bytes()

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["hashes.npy", "model.npy", "vectors.npy"]
    for text in distinct_texts():
        for word in WORDS.findall(text.lower()):
            if len(word) > 4:
                assert word.encode() not in data
    stored = AnswerVectorFile(klass[1] / VECTORS_NAME, "words-64").load()
    assert set(stored) == {text_digest(text) for text in distinct_texts()}


def test_a_review_without_a_sentence_encoder_writes_no_vector_file(klass):
    session = open_review(klass, None)

    assert session.method == "tfidf"
    assert not (klass[1] / VECTORS_NAME).exists()


def test_an_encoder_that_does_not_name_its_model_keeps_its_vectors_in_memory(klass):
    open_review(klass, CountingEncoder())

    assert not (klass[1] / VECTORS_NAME).exists()


def _valid_file_bytes(tmp_path: Path) -> bytes:
    file = AnswerVectorFile(tmp_path / "valid.npz", "words-64")
    file.save({text_digest(text): word_vectors([text])[0] for text in distinct_texts()})
    return file.path.read_bytes()


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


KEY = np.frombuffer(b"words-64", dtype=np.uint8)
HASH = np.zeros((1, 32), np.uint8)
NOT_OURS = {
    "garbage": lambda valid: b"\x00not a zip at all" * 100,
    "cut short": lambda valid: valid[: len(valid) // 2],
    "other members": lambda valid: _npz(model=KEY, texts=np.zeros((3, 32), np.uint8)),
    "not finite": lambda valid: _npz(model=KEY, hashes=HASH, vectors=np.full((1, 64), np.nan, np.float32)),
    "float64": lambda valid: _npz(model=KEY, hashes=HASH, vectors=np.zeros((1, 64))),
    "ragged": lambda valid: _npz(model=KEY, hashes=np.zeros((2, 32), np.uint8), vectors=np.zeros((1, 64), np.float32)),
    "objects": lambda valid: _npz(model=KEY, hashes=np.array([b"x"], object), vectors=np.zeros((1, 64), np.float32)),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(NOT_OURS))
def test_a_vector_file_that_is_not_ours_is_ignored_with_a_warning_and_rewritten(klass, tmp_path, caplog, damage):
    path = klass[1] / VECTORS_NAME
    path.write_bytes(NOT_OURS[damage](_valid_file_bytes(tmp_path)))
    encoder = CountingEncoder()

    with caplog.at_level(logging.WARNING, logger="grader.review.vector_file"):
        open_review(klass, KeyedEncoder("words-64", encoder))

    assert set(encoder.encoded) == distinct_texts()
    assert [record for record in caplog.records if str(path) in record.getMessage()]
    assert set(AnswerVectorFile(path, "words-64").load()) == {text_digest(text) for text in distinct_texts()}


def test_two_writers_interleaved_keep_each_others_vectors(tmp_path):
    path = tmp_path / VECTORS_NAME
    first, second = AnswerVectorFile(path, "words-64"), AnswerVectorFile(path, "words-64")
    assert first.load() == second.load() == {}

    first.save({text_digest("one"): word_vectors(["one"])[0]})
    second.save({text_digest("two"): word_vectors(["two"])[0]})

    stored = AnswerVectorFile(path, "words-64").load()
    assert set(stored) == {text_digest("one"), text_digest("two")}
    assert np.array_equal(stored[text_digest("one")], word_vectors(["one"])[0])


WRITER = """
import hashlib, sys
from pathlib import Path
import numpy as np
from grader.review.vector_file import AnswerVectorFile, text_digest
path, writer, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
file = AnswerVectorFile(path, "words-64")
for round_ in range(rounds):
    texts = [f"writer {writer} text {round_} {k}" for k in range(20)]
    file.save({text_digest(t): np.frombuffer(hashlib.sha256(t.encode()).digest(), np.uint8).astype(np.float32)
               for t in texts})
"""
ROUNDS = 30


def digest_vector(text: str) -> np.ndarray:
    """What a writer process stores for a text (WRITER): its sha256's bytes as 32 values."""
    return np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8).astype(np.float32)


def test_two_processes_writing_at_once_never_leave_a_broken_file(tmp_path, caplog):
    path = tmp_path / VECTORS_NAME
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(writer), str(ROUNDS)], cwd=REPO_ROOT)
        for writer in (1, 2)
    ]
    reads = []
    with caplog.at_level(logging.WARNING, logger="grader.review.vector_file"):
        while any(process.poll() is None for process in writers):
            reads.append(AnswerVectorFile(path, "words-64").load())
            time.sleep(0.002)
    assert [process.wait(timeout=60) for process in writers] == [0, 0]

    assert not caplog.records  # a reader saw the old file or the new one, never half of one
    written = {f"writer {w} text {r} {k}" for w in (1, 2) for r in range(ROUNDS) for k in range(20)}
    expected = {text_digest(text): text for text in written}
    final = AnswerVectorFile(path, "words-64").load()
    assert final and set(final) <= set(expected)
    assert {expected[digest].split()[1] for digest in final} == {"1", "2"}  # neither writer's vectors all lost
    for stored in [*reads, final]:
        for digest, vector in stored.items():
            assert np.array_equal(vector, digest_vector(expected[digest]))
