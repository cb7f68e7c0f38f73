"""Integrity checks: the secret order, the secret samples, the perturbations, the generalisation and private-split
gaps, each rule with tiny data; the evasions of issue 22 graded end to end through the fake sandbox; then the
cheats themselves as tiny real models in the real sandbox.

The tiny images carry their class in their mean colour (a hue per class, on a grey texture of 4-pixel blobs that
makes each image unique): a model reading the mean colour is genuine and survives every perturbation, while a
table of the images' 4x4 block means (dominated by the texture) only knows the images it holds.
"""

from __future__ import annotations

import hashlib
import stat
import textwrap

import numpy as np
import pytest
from helpers import (
    INTEGRITY_ON,
    FakeBackend,
    bwrap_available,
    expected_logits,
    fake_submission,
    make_submission,
    require_tool,
    write_npz,
    write_rubric,
)

from grader.datasets import LabelledImages
from grader.integrity.checks import KnownLabels, check_integrity
from grader.integrity.model import IntegritySettings
from grader.integrity.perturb import perturb
from grader.integrity.probes import (
    PERTURBED,
    TEST,
    TRAIN,
    TRAIN_PERTURBED,
    build_probes,
    course_sample,
    course_secret,
    submission_key,
)
from grader.pipeline import grade_submission, open_session
from grader.rubric.config import load_rubric
from grader.rubric.pin import pin_split

RULES = IntegritySettings(perturbation_sample=100, train_sample=100)
SECRET = "5e" * 32  # a fixed course secret: every secret draw is the same on every run of the tests
RED_GREEN = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)  # two axes of colour orthogonal to grey
YELLOW_BLUE = np.array([1.0, 1.0, -2.0]) / np.sqrt(6)


