"""Copied models across a class: identical weights, identical predictions, and error consistency far above
independent models'. Tiny synthetic predictions; the thresholds themselves are calibrated on real models
(python -m benchmarks.integrity_calibrate)."""

import io
import json
from itertools import combinations

import numpy as np
import pytest
from helpers import HOSTILE, FakeBackend, assert_printed_literally, fake_submission, terminal, write_npz, write_rubric
from rich.console import Console

from grader.batch.run import BatchOptions, grade_all
from grader.batch.summary import main as summary_main
from grader.datasets import LabelledImages
from grader.integrity.copies import (
    COPIES_FILE,
    CopyReport,
    compare_class,
    copied_pairs,
    pair_metrics,
    read_copy_report,
    write_copy_report,
)
from grader.integrity.model import IntegritySettings
from grader.results.model import InputHashes, Result

IMAGES = 2000
SETTINGS = IntegritySettings()


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 10, IMAGES)


def noisy(labels: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Right on a random `accuracy` share of the images, a random wrong class elsewhere."""
    rng = np.random.default_rng(seed)
    wrong = (labels + rng.integers(1, 10, len(labels))) % 10
    return np.where(rng.random(len(labels)) < accuracy, labels, wrong)


def changed(predictions: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A copy with `share` of its predictions moved to another class."""
    rng = np.random.default_rng(seed)
    copy = predictions.copy()
    chosen = rng.random(len(copy)) < share
    copy[chosen] = (copy[chosen] + rng.integers(1, 10, chosen.sum())) % 10
    return copy


def result(student: str, predictions: np.ndarray | None, weights: str | None = None, **fields) -> Result:
    weights = weights or f"sha of {student}'s weights"
    return Result(
        student=student,
        status="graded" if predictions is not None else "error",
        predictions=None if predictions is None else "".join(map(str, predictions.tolist())),
        files={"model": "model.py", "weights": "weights.pth", "answers": None},
        inputs=InputHashes(grader_version="1", submission={"model.py": "same model.py", "weights.pth": weights}),
        **fields,
    )


def test_identical_predictions_are_flagged(labels):
    honest = noisy(labels, 0.6, seed=1)
    pairs = copied_pairs([result("ann", honest), result("ben", honest.copy())], labels, SETTINGS)
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair.student_a, pair.student_b, pair.reasons) == ("ann", "ben", ["identical-predictions"])
    assert pair.identical_predictions and not pair.identical_weights and pair.agreement == 1.0
    assert pair.kappa == 1.0 and pair.shared_mistake_agreement == 1.0
    assert "ann and ben predict the same class on every test image" in pair.message


def test_identical_weights_files_are_flagged_even_when_their_predictions_differ(labels):
    # Same weights, another model.py (say, a different preprocessing): the hash alone is the evidence.
    one, other = noisy(labels, 0.6, seed=1), noisy(labels, 0.6, seed=2)
    pairs = copied_pairs([result("ann", one, weights="abc"), result("ben", other, weights="abc")], labels, SETTINGS)
    assert [(pair.reasons, pair.identical_weights, pair.identical_predictions) for pair in pairs] == [
        (["identical-weights"], True, False)
    ]
    assert "byte-identical weights" in pairs[0].message


def test_independent_models_with_the_same_accuracy_are_not_flagged(labels):
    results = [result(f"s{seed}", noisy(labels, 0.6, seed)) for seed in range(6)]
    assert copied_pairs(results, labels, SETTINGS) == []


