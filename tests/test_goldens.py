"""Golden files: the stored result of a graded and of a failed submission, and the files of every export
format, compared byte for byte with tests/golden/. A changed result field or export column fails here;
if the change is meant, `pytest --update-goldens` rewrites the files, to be reviewed and committed.

A small class is graded through the fake sandbox with grade --all and exported with the export verb, as a
course would: alice on time, bob two days late with an override, carol's model.py broken, and in the roster
dan and zoë, who submitted nothing. Only what must vary is normalised: timings, the grader's version and
the temporary folder.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import (
    TINY_MODEL,
    BulkZip,
    FakeBackend,
    FakeFailure,
    fake_submission,
    logits_with_accuracy,
    normalise_result_json,
    write_npz,
    write_rubric,
)
from rich.console import Console

from grader.answers.similarity import METHOD_ENV
from grader.batch.export import export_results
from grader.batch.run import BatchOptions, grade_all
from grader.export.base import EXPORTERS
from grader.intake.blackboard import import_bulk_download
from grader.policy.late import AttemptPolicy

ANSWERS = (
    "1. Yes: an autoencoder learns a compressed code of its input without labels.\n"
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n"
    "3. They need much data and compute, overfit small sets and are hard to interpret.\n"
    "4. They approximate nonlinear functions that fit the data well.\n"
)
LATE = {"due": "2022-11-01T23:59:00-06:00", "penalty_per_day": 0.1, "cap": 0.5}
EXPORT = {"column_name": "Lab 8", "column_id": "123456", "points_possible": 104, "feedback": True}
OVERRIDES = {"bob": {"items": {"exercise2": 4}, "reason": "answer 3 accepted <by hand>", "decided_by": "TA Kim"}}
ROSTER = "alice\nbob\ncarol\ndan\nzoë\n"


@pytest.fixture(scope="module")
def golden_class(tmp_path_factory, tiny_split) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("golden-class")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(METHOD_ENV, "tfidf")  # the answer scorer every machine has, so the figures are the same
        patch.delenv("CIFAR10_ROOT", raising=False)
        write_npz(tiny_split, root / "split.npz")
        # The split's path relative to the rubric: the rubric's hashes in the results do not name the folder.
        rubric = write_rubric(root / "rubric.yaml", Path("split.npz"), tiny_split, late=LATE, export=EXPORT)
        (root / "overrides.yaml").write_text(yaml.safe_dump(OVERRIDES))
        (root / "roster.txt").write_text(ROSTER, encoding="utf-8")
        submissions = root / "submissions"
        fake_submission(submissions, "alice", ANSWERS)
        fake_submission(submissions, "carol", model_source=TINY_MODEL + "\ndef broken(:\n    pass\n")
        bulk = BulkZip()
        bob = {"model.py": TINY_MODEL.encode(), "weights.pth": b"weights of bob", "answers.md": ANSWERS.encode()}
        bulk.attempt("bob", datetime(2022, 11, 3, 9, 30), bob)
        import_bulk_download(bulk.write(root / "gradebook.zip"), submissions, AttemptPolicy(), None)
        labels = tiny_split.labels
        sandbox = FakeBackend({
            "alice": logits_with_accuracy(labels, 0.75),
            "bob": logits_with_accuracy(labels, 0.5),
            "carol": FakeFailure("syntax", "model.py line 16: SyntaxError: invalid syntax"),
        })  # fmt: skip
        options = BatchOptions(rubric=rubric, submissions=submissions, results=root / "results", sandbox=sandbox)
        report = grade_all(options, Console(file=io.StringIO()))
    assert report.sandbox_runs == 3 and not report.crashed, report
    paths = SimpleNamespace(rubric=rubric, submissions=submissions, results=options.results, roster=root / "roster.txt")
    return SimpleNamespace(paths=paths, roots={str(root): "<class>", str(root.resolve()): "<class>"})


@pytest.mark.parametrize(("student", "golden_name"), [("alice", "graded"), ("carol", "failed")])
def test_the_stored_result_is_the_golden_one(golden_class, golden, student, golden_name):
    stored = (golden_class.paths.results / f"{student}.json").read_text(encoding="utf-8")
    golden.file(f"result/{golden_name}.json", normalise_result_json(stored, golden_class.roots))


@pytest.mark.parametrize("format_name", EXPORTERS.names())
def test_each_export_format_writes_the_golden_files(golden_class, golden, format_name, tmp_path):
    paths = golden_class.paths
    written = export_results(
        format_name=format_name, rubric=paths.rubric, results=paths.results, submissions=paths.submissions,
        out=tmp_path, roster=paths.roster, console=Console(file=io.StringIO()),
    )  # fmt: skip
    golden.folder(f"export/{format_name}", {path.name: path.read_bytes() for path in written})


def test_a_result_written_before_the_redesign_still_loads_and_exports():
    """results/<student>.json from the grader as it was before graded items became a registry (ddc4883)."""
    from grader.results.store import load_result

    old = load_result(Path(__file__).parent / "golden" / "legacy" / "result-before-the-redesign.json")
    assert old is not None and old.schema_version == 1
    assert old.points.by_item == {"exercise1": 64.24, "exercise2": 4.0} and old.points.total == 68.24
    assert [item.item for item in old.items] == ["exercise1", "exercise2"]
    assert old.notes == [] and old.run.sandboxed
