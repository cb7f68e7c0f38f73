"""`make bench-integrity`: the integrity checks on real models, graded as a class the way a TA grades one.

1. Builds the students of benchmarks/integrity_models.py (the networks are trained once, cached under
   build/bench-integrity/train/): honest, lenet5-seed-2 (the reference LeNet-5's recipe with another seed: with
   reference-lenet5, an independent pair of one architecture), trained-on-test,
   order-replay, lookup-table, fine-tuned-copy and issue 22's three evasions (nearest-neighbour-table,
   table-with-lenet-fallback, second-choice-copy); and copies reference/lenet5, reference/resnet20 and
   submissions/example into the same class.
2. Pins a copy of rubric.yaml to the test split (and the training split, for the generalisation gap) with
   `grader pin-split`, then runs `grader grade --all --sandbox local` on the class.
3. Prints each student's test accuracy, integrity figures and flags (`result.integrity`) and the copied pairs
   (results/integrity/copies.json); then, for the calibration, the logit correlation and kappa of every pair of
   independently trained models and of every copy; what is missing is said, never a crash.
4. Times `grader grade` of LeNet-5 (and of the honest student) with the integrity passes and without them
   (`integrity:` permute_order false, perturbation_sample 0, train_sample 0 in a second rubric copy).

It ends with one `expect ...: ok|FAILED` line per expectation of issues #14 and #22 and `integrity <passed>/<total>
expectations`; the exit status is 0 only when every expectation holds.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
HONEST = ("honest", "lenet5-seed-2")
CHEATS = (
    "trained-on-test", "order-replay", "lookup-table", "fine-tuned-copy", "nearest-neighbour-table",
    "table-with-lenet-fallback", "second-choice-copy",
)  # fmt: skip
# Copies of honest's weights: each must be paired with honest (and may be with the other copy), with nobody else.
COPIES = ("fine-tuned-copy", "second-choice-copy")
REFERENCES = {"reference-lenet5": REPO / "reference" / "lenet5", "reference-resnet20": REPO / "reference" / "resnet20"}
EXAMPLE = REPO / "submissions" / "example"
# The example ships the reference LeNet-5's weights file itself (same recipe, same run): the copy check must pair them.
KNOWN_PAIR = frozenset({"reference-lenet5", "example"})
# The flag each cheat must carry, and the codes that are also right for it.
EXPECTED_FLAGS = {
    "trained-on-test": ("no-generalisation-gap", set()),
    "order-replay": ("order-replay", set()),
    # A table of the test images knows nothing of the training images: the gap rule is right about it too.
    "lookup-table": ("perturbation-collapse", {"no-generalisation-gap"}),
    # Issue 22: tables that survived the earlier fixed perturbations and knew the earlier every-50th training sample.
    "nearest-neighbour-table": ("perturbation-collapse", {"no-generalisation-gap"}),
    "table-with-lenet-fallback": ("perturbation-collapse", {"no-generalisation-gap"}),
}
TARGET_RATIO = 1.30  # the issue: the integrity passes add under 30% of the plain grading time for LeNet-5
PLAIN = {"permute_order": False, "perturbation_sample": 0, "train_sample": 0, "fingerprint_sample": 0}


def say(text: str = "") -> None:
    print(text, flush=True)


def grader_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader", *args]


def run_grader(*args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    completed = subprocess.run(grader_command(*args), capture_output=True, text=True, cwd=REPO)
    if log:
        log.write_text(completed.stdout + completed.stderr)
    return completed


# --- the class ---------------------------------------------------------------------------------


def copy_submission(source: Path, target: Path, names: tuple[str, ...] | None = None) -> None:
    from grader.intake.class_folders import SAMPLE_MARKER  # the copy is graded as a student, not as the shipped sample

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.name != SAMPLE_MARKER and (names is None or path.name in names):
            shutil.copyfile(path, target / path.name)


def edit_rubric(path: Path, section: str, values: dict) -> None:
    """Sets keys of one section of the bench's own copy of the rubric (its comments are not kept)."""
    import yaml

    data = yaml.safe_load(path.read_text())
    if not isinstance(data.get(section), dict):
        data[section] = {}
    data[section].update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=4096))