def test_models_that_find_the_same_images_hard_are_not_flagged(labels):
    # Honest models share their hard images and some confusions (Geirhos et al.): kappa well above 0.
    rng = np.random.default_rng(7)
    hard = rng.random(IMAGES) < 0.35
    confusion = (labels + rng.integers(1, 10, IMAGES)) % 10

    def honest(seed: int) -> np.ndarray:
        own = np.random.default_rng(seed)
        right = np.where(hard, own.random(IMAGES) < 0.15, own.random(IMAGES) < 0.9)
        wrong = np.where(own.random(IMAGES) < 0.4, confusion, (labels + own.integers(1, 10, IMAGES)) % 10)
        return np.where(right, labels, wrong)

    results = [result(f"s{seed}", honest(seed)) for seed in range(4)]
    kappas = pair_metrics(np.stack([honest(seed) for seed in range(4)]), labels).kappa
    assert kappas[0, 1] > 0.4  # correlated, as real models are
    assert copied_pairs(results, labels, SETTINGS) == []


def test_a_copy_with_a_few_changed_predictions_is_flagged(labels):
    original = noisy(labels, 0.6, seed=1)
    results = [
        result("ann", original),
        result("ben", changed(original, 0.03, seed=5)),
        result("cat", noisy(labels, 0.6, 9)),
    ]
    pairs = copied_pairs(results, labels, SETTINGS)
    assert [(pair.student_a, pair.student_b, pair.reasons) for pair in pairs] == [("ann", "ben", ["error-consistency"])]
    pair = pairs[0]
    assert pair.kappa >= SETTINGS.copy_kappa and pair.shared_mistake_agreement >= SETTINGS.copy_mistake_agreement
    assert 0.95 < pair.agreement < 1 and pair.shared_mistakes > SETTINGS.copy_min_shared_mistakes
    assert "kappa" in pair.message and "shared mistakes" in pair.message


def test_error_results_and_results_of_another_split_are_skipped(labels):
    honest = noisy(labels, 0.6, seed=1)
    results = [
        result("ann", honest, weights="abc"),
        result("ben", None, weights="abc", error="model.py line 3: SyntaxError", error_kind="syntax"),
        result("cat", honest[:100], weights="abc"),  # graded on a 100-image split: not comparable
        result("dan", noisy(labels, 0.6, seed=2)),
    ]
    assert copied_pairs(results, labels, SETTINGS) == []


def test_the_metrics_follow_their_definitions():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    a = np.array([0, 1, 2, 3, 4, 5, 0, 0, 0, 0])  # right on 6 images
    b = np.array([0, 1, 2, 9, 9, 5, 0, 1, 9, 0])  # right on 4; both wrong on the last 4, the same class on 2
    metrics = pair_metrics(np.stack([a, b]), labels)
    observed = (4 + 4) / 10  # both right on 0, 1, 2, 5; both wrong on 6, 7, 8, 9
    expected = 0.6 * 0.4 + 0.4 * 0.6
    assert metrics.kappa[0, 1] == pytest.approx((observed - expected) / (1 - expected))
    assert metrics.agreement[0, 1] == pytest.approx(0.6)
    assert metrics.shared_mistakes[0, 1] == 4 and metrics.shared_mistake_agreement[0, 1] == pytest.approx(0.5)
    assert np.allclose(metrics.kappa, metrics.kappa.T)


def test_matrix_products_agree_with_a_pair_by_pair_count(labels):
    rng = np.random.default_rng(3)
    predictions = np.stack([noisy(labels, accuracy, seed) for seed, accuracy in enumerate(rng.uniform(0.2, 0.9, 7))])
    metrics = pair_metrics(predictions, labels)
    for i, j in combinations(range(len(predictions)), 2):
        a, b = predictions[i], predictions[j]
        both_wrong = (a != labels) & (b != labels)
        assert metrics.agreement[i, j] == pytest.approx(np.mean(a == b))
        assert metrics.shared_mistakes[i, j] == both_wrong.sum()
        assert metrics.shared_mistake_agreement[i, j] == pytest.approx(np.mean(a[both_wrong] == b[both_wrong]))


def test_kappa_is_undefined_for_two_perfect_models_and_they_are_flagged_as_identical(labels):
    pairs = copied_pairs([result("ann", labels.copy()), result("ben", labels.copy())], labels, SETTINGS)
    assert pairs[0].kappa is None and pairs[0].shared_mistake_agreement is None
    assert pairs[0].reasons == ["identical-predictions"]


