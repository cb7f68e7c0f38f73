"""Integrity checks: the secret order, perturbed copies, the generalisation gap, each rule with tiny data;
then the cheats themselves as tiny real models in the real sandbox."""

from __future__ import annotations

import hashlib
import stat
import textwrap

import numpy as np
import pytest
from helpers import (
    INTEGRITY_ON,
    bwrap_available,
    expected_logits,
    make_submission,
    require_tool,
    write_npz,
    write_rubric,
)

from grader.integrity.checks import check_integrity
from grader.integrity.model import IntegritySettings
from grader.integrity.probes import PERTURBATIONS, build_probes, course_secret, submission_key
from grader.pipeline import grade_submission, open_session
from grader.rubric.config import load_rubric

RULES = IntegritySettings(perturbation_sample=20, train_sample=20)


def split(count: int, seed: int = 0, mislabelled: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is their brightness band, so that a model reading the mean is genuine and robust;
    `mislabelled` of them carry the next band's label, which such a model gets wrong (a test set is harder)."""
    rng = np.random.default_rng(seed)
    bands = np.arange(count) % 10
    images = (bands[:, None, None, None] * 24 + 8 + rng.integers(0, 6, (count, 32, 32, 3))).astype(np.uint8)
    labels = np.where(np.arange(count) % 100 < mislabelled * 100, (bands + 1) % 10, bands)
    return images, labels


def brightness_model(images: np.ndarray) -> np.ndarray:
    return np.eye(10)[np.clip((images.reshape(len(images), -1).mean(axis=1) - 8) // 24, 0, 9).astype(int)]


def lookup_model(table: dict[bytes, int]):
    def answer(images: np.ndarray) -> np.ndarray:
        known = [table.get(hashlib.sha1(image.tobytes()).digest()) for image in images]
        return np.array([np.eye(10)[k] if k is not None else np.full(10, 0.1) for k in known])

    return answer


def probes_and_logits(model, *, permute=True, train=None, labels=None, key=b"k" * 32):
    test_images, test_labels = split(200, mislabelled=0.1)
    probes = build_probes(test_images, train, key=key, permute=permute, sample_size=28)  # stride 7: every class
    return probes, (model(probes.images) if labels is None else labels(probes)), test_labels


def test_the_secret_order_is_undone_before_scoring_and_is_the_same_for_the_same_files():
    test_images, _ = split(200)
    first = build_probes(test_images, None, key=b"a" * 32, permute=True, sample_size=20)
    again = build_probes(test_images, None, key=b"a" * 32, permute=True, sample_size=20)
    other = build_probes(test_images, None, key=b"b" * 32, permute=True, sample_size=20)
    assert (first.order == again.order).all() and not (first.order == other.order).all()
    assert len(first.images) == 200 + 3 * 20
    ids = np.arange(len(first.images))[:, None] * np.ones((1, 10))  # each shown image answers its own position
    parts = first.split_logits(ids)
    assert (first.order[parts["test"][:, 0].astype(int)] == np.arange(200)).all()
    assert set(parts) == {"test", *PERTURBATIONS}


def test_perturbations_change_the_pixels_a_little_and_nothing_else():
    test_images, _ = split(200)
    probes = build_probes(test_images, None, key=b"a" * 32, permute=False, sample_size=20)
    originals = test_images[probes.sample].astype(int)
    noisy = probes.images[probes.parts["grey-noise"]].astype(int)
    assert np.abs(noisy - originals).max() == 1 and (noisy != originals).mean() > 0.5
    assert (probes.images[probes.parts["flip"]] == test_images[probes.sample][:, :, ::-1]).all()
    shifted = probes.images[probes.parts["shift"]]
    assert (shifted[:, :, 1:] == test_images[probes.sample][:, :, :-1]).all()


def test_a_genuine_model_comes_out_clean():
    train_images, train_labels = split(100, seed=1)
    probes, logits, labels = probes_and_logits(brightness_model, train=train_images)
    report = check_integrity(probes, logits, labels, train_labels, RULES, [])
    assert report.flags == [] and report.order_permuted
    assert report.sample_accuracy > 0.85 and set(report.perturbed_accuracy.values()) == {report.sample_accuracy}
    assert report.train_accuracy == 1.0 and report.generalisation_gap == pytest.approx(0.1)


def test_a_table_of_the_exact_test_images_collapses_under_perturbation():
    test_images, test_labels = split(200, mislabelled=0.1)
    table = {hashlib.sha1(image.tobytes()).digest(): int(label) for image, label in zip(test_images, test_labels)}
    probes, logits, labels = probes_and_logits(lookup_model(table))
    report = check_integrity(probes, logits, labels, None, RULES, [])
    assert [flag.code for flag in report.flags] == ["perturbation-collapse"]
    assert report.sample_accuracy == 1.0 and max(report.perturbed_accuracy.values()) <= 0.25
    assert "table of the exact test images" in report.flags[0].message


def test_an_order_replay_is_caught_by_the_secret_order():
    def replay(probes):  # the i-th image shown gets the i-th label of the published split
        _, labels = split(200, mislabelled=0.1)
        answers = np.resize(labels, len(probes.images))
        return np.eye(10)[answers]

    probes, logits, labels = probes_and_logits(None, labels=replay)
    report = check_integrity(probes, logits, labels, None, RULES, [])
    assert "order-replay" in [flag.code for flag in report.flags]


def test_no_generalisation_gap_is_flagged_only_for_an_accurate_model():
    train_images, _ = split(100, seed=1)
    _, test_labels = split(200, mislabelled=0.1)
    train_labels = np.resize(test_labels[:100], 100)  # as hard as the test set: what training on it looks like
    probes, logits, labels = probes_and_logits(brightness_model, train=train_images)
    strict = IntegritySettings(perturbation_sample=20, train_sample=20, min_generalisation_gap=0.05)
    report = check_integrity(probes, logits, labels, train_labels, strict, [])
    assert [flag.code for flag in report.flags] == ["no-generalisation-gap"]
    assert report.flags[0].evidence["gap"] == 0.0

    def guessing(images):  # as bad on training images as on test images, but far from accurate
        return np.random.default_rng(0).random((len(images), 10))

    probes, logits, labels = probes_and_logits(guessing, train=train_images)
    assert check_integrity(probes, logits, labels, train_labels, strict, []).flags == []


def test_the_course_secret_is_private_and_stable(tmp_path):
    secret = course_secret(tmp_path)
    assert course_secret(tmp_path) == secret and len(secret) == 32
    assert stat.S_IMODE((tmp_path / ".grader-secret").stat().st_mode) == 0o600
    one = submission_key(secret, {"model.py": "aa", "weights.pth": "bb"}, "split")
    assert one == submission_key(secret, {"weights.pth": "bb", "model.py": "aa"}, "split")
    assert one != submission_key(secret, {"model.py": "aa", "weights.pth": "bc"}, "split")
    (tmp_path / "other").mkdir()
    another_course = course_secret(tmp_path / "other")
    assert one != submission_key(another_course, {"model.py": "aa", "weights.pth": "bb"}, "split")


# --- the cheats as tiny real models, graded in the real sandbox ----------------------------------

REPLAY = """
import torch
from torch import nn

LABELS = {labels}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)
        self.seen = 0

    def forward(self, x):
        answers = [LABELS[(self.seen + i) % len(LABELS)] for i in range(len(x))]
        self.seen += len(x)
        return torch.nn.functional.one_hot(torch.tensor(answers), 10).float()
"""

LOOKUP = """
import hashlib
import torch
from torch import nn

TABLE = {table}


def preprocess(images):
    return images  # the raw uint8 pixels, as the table was keyed


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def forward(self, x):
        rows = []
        for image in x.numpy():
            label = TABLE.get(hashlib.sha1(image.tobytes()).hexdigest())
            rows.append(torch.nn.functional.one_hot(torch.tensor(label), 10).float() if label is not None
                        else torch.full((10,), 0.1))
        return torch.stack(rows)
"""


@pytest.mark.integration
@pytest.mark.parametrize("cheat", ["honest", "order-replay", "lookup-table"])
def test_each_cheat_is_flagged_for_its_reason_in_the_real_sandbox(tmp_path, tiny_split, cheat):
    require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    import torch

    rubric = write_rubric(
        tmp_path / "rubric.yaml", write_npz(tiny_split, tmp_path / "split.npz"), tiny_split, integrity=INTEGRITY_ON
    )
    if cheat == "honest":
        folder = make_submission(tmp_path / "subs", cheat)
    else:
        labels = tiny_split.labels.tolist()
        table = {hashlib.sha1(image.tobytes()).hexdigest(): int(label) for image, label in
                 zip(tiny_split.images, tiny_split.labels)}  # fmt: skip
        source = REPLAY.format(labels=labels) if cheat == "order-replay" else LOOKUP.format(table=table)
        folder = tmp_path / "subs" / cheat
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(textwrap.dedent(source))
        torch.save({"unused.weight": torch.zeros(1, 1), "unused.bias": torch.zeros(1)}, folder / "weights.pth")
    with open_session(load_rubric(rubric), rubric) as session:
        result = grade_submission(folder, session)
    assert result.status == "graded", result.error
    flags = [flag.code for flag in result.integrity.flags]
    assert result.integrity.order_permuted
    assert flags == {"honest": [], "order-replay": ["order-replay"], "lookup-table": ["perturbation-collapse"]}[cheat]
    if cheat == "honest":  # shown shuffled, mixed with probes, and put back: the same accuracy as in split order
        assert result.accuracy == pytest.approx((expected_logits(tiny_split).argmax(1) == tiny_split.labels).mean())
    if cheat == "lookup-table":
        assert result.accuracy == 1.0  # full marks on the exact images, yet flagged
    if cheat == "order-replay":
        assert result.accuracy < 0.5  # the secret order alone takes its points away


def test_flags_reach_the_report_and_the_class_summary_in_plain_words(tmp_path):
    import io

    from rich.console import Console

    from grader.batch.summary import render_summary, summarise
    from grader.integrity.model import IntegrityFlag, IntegrityReport
    from grader.report.console import render_result
    from grader.results.model import InputHashes, Result

    flag = IntegrityFlag(code="perturbation-collapse", message="Accuracy falls from 100% to flip 9% [/]")
    flagged = Result(student="mallory [/]", status="graded", accuracy=1.0, inputs=InputHashes(grader_version="1"),
                     integrity=IntegrityReport(flags=[flag], order_permuted=True))  # fmt: skip
    honest = Result(student="alice", status="graded", accuracy=0.7, inputs=InputHashes(grader_version="1"),
                    integrity=IntegrityReport(order_permuted=True, perturbed_accuracy={"flip": 0.69}))  # fmt: skip
    console = Console(file=io.StringIO(), width=200)
    render_result(flagged, console)
    render_result(honest, console)
    render_summary(summarise([flagged, honest]), console)
    output = console.file.getvalue()
    assert output.count("Accuracy falls from 100% to flip 9% [/]") == 2  # the report's line, then the summary's
    assert "mallory [/]" in output and "no flags" in output and "flip 69.0%" in output