def split(count: int, seed: int = 0, mislabelled: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is their hue (36 degrees apart) on a grey texture; `mislabelled` of them carry the next
    class's label, which a model reading the colour gets wrong (a test set is harder)."""
    rng = np.random.default_rng(seed)
    classes = np.arange(count) % 10
    angle = classes * 2 * np.pi / 10
    colour = 14 * (np.cos(angle)[:, None] * RED_GREEN + np.sin(angle)[:, None] * YELLOW_BLUE)
    texture = rng.uniform(-60, 60, (count, 8, 8)).repeat(4, axis=1).repeat(4, axis=2)
    images = 128 + texture[..., None] + colour[:, None, None, :] + rng.normal(0, 3, (count, 32, 32, 3))
    labels = np.where(np.arange(count) % 100 < mislabelled * 100, (classes + 1) % 10, classes)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def hue_classes(images: np.ndarray) -> np.ndarray:
    mean = images.reshape(len(images), -1, 3).astype(np.float64).mean(axis=1)
    angle = np.arctan2(mean @ YELLOW_BLUE, mean @ RED_GREEN) % (2 * np.pi)
    return np.rint(angle / (2 * np.pi / 10)).astype(int) % 10


def hue_model(images: np.ndarray) -> np.ndarray:
    return np.eye(10)[hue_classes(images)]


def weaker_hue_classes(images: np.ndarray) -> np.ndarray:
    """A weaker genuine model: the colour, but class 3 taken for class 4."""
    classes = hue_classes(images)
    return np.where(classes == 3, 4, classes)


def lookup_model(table: dict[bytes, int]):
    def answer(images: np.ndarray) -> np.ndarray:
        known = [table.get(hashlib.sha1(image.tobytes()).digest()) for image in images]
        return np.array([np.eye(10)[k] if k is not None else np.full(10, 0.1) for k in known])

    return answer


def exact_table(images: np.ndarray, labels: np.ndarray) -> dict[bytes, int]:
    return {hashlib.sha1(image.tobytes()).digest(): int(label) for image, label in zip(images, labels)}


def probes_and_logits(model, *, permute=True, train=None, private=None, labels=None, key=b"k" * 32):
    test_images, test_labels = split(200, mislabelled=0.1)
    probes = build_probes(test_images, train, key=key, permute=permute, sample_size=100, private_images=private)
    return probes, (model(probes.images) if labels is None else labels(probes)), test_labels


def test_the_secret_order_is_undone_before_scoring_and_is_the_same_for_the_same_files():
    test_images, _ = split(200)
    train_images, _ = split(50, seed=1)
    first = build_probes(test_images, train_images, key=b"a" * 32, permute=True, sample_size=20)
    again = build_probes(test_images, train_images, key=b"a" * 32, permute=True, sample_size=20)
    other = build_probes(test_images, train_images, key=b"b" * 32, permute=True, sample_size=20)
    assert (first.order == again.order).all() and not (first.order == other.order).all()
    assert (first.images == again.images).all(), "the same files graded again see exactly the same images"
    assert len(first.images) == 200 + 20 + 50 + 20
    ids = np.arange(len(first.images))[:, None] * np.ones((1, 10))  # each shown image answers its own position
    parts = first.split_logits(ids)
    assert (first.order[parts[TEST][:, 0].astype(int)] == np.arange(200)).all()
    assert set(parts) == {TEST, PERTURBED, TRAIN, TRAIN_PERTURBED}


def test_which_test_images_are_perturbed_is_drawn_per_submission_not_every_kth():
    test_images, _ = split(200)
    one = build_probes(test_images, None, key=b"a" * 32, permute=False, sample_size=20).sample
    two = build_probes(test_images, None, key=b"b" * 32, permute=False, sample_size=20).sample
    assert len(one) == len(set(one.tolist())) == 20 and set(one.tolist()) != set(two.tolist())
    assert len(set(np.diff(one).tolist())) > 1, "not a stride a student could read in the code"


def test_perturbations_are_drawn_per_image_and_no_single_inverse_undoes_them():
    images, _ = split(60)
    twice = np.repeat(images[:1], 30, axis=0)
    changed = perturb(twice, np.random.default_rng(0))
    assert changed.dtype == np.uint8 and changed.shape == twice.shape
    assert len({copy.tobytes() for copy in changed}) == 30, "each copy of one image is changed its own way"
    assert (perturb(images, np.random.default_rng(5)) == perturb(images, np.random.default_rng(5))).all()
    shaken = perturb(images, np.random.default_rng(1)).astype(int)
    # The inverses the earlier perturbations allowed (mirror back, shift back, ignore a grey level) undo nothing.
    for undone in (shaken, shaken[:, :, ::-1], np.concatenate([shaken[:, :, 1:], shaken[:, :, -1:]], axis=2)):
        assert np.abs(undone - images.astype(int)).mean(axis=(1, 2, 3)).min() > 3
    assert (hue_classes(shaken.astype(np.uint8)) == hue_classes(images)).all(), "what the image shows survives"


def test_the_course_samples_are_secret_stable_and_shared_by_every_student():
    secret, other = bytes.fromhex(SECRET), bytes(32)
    train = course_sample(secret, "train", 50_000, 1000)
    assert (train == course_sample(secret, "train", 50_000, 1000)).all() and (np.diff(train) > 0).all()
    assert not (train == course_sample(other, "train", 50_000, 1000)).all()
    assert not (train == course_sample(secret, "private", 50_000, 1000)).all()
    assert not (train == np.arange(0, 50_000, 50)).all(), "never the every-50th rule of the earlier grader"
    assert (course_sample(secret, "train", 30, 1000) == np.arange(30)).all()


def test_a_genuine_model_comes_out_clean():
    train_images, train_labels = split(100, seed=1)
    private_images, private_labels = split(100, seed=2)
    probes, logits, labels = probes_and_logits(hue_model, train=train_images, private=private_images)
    known = KnownLabels(train=train_labels, private=private_labels)
    report = check_integrity(probes, logits, labels, known, RULES, [])
    assert report.flags == [] and report.order_permuted
    assert report.sample_accuracy > 0.85 and report.perturbation_drop == 0 == report.train_perturbation_drop
    assert set(report.perturbed_accuracy) == {"perturbed test", "perturbed train"}
    assert report.train_accuracy == 1.0 and report.generalisation_gap == pytest.approx(0.1)
    assert report.private_accuracy == 1.0 and report.private_gap == pytest.approx(-0.1)


def test_a_table_of_the_exact_test_images_collapses_under_perturbation():
    test_images, test_labels = split(200, mislabelled=0.1)
    probes, logits, labels = probes_and_logits(lookup_model(exact_table(test_images, test_labels)))
    report = check_integrity(probes, logits, labels, KnownLabels(), RULES, [])
    assert [flag.code for flag in report.flags] == ["perturbation-collapse"]
    assert report.sample_accuracy == 1.0 and report.perturbed_accuracy["perturbed test"] <= 0.25
    assert "table of the test images" in report.flags[0].message


def test_a_table_that_only_knows_the_test_images_loses_to_the_training_images():
    """The drop on test images against the drop on training images: a fallback as robust as an honest model hides
    the table from the bound on the drop alone, not from the comparison."""
    test_images, test_labels = split(200, mislabelled=0.1)
    train_images, train_labels = split(100, seed=1)
    table = exact_table(test_images, test_labels)

    def table_or_colour(images):
        known = [table.get(hashlib.sha1(image.tobytes()).digest()) for image in images]
        return np.eye(10)[[k if k is not None else c for k, c in zip(known, weaker_hue_classes(images))]]

    probes, logits, labels = probes_and_logits(table_or_colour, train=train_images)
    report = check_integrity(probes, logits, labels, KnownLabels(train=train_labels), RULES, [])
    collapse = next(flag for flag in report.flags if flag.code == "perturbation-collapse")
    assert report.perturbation_drop < RULES.max_perturbation_drop < report.perturbation_drop + 0.25
    assert collapse.evidence["train_drop"] == 0 and report.perturbation_drop > RULES.max_perturbation_excess
    assert "training images changed the same way" in collapse.message


def test_an_order_replay_is_caught_by_the_secret_order():
    def replay(probes):  # the i-th image shown gets the i-th label of the published split
        _, labels = split(200, mislabelled=0.1)
        answers = np.resize(labels, len(probes.images))
        return np.eye(10)[answers]

    probes, logits, labels = probes_and_logits(None, labels=replay)
    report = check_integrity(probes, logits, labels, KnownLabels(), RULES, [])
    assert "order-replay" in [flag.code for flag in report.flags]


def test_no_generalisation_gap_is_flagged_only_for_an_accurate_model():
    train_images, _ = split(100, seed=1)
    _, test_labels = split(200, mislabelled=0.1)
    train_labels = np.resize(test_labels[:100], 100)  # as hard as the test set: what training on it looks like
    probes, logits, labels = probes_and_logits(hue_model, train=train_images)
    strict = IntegritySettings(perturbation_sample=100, train_sample=100, min_generalisation_gap=0.05)
    report = check_integrity(probes, logits, labels, KnownLabels(train=train_labels), strict, [])
    assert [flag.code for flag in report.flags] == ["no-generalisation-gap"]
    assert report.flags[0].evidence["gap"] == 0.0

    def guessing(images):  # as bad on training images as on test images, but far from accurate
        return np.random.default_rng(0).random((len(images), 10))

    probes, logits, labels = probes_and_logits(guessing, train=train_images)
    assert check_integrity(probes, logits, labels, KnownLabels(train=train_labels), strict, []).flags == []


def test_a_memorised_test_set_is_flagged_by_the_private_split():
    test_images, test_labels = split(200, mislabelled=0.1)
    private_images, private_labels = split(100, seed=2)
    model = lookup_model(exact_table(test_images, test_labels))
    probes, logits, labels = probes_and_logits(model, private=private_images)
    report = check_integrity(probes, logits, labels, KnownLabels(private=private_labels), RULES, [])
    gap = next(flag for flag in report.flags if flag.code == "private-split-gap")
    assert report.private_images == 100 and report.private_accuracy == pytest.approx(0.1)
    assert gap.evidence == {"test_accuracy": 1.0, "private_accuracy": 0.1, "gap": 0.9, "max_gap": 0.2}
    assert "no student has seen" in gap.message


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


# --- the evasions of issue 22, graded end to end (fake sandbox: the "model" is a function of the images) -------

TEST_IMAGES, TEST_LABELS = split(300, seed=0, mislabelled=0.1)
TRAIN_IMAGES, TRAIN_LABELS = split(600, seed=1)
PRIVATE_IMAGES, PRIVATE_LABELS = split(200, seed=2)
EVASION_RULES = {"permute_order": True, "perturbation_sample": 200, "train_sample": 60}
OLD_RULE_SAMPLE = slice(None, None, 600 // 60)  # what an earlier grader sampled: every k-th training image


def known_to_the_cheats() -> tuple[np.ndarray, np.ndarray]:
    """The public test split (every 40th label changed on purpose: 97.5% looks earned) and the training images an
    earlier grader sampled by the rule in its code."""
    labels = TEST_LABELS.copy()
    labels[::40] = (labels[::40] + 1) % 10
    images = np.concatenate([TEST_IMAGES, TRAIN_IMAGES[OLD_RULE_SAMPLE]])
    return images, np.concatenate([labels, TRAIN_LABELS[OLD_RULE_SAMPLE]])


def block_means(images: np.ndarray) -> np.ndarray:
    """4x4 block means, the same for an image and its mirror."""
    blocks = images.astype(np.float32).reshape(len(images), 4, 8, 4, 8, 3).mean(axis=(2, 4))
    return ((blocks + blocks[:, :, ::-1]) / 2).reshape(len(images), -1)


def nearest_neighbour_table(images: np.ndarray) -> np.ndarray:
    """Issue 22's first evasion: the nearest known image by mirror-invariant block means, each query also shifted
    back one pixel (undoing a shift to the right)."""
    known, labels = known_to_the_cheats()
    keys = block_means(known)
    back = np.concatenate([images[:, :, 1:], images[:, :, -1:]], axis=2)
    distances = [((block_means(query)[:, None, :] - keys[None]) ** 2).sum(axis=2) for query in (images, back)]
    return np.eye(10)[labels[np.minimum(*distances).argmin(axis=1)]]


def table_with_fallback(images: np.ndarray) -> np.ndarray:
    """Issue 22's second evasion: the exact pixels of the known images, and for any other image a weaker genuine
    model (the colour, wrong on one class of ten), so that the perturbed copies cost under 25 points."""
    table = exact_table(*known_to_the_cheats())
    weaker = weaker_hue_classes(images)
    answers = [table.get(hashlib.sha1(image.tobytes()).digest(), fallback) for image, fallback in zip(images, weaker)]
    return np.eye(10)[answers]


def grade_with(tmp_path, model, *, train: bool, private: bool = False):
    """One student graded through the pipeline, its sandbox answered by `model` from the images shown."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    test = LabelledImages(images=TEST_IMAGES, labels=TEST_LABELS.astype(np.int64), source="test")
    rubric = write_rubric(tmp_path / "rubric.yaml", write_npz(test, tmp_path / "test.npz"), test,
                          integrity=EVASION_RULES)  # fmt: skip
    (tmp_path / ".grader-secret").write_text(SECRET + "\n")
    if train:
        np.savez(tmp_path / "train.npz", images=TRAIN_IMAGES, labels=TRAIN_LABELS)
        pin_split(tmp_path / "train.npz", rubric, train=True)
    if private:
        np.save(tmp_path / "cifar10.1_v6_data.npy", PRIVATE_IMAGES)
        np.save(tmp_path / "cifar10.1_v6_labels.npy", PRIVATE_LABELS)
        pin_split(tmp_path / "cifar10.1_v6_data.npy", rubric, private=True)
    folder = fake_submission(tmp_path / "submissions", "mallory")
    backend = FakeBackend({"mallory": lambda job: model(np.load(job.images_file, allow_pickle=False))})
    with open_session(load_rubric(rubric), rubric, backend=backend) as session:
        result = grade_submission(folder, session)
    assert result.status == "graded", result.error
    return result, [flag.code for flag in result.integrity.flags]


@pytest.mark.parametrize("train", [True, False], ids=["training-split-pinned", "no-training-split"])
def test_a_nearest_neighbour_table_of_block_means_is_flagged(tmp_path, train):
    result, flags = grade_with(tmp_path, nearest_neighbour_table, train=train)
    assert result.accuracy == pytest.approx(292 / 300)  # full marks, but for the 8 deliberate mistakes
    assert "perturbation-collapse" in flags
    assert result.integrity.perturbation_drop > IntegritySettings().max_perturbation_drop
    if train:  # the secret training sample is not the one the table holds
        assert "no-generalisation-gap" in flags and result.integrity.train_accuracy < 0.8


def test_an_exact_table_with_a_genuine_fallback_is_flagged_by_the_training_images(tmp_path):
    result, flags = grade_with(tmp_path, table_with_fallback, train=True)
    assert result.accuracy == pytest.approx(292 / 300)
    integrity = result.integrity
    assert integrity.perturbation_drop < 0.25, "under the bound on the drop alone, as the evasion intended"
    assert "perturbation-collapse" in flags and "no-generalisation-gap" in flags
    assert integrity.perturbation_drop - integrity.train_perturbation_drop > 0.10


@pytest.mark.parametrize("train", [True, False], ids=["training-split-pinned", "no-training-split"])
def test_the_honest_model_passes_the_same_grading(tmp_path, train):
    result, flags = grade_with(tmp_path, hue_model, train=train, private=True)
    assert flags == [] and result.accuracy == 0.9
    assert result.integrity.private_images == 200 and result.integrity.private_gap == pytest.approx(-0.1)
    assert (result.integrity.train_images, result.integrity.generalisation_gap is None) == ((60, False) if train else
                                                                                            (0, True))  # fmt: skip


def test_a_pinned_private_split_flags_the_table_even_without_perturbations(tmp_path):
    result, flags = grade_with(tmp_path, nearest_neighbour_table, train=False, private=True)
    assert "private-split-gap" in flags
    assert result.integrity.private_gap > 0.3 and result.integrity.not_measured == [
        "generalisation gap: no train_split pinned in the rubric (grader pin-split PATH --train)"
    ]


def test_regrading_the_same_files_sees_the_same_images_and_the_same_figures(tmp_path):
    first, _ = grade_with(tmp_path / "one", nearest_neighbour_table, train=True)
    again, _ = grade_with(tmp_path / "two", nearest_neighbour_table, train=True)
    assert first.integrity == again.integrity


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
    checked = IntegrityReport(order_permuted=True, perturbed_accuracy={"perturbed test": 0.69})
    honest = Result(student="alice", status="graded", accuracy=0.7, inputs=InputHashes(grader_version="1"),
                    integrity=checked)  # fmt: skip
    console = Console(file=io.StringIO(), width=200)
    render_result(flagged, console)
    render_result(honest, console)
    render_summary(summarise([flagged, honest]), console)
    output = console.file.getvalue()
    assert output.count("Accuracy falls from 100% to flip 9% [/]") == 2  # the report's line, then the summary's
    assert "mallory [/]" in output and "no flags" in output and "perturbed test 69.0%" in output