def test_the_summary_lists_copied_pairs_and_flagged_students_literally(tmp_path, labels):
    original = noisy(labels, 0.6, seed=1)
    results = [result("a" + HOSTILE, original), result("b" + HOSTILE, changed(original, 0.02, seed=4))]
    for number, graded in enumerate(results):
        (tmp_path / f"{number}.json").write_text(graded.model_dump_json())
    report = compare_class(tmp_path, labels, SETTINGS)
    assert [pair.student_a for pair in report.pairs] == ["a" + HOSTILE]
    assert json.loads((tmp_path / COPIES_FILE).read_text())["students"] == 2
    console = terminal()
    assert summary_main(results=tmp_path, console=console) == 0
    output = console.file.getvalue()
    assert_printed_literally(output)
    assert "Possibly copied models" in output and "2 student(s) flagged as possible copies" in output


def test_a_copies_file_from_an_older_grader_is_ignored(tmp_path):
    (tmp_path / COPIES_FILE).parent.mkdir()
    (tmp_path / COPIES_FILE).write_text('{"not": "a report"}')
    assert read_copy_report(tmp_path) is None
    write_copy_report(CopyReport(students=0, images=0, rule="r"), tmp_path)
    assert read_copy_report(tmp_path) == CopyReport(students=0, images=0, rule="r")


def test_grade_all_compares_the_class_and_writes_the_pairs(tmp_path, tiny_split):
    rubric = write_rubric(tmp_path / "rubric.yaml", write_npz(tiny_split, tmp_path / "split.npz"), tiny_split)
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    for name in ("ann", "ben", "cat"):
        fake_submission(submissions, name)
    (submissions / "ben" / "weights.pth").write_bytes((submissions / "ann" / "weights.pth").read_bytes())
    options = BatchOptions(rubric=rubric, submissions=submissions, results=results, sandbox=FakeBackend(), workers=1)
    grade_all(options, Console(file=io.StringIO()))
    report = read_copy_report(results)
    assert report is not None and (report.students, report.images) == (3, len(tiny_split))
    assert [(p.student_a, p.student_b, p.reasons) for p in report.pairs] == [
        ("ann", "ben", ["identical-weights", "identical-predictions"])
    ]
    assert sorted(path.name for path in results.glob("*.json")) == ["ann.json", "ben.json", "cat.json"]


def test_a_student_regraded_alone_is_compared_with_the_class(tmp_path, tiny_split):
    from grader.grade_one import main as grade_one

    rubric = write_rubric(tmp_path / "rubric.yaml", write_npz(tiny_split, tmp_path / "split.npz"), tiny_split)
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    for name in ("ann", "cat"):
        fake_submission(submissions, name)
    options = BatchOptions(rubric=rubric, submissions=submissions, results=results, sandbox=FakeBackend(), workers=1)
    grade_all(options, Console(file=io.StringIO()))
    assert read_copy_report(results).pairs == []
    fake_submission(submissions, "ben")  # late, graded on its own, with ann's weights
    (submissions / "ben" / "weights.pth").write_bytes((submissions / "ann" / "weights.pth").read_bytes())
    assert grade_one(student="ben", rubric=rubric, submissions=submissions, results=results,
                     sandbox=FakeBackend(), console=Console(file=io.StringIO())) == 0  # fmt: skip
    report = read_copy_report(results)
    assert report.students == 3 and [(p.student_a, p.student_b) for p in report.pairs] == [("ann", "ben")]