def pin_rubrics(course: Path, data: Path, train_data: Path) -> tuple[Path, Path]:
    """course/rubric.yaml (the repository's rubric pinned to data and train_data) and course/rubric-plain.yaml
    (the same with the integrity passes off). The course folder also keeps the course secret between runs."""
    course.mkdir(parents=True, exist_ok=True)
    rubric = course / "rubric.yaml"
    shutil.copyfile(REPO / "rubric.yaml", rubric)
    for arguments in ((str(data.resolve()),), (str(train_data.resolve()), "--train")):
        completed = run_grader("pin-split", *arguments, "--rubric", str(rubric))
        if completed.returncode:
            raise SystemExit(f"grader pin-split {' '.join(arguments)} failed:\n{completed.stdout}{completed.stderr}")
        say(f"  {completed.stdout.strip()}")
    plain = course / "rubric-plain.yaml"
    shutil.copyfile(rubric, plain)
    edit_rubric(plain, "integrity", PLAIN)
    return rubric, plain


def build_class(cache: Path, data: Path, train_data: Path) -> tuple[Path, dict[str, dict]]:
    from benchmarks.integrity_models import build_students
    from grader.datasets import load_split

    submissions = cache / "class" / "submissions"
    if submissions.exists():
        shutil.rmtree(submissions)
    say("building the students (networks trained once, cached in build/bench-integrity/train/)")
    figures = build_students(
        cache, submissions, load_split(train_data, part="train"), load_split(data), log=lambda text: say(f"  {text}")
    )
    for name, folder in REFERENCES.items():
        copy_submission(folder, submissions / name, ("model.py", "weights.pth"))
    copy_submission(EXAMPLE, submissions / "example")
    return submissions, figures