def test_calibration_reports_independent_pairs_clean_and_a_copy_flagged(tmp_path, labels, capsys):
    from benchmarks.integrity_calibrate import main

    def calibrate(arguments: list[str]) -> int:
        return main.main(arguments, standalone_mode=False)

    published, honest = tmp_path / "published", tmp_path / "honest"
    published.mkdir()
    honest.mkdir()
    for seed in range(3):
        (published / f"m{seed}_predictions.json").write_text(json.dumps(noisy(labels, 0.6, seed).tolist()))
    original = noisy(labels, 0.6, seed=7)
    (honest / "lenet_predictions.json").write_text(json.dumps(original.tolist()))
    (tmp_path / "copy_predictions.json").write_text(json.dumps(changed(original, 0.03, seed=8).tolist()))
    np.savez(tmp_path / "test.npz", labels=labels)
    args = ["--predictions", str(published), "--labels", str(tmp_path / "test.npz"), "--honest", str(honest)]
    copy = ["--copy", str(honest / "lenet_predictions.json"), str(tmp_path / "copy_predictions.json")]
    assert calibrate(args + copy) == 0
    output = capsys.readouterr().out
    assert "independent pairs: 6" in output and "flagged by the rule: 0" in output
    assert "flagged lenet ~ copy" in output
    # Two "published" models that the rule takes for a copy: the calibration fails.
    (published / "twin_predictions.json").write_text(json.dumps(changed(noisy(labels, 0.6, 0), 0.03, 9).tolist()))
    assert calibrate(args + copy) == 1
    assert "FLAGGED m0 ~ twin" in capsys.readouterr().out


# --- copies judged on the logits: the course's secret fingerprint images -----------------------------------

FINGERPRINT_IMAGES = 400


def classmate_logits(labels: np.ndarray, seed: int) -> np.ndarray:
    """A model's logits: what every model sees in an image (shared by all, fixed per image), the true class's
    boost, and what this model learned on its own (its seed); about 70% accurate."""
    shared = np.stack([np.random.default_rng([index, 999]).normal(0, 1.2, 10) for index in range(len(labels))])
    own = np.random.default_rng(seed).normal(0, 1.0, shared.shape)
    return shared + own + 3.5 * np.eye(10)[labels]


def second_choice(logits: np.ndarray, within: float = 0.75) -> np.ndarray:
    """Issue 22's third evasion: a classmate's logits, answering the runner-up wherever the top two lie within 0.75."""
    swapped = logits.copy()
    order = np.argsort(-logits, axis=1)
    rows = np.arange(len(logits))
    top, runner_up = logits[rows, order[:, 0]], logits[rows, order[:, 1]]
    close = rows[top - runner_up < within]
    swapped[close, order[close, 0]], swapped[close, order[close, 1]] = runner_up[close], top[close]
    return swapped


def grade_class_answering(tmp_path, answers: dict[str, np.ndarray], labels: np.ndarray):
    """grade --all through the fake sandbox, each student answering its logits for whichever test image it is
    shown (in the secret order); the course secret fixed, so the fingerprint images are the same every run."""
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    split = LabelledImages(images=images, labels=labels.astype(np.int64), source="fingerprint split")
    rubric = write_rubric(tmp_path / "rubric.yaml", write_npz(split, tmp_path / "split.npz"), split,
                          integrity={"permute_order": True, "perturbation_sample": 0, "train_sample": 0})  # fmt: skip
    (tmp_path / ".grader-secret").write_text("7a" * 32 + "\n")
    position = {image.tobytes(): index for index, image in enumerate(images)}

    def student(logits: np.ndarray):
        def run(job):
            shown = np.load(job.images_file, allow_pickle=False)
            return logits[[position[image.tobytes()] for image in shown]].astype(np.float32)

        return run

    for name in answers:
        fake_submission(tmp_path / "submissions", name)
    backend = FakeBackend({name: student(logits) for name, logits in answers.items()})
    options = BatchOptions(rubric=rubric, submissions=tmp_path / "submissions", results=tmp_path / "results",
                           sandbox=backend, workers=1)  # fmt: skip
    grade_all(options, Console(file=io.StringIO()))
    return read_copy_report(tmp_path / "results")


def test_a_classmates_weights_answering_the_second_choice_are_paired_by_their_logits(tmp_path):
    labels = np.arange(FINGERPRINT_IMAGES) % 10
    ann = classmate_logits(labels, seed=1)
    answers = {"ann": ann, "ben": second_choice(ann)} | {name: classmate_logits(labels, seed) for name, seed in
                                                          (("cat", 2), ("dan", 3))}  # fmt: skip
    changed_answers = (answers["ben"].argmax(1) != ann.argmax(1)).mean()
    assert 0.2 < changed_answers < 0.4  # a third of its answers differ from its classmate's
    report = grade_class_answering(tmp_path, answers, labels)
    assert [(pair.student_a, pair.student_b, pair.reasons) for pair in report.pairs] == [
        ("ann", "ben", ["logit-correlation"])
    ], "the copy is paired; three independently trained classmates are not"
    pair = report.pairs[0]
    assert pair.logit_correlation > 0.99 and pair.kappa < pair.kappa_bar, "the mistakes alone would not pair them"
    assert "weigh the wrong classes alike" in pair.message and "0.90" in pair.message
    assert (report.fingerprint_images, report.fingerprinted_students) == (FINGERPRINT_IMAGES, 4)


def test_independent_models_are_not_alike_by_their_logits_however_accurate(labels):
    """Two models right on nearly everything put their largest logit on the same class; the fingerprint leaves the
    true class out, so only how each weighs the wrong classes is compared."""
    from grader.integrity.fingerprint import correlations, wrong_class_profile

    one_hot = [np.eye(10)[noisy(labels, 0.97, seed)] * 8 for seed in (1, 2)]
    soft = [classmate_logits(labels[:400], seed) for seed in (1, 2)]
    copy = 2.5 * second_choice(soft[0]) - 4  # scaled and shifted: the standardised profile is the same
    every = (*one_hot, *soft, copy)
    profiles = np.stack([wrong_class_profile(logits, labels[: len(logits)])[:400] for logits in every])
    alike = correlations(profiles)
    assert alike[0, 1] < 0.05 and alike[2, 3] < 0.7 < 0.99 < alike[2, 4]


def test_a_copies_file_without_logits_still_reads(tmp_path):
    older = {"students": 2, "images": 10, "rule": "r", "pairs": [{
        "student_a": "ann", "student_b": "ben", "reasons": ["error-consistency"], "identical_predictions": False,
        "identical_weights": False, "agreement": 0.9, "kappa": 0.7, "kappa_bar": 0.6, "shared_mistakes": 30,
        "shared_mistake_agreement": 0.8, "accuracy_a": 0.6, "accuracy_b": 0.6, "message": "m"}]}  # fmt: skip
    (tmp_path / COPIES_FILE).parent.mkdir()
    (tmp_path / COPIES_FILE).write_text(json.dumps(older))
    report = read_copy_report(tmp_path)
    assert report.pairs[0].kappa == 0.7 and report.pairs[0].logit_correlation is None
    assert report.fingerprint_images == 0


def test_only_fingerprints_of_the_same_images_are_compared_and_a_damaged_one_is_left_out(labels):
    from grader.integrity.copies import compare_fingerprints
    from grader.integrity.fingerprint import make_fingerprint
    from grader.integrity.model import IntegrityReport

    logits = classmate_logits(labels[:400], seed=1)

    def graded(student: str, sample: str, values: str | None = None) -> Result:
        fingerprint = make_fingerprint(logits, labels[:400], sample)
        if values is not None:
            fingerprint = fingerprint.model_copy(update={"values": values})
        return result(student, noisy(labels, 0.6, len(student)), integrity=IntegrityReport(fingerprint=fingerprint))

    found = [graded("ann", "course"), graded("ben", "course"), graded("cat", "course"),
             graded("dan", "an older secret"), graded("eve", "course", values="not base64!")]  # fmt: skip
    compared = compare_fingerprints(found)
    assert (compared.students, compared.images) == (3, 400)
    assert compared.correlation[0, 1] == pytest.approx(1.0, abs=1e-3)
    assert np.isnan(compared.correlation[0, 3]) and np.isnan(compared.correlation[0, 4])