# --- reading the results -----------------------------------------------------------------------


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def percent(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def flag_codes(result: dict | None) -> list[str] | None:
    integrity = (result or {}).get("integrity")
    if not isinstance(integrity, dict):
        return None
    return [flag.get("code", "?") for flag in integrity.get("flags") or []]


def show_student(name: str, result: dict | None, trained: dict | None) -> None:
    if result is None:
        say(f"{name}: no result")
        return
    if result.get("status") != "graded":
        say(f"{name}: {result.get('status')} ({result.get('error_kind')}: {str(result.get('error'))[:200]})")
        return
    host = ""
    if trained:
        host = f" (host: train sample {percent(trained['train_accuracy'])}, test {percent(trained['test_accuracy'])})"
    say(f"{name}: test accuracy {percent(result.get('accuracy'))}{host}")
    integrity = result.get("integrity")
    if not isinstance(integrity, dict):
        say("  integrity: missing from the result (the per-student checks did not run or have not landed)")
        return
    perturbed = ", ".join(f"{k} {percent(v)}" for k, v in (integrity.get("perturbed_accuracy") or {}).items())
    say(
        f"  order permuted {integrity.get('order_permuted')}; sample of {integrity.get('sample_images')}: "
        f"{percent(integrity.get('sample_accuracy'))}, perturbed: {perturbed or '-'}"
    )
    gap = integrity.get("generalisation_gap")
    say(
        f"  train sample of {integrity.get('train_images')}: {percent(integrity.get('train_accuracy'))}, "
        f"generalisation gap {'-' if gap is None else f'{gap:+.1%}'}"
    )
    for missing in integrity.get("not_measured") or []:
        say(f"  not measured: {missing}")
    for flag in integrity.get("flags") or []:
        say(f"  FLAG {flag.get('code')}: {flag.get('message')}")
    if not integrity.get("flags"):
        say("  no flags")


def copy_pairs(copies: dict | None) -> list[tuple[frozenset, dict]]:
    pairs = (copies or {}).get("pairs") or []
    return [(frozenset({pair.get("student_a"), pair.get("student_b")}), pair) for pair in pairs]


def show_copies(copies: dict | None, path: Path) -> None:
    if copies is None:
        say(f"copied pairs: {path} is missing (the class copy check did not run or has not landed)")
        return
    pairs = copy_pairs(copies)
    say(f"copied pairs ({copies.get('students')} students compared on {copies.get('images')} images; rule: "
        f"{copies.get('rule')}): {len(pairs)}")  # fmt: skip
    for _, pair in pairs:
        kappa, correlation = pair.get("kappa"), pair.get("logit_correlation")
        say(
            f"  {pair.get('student_a')} ~ {pair.get('student_b')}: {', '.join(pair.get('reasons') or [])}; same class "
            f"{percent(pair.get('agreement'))}, kappa {'-' if kappa is None else f'{kappa:.3f}'}, shared mistakes "
            f"{pair.get('shared_mistakes')} ({percent(pair.get('shared_mistake_agreement'))} the same wrong class), "
            f"logit correlation {'-' if correlation is None else f'{correlation:.3f}'}"
        )


def labels_of(data: Path):
    from grader.datasets import load_split

    return load_split(data).labels


def show_calibration(results: dict[str, dict | None], labels) -> None:
    """The copy rule's two figures for every pair of independently trained models (none may reach a bar) and for
    every copy (each must), from the stored results: the fingerprints' logit correlation and the error kappa."""
    import numpy as np

    from grader.integrity.copies import compare_fingerprints, kappa_bar, pair_metrics
    from grader.integrity.model import IntegritySettings
    from grader.results.model import Result

    graded = {name: Result.model_validate(data) for name, data in results.items() if data and data.get("predictions")}
    names = [name for name in graded if graded[name].status == "graded"]
    if len(names) < 2:
        say("calibration: fewer than two graded students")
        return
    found = [graded[name] for name in names]
    correlation = compare_fingerprints(found).correlation
    predictions = np.stack([np.frombuffer(r.predictions.encode(), dtype=np.uint8) - ord("0") for r in found])
    metrics = pair_metrics(predictions, np.asarray(labels, dtype=np.uint8))
    settings = IntegritySettings()
    bars = kappa_bar(metrics, settings)
    independent = [n for n in (*HONEST, "trained-on-test", *REFERENCES) if n in names]
    copies = [("honest", name) for name in COPIES] + [tuple(sorted(KNOWN_PAIR)), COPIES]
    say(f"calibration (logit correlation bar {settings.copy_logit_correlation}; kappa bar by accuracy):")
    for label, pairs in (
        ("independent", [(a, b) for i, a in enumerate(independent) for b in independent[i + 1 :]]),
        ("copies", [pair for pair in copies if set(pair) <= set(names)]),
    ):
        values = []
        for a, b in pairs:
            i, j = names.index(a), names.index(b)
            values.append(correlation[i, j])
            say(f"  {label} {a} ~ {b}: logit correlation {correlation[i, j]:.3f}, kappa {metrics.kappa[i, j]:.3f} "
                f"(bar {bars[i, j]:.3f})")  # fmt: skip
        finite = [value for value in values if np.isfinite(value)]
        if finite:
            extreme = max(finite) if label == "independent" else min(finite)
            say(f"  {label}: {'largest' if label == 'independent' else 'smallest'} logit correlation {extreme:.3f}")


# --- expectations ------------------------------------------------------------------------------


@dataclass
class Expectation:
    text: str
    passed: bool
    detail: str


def partners(name: str, pairs: list[tuple[frozenset, dict]]) -> set[str]:
    return {other for members, _ in pairs if name in members for other in members - {name}}


def expect_clean(name: str, result: dict | None, pairs, copies_known: bool, allowed: set[str]) -> Expectation:
    codes = flag_codes(result)
    if result is None or result.get("status") != "graded":
        return Expectation(f"{name} clean", False, "not graded")
    if codes is None:
        return Expectation(f"{name} clean", False, "result.integrity missing")
    others = partners(name, pairs) - allowed
    detail = f"flags: {', '.join(codes) or 'none'}; copy pairs: {', '.join(sorted(partners(name, pairs))) or 'none'}"
    if not copies_known:
        detail += " (copies.json missing)"
    return Expectation(f"{name} clean", not codes and not others and copies_known, detail)


def expect_flagged(name: str, result: dict | None, pairs) -> Expectation:
    code, also = EXPECTED_FLAGS[name]
    text = f"{name} flagged ({code})"
    codes = flag_codes(result)
    if result is None or result.get("status") != "graded":
        return Expectation(text, False, "not graded")
    if codes is None:
        return Expectation(text, False, "result.integrity missing")
    wrong = (set(codes) - {code} - also) | {f"copy of {other}" for other in partners(name, pairs)}
    detail = f"flags: {', '.join(codes) or 'none'}; test accuracy {percent(result.get('accuracy'))}"
    if wrong:
        detail += f"; wrong reasons: {', '.join(sorted(wrong))}"
    return Expectation(text, code in codes and not wrong, detail)


def expect_copy(name: str, result: dict | None, pairs, copies_known: bool) -> Expectation:
    """A copy of honest's weights: paired with honest (and perhaps the other copy of it), no per-student flag."""
    codes = flag_codes(result)
    members = frozenset({"honest", name})
    reasons = next((pair.get("reasons") for found, pair in pairs if found == members), None)
    others = partners(name, pairs) - {"honest", *COPIES}
    detail = (
        "copies.json missing" if not copies_known
        else f"pair with honest: {', '.join(reasons) if reasons else 'absent'}; "
        f"per-student flags: {'missing' if codes is None else ', '.join(codes) or 'none'}"
        + (f"; also paired with {', '.join(sorted(others))}" if others else "")
    )  # fmt: skip
    return Expectation(f"{name} flagged (copy of honest)", bool(reasons) and codes == [] and not others, detail)


def expectations(results: dict[str, dict | None], copies: dict | None, cost: dict[str, float]) -> list[Expectation]:
    pairs = copy_pairs(copies)
    found = [expect_clean("honest", results.get("honest"), pairs, copies is not None, set(COPIES))]
    found += [expect_clean(name, results.get(name), pairs, copies is not None, set()) for name in HONEST[1:]]
    found += [expect_flagged(name, results.get(name), pairs) for name in EXPECTED_FLAGS]
    found += [expect_copy(name, results.get(name), pairs, copies is not None) for name in COPIES]
    for name in (*REFERENCES, "example"):
        allowed = set(KNOWN_PAIR - {name}) if name in KNOWN_PAIR else set()
        found.append(expect_clean(name, results.get(name), pairs, copies is not None, allowed))
    if copies is not None:
        known = KNOWN_PAIR in {members for members, _ in pairs}
        found.append(
            Expectation(
                "reference-lenet5 ~ example paired (the same weights.pth by construction)",
                known,
                "present" if known else "absent",
            )
        )
    if "lenet5" in cost:
        text, ratio = "integrity passes add < 30% to LeNet-5's grading", cost["lenet5"]
        found.append(Expectation(text, ratio < TARGET_RATIO, f"ratio integrity/plain {ratio:.3f}"))
    return found


# --- cost --------------------------------------------------------------------------------------


def time_grade(folder: Path, rubric: Path, results: Path) -> tuple[float, dict | None]:
    started = time.perf_counter()
    options = ("--rubric", str(rubric), "--results", str(results), "--sandbox", "local")
    completed = run_grader("grade", str(folder), *options)
    seconds = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"grader grade {folder} failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return seconds, read_json(results / f"{folder.name}.json")


def measure_cost(cache: Path, submissions: Path, rubric: Path, plain: Path, repeats: int) -> dict[str, float]:
    """Median wall time of `grader grade` (a whole process, model.py + weights.pth only, so that Exercise 2's
    model load does not hide the difference) with and without the integrity passes, alternated."""
    ratios = {}
    timing = cache / "timing"
    for label, student in (("lenet5", "reference-lenet5"), ("honest", "honest")):
        folder = timing / "submissions" / student
        copy_submission(submissions / student, folder, ("model.py", "weights.pth"))
        seconds = {"plain": [], "integrity": []}
        sandbox = {"plain": [], "integrity": []}
        for _ in range(repeats):
            for mode, rubric_file in (("plain", plain), ("integrity", rubric)):
                wall, result = time_grade(folder, rubric_file, timing / f"results-{mode}")
                seconds[mode].append(wall)
                inference = ((result or {}).get("timings") or {}).get("inference_seconds")
                if inference is not None:
                    sandbox[mode].append(inference)
        median = {mode: statistics.median(values) for mode, values in seconds.items()}
        inference = {mode: statistics.median(v) if v else None for mode, v in sandbox.items()}
        shown = {mode: "-" if v is None else f"{v:.2f} s" for mode, v in inference.items()}
        ratios[label] = median["integrity"] / median["plain"]
        say(
            f"{student}: grader grade {median['plain']:.2f} s plain, {median['integrity']:.2f} s with integrity "
            f"(median of {repeats}); inference in the sandbox {shown['plain']} plain, {shown['integrity']} with "
            "integrity"
        )
        say(f"ratio integrity/plain {label} {ratios[label]:.3f}")
    return ratios


@click.command(help=__doc__.splitlines()[0])
@click.option("--data", type=click.Path(path_type=Path), required=True, help="the test split to pin and grade on")
@click.option("--train-data", type=click.Path(path_type=Path), required=True, help="the training split")
@click.option("--cache", type=click.Path(path_type=Path), default=REPO / "build" / "bench-integrity")
@click.option("--repeats", type=click.IntRange(min=0), default=3, help="timed gradings per mode (0: skip the cost)")
def main(data: Path, train_data: Path, cache: Path, repeats: int) -> None:
    click.get_current_context().exit(run_bench(data, train_data, cache.resolve(), repeats))


def run_bench(data: Path, train_data: Path, cache: Path, repeats: int) -> int:

    submissions, figures = build_class(cache, data, train_data)
    say("pinning a copy of rubric.yaml")
    rubric, plain = pin_rubrics(cache / "course", data, train_data)
    results = cache / "class" / "results"
    if results.exists():
        shutil.rmtree(results)
    log = cache / "class" / "grade-all.log"
    say(f"grading the class: grader grade --all --sandbox local (log: {log})")
    started = time.perf_counter()
    completed = run_grader(
        "grade", "--all", "--rubric", str(rubric), "--submissions", str(submissions), "--results", str(results),
        "--sandbox", "local", "--force", log=log,
    )  # fmt: skip
    say(f"  exit status {completed.returncode} after {time.perf_counter() - started:.0f} s")
    if completed.returncode not in (0, 1):
        say(completed.stdout[-3000:] + completed.stderr[-3000:])

    say()
    students = sorted(path.name for path in submissions.iterdir() if path.is_dir())
    order = [*HONEST, *CHEATS, *REFERENCES, "example"]
    students = [name for name in order if name in students] + [name for name in students if name not in order]
    found = {name: read_json(results / f"{name}.json") for name in students}
    for name in students:
        show_student(name, found[name], figures.get(name))
    copies_path = results / "integrity" / "copies.json"
    copies = read_json(copies_path)
    show_copies(copies, copies_path)
    show_calibration(found, labels_of(data))

    cost = {}
    if repeats:
        say()
        say("cost of the integrity passes (rubric integrity: permute_order, perturbation_sample, train_sample off)")
        cost = measure_cost(cache, submissions, rubric, plain, repeats)

    say()
    checks = expectations(found, copies, cost)
    for check in checks:
        say(f"expect {check.text}: {'ok' if check.passed else 'FAILED'} ({check.detail})")
    passed = sum(check.passed for check in checks)
    say(f"integrity {passed}/{len(checks)} expectations")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
