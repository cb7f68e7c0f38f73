"""Exporters: each file is parsed back and checked against the results it came from; a filled download is
compared byte for byte with the file it came from. The export verb is run on a class graded through the
fake sandbox: samples left out, the roster's students only, and who matched, is missing or unknown printed."""

import csv
import io
import re
import shutil
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from helpers import (
    TINY_MODEL,
    BulkZip,
    FakeBackend,
    fake_submission,
    logits_with_accuracy,
    write_npz,
    write_rubric,
)
from pydantic import BaseModel
from rich.console import Console

from grader.batch.export import export_results
from grader.batch.run import BatchOptions, grade_all
from grader.batch.summary import main as summary_main
from grader.cli import main as cli_main
from grader.export.base import ExportError, ExportSettings, defuse_formula, get_exporter
from grader.export.feedback import MAX_FEEDBACK_CHARS, feedback_text, without_host_paths
from grader.export.roster import read_roster, reconcile
from grader.intake.blackboard import import_bulk_download
from grader.intake.blackboard.manifest import MANIFEST
from grader.intake.class_folders import SAMPLE_MARKER, student_folders
from grader.policy.late import AttemptPolicy
from grader.report.html.student import REVIEW_WORDS as PAGE_REVIEW_WORDS
from grader.results.store import load_result, save_result

HEADER = "Lab 8 [Total Pts: 104 Score] |123456"


def result(student, total, status="graded", **extra):
    points = {"exercise1": None if total is None else total - 3.0, "exercise2": None if total is None else 3.0}
    points["total"] = total
    return {
        "student": student,
        "status": status,
        "accuracy": None if total is None else 0.6312,
        "per_class_accuracy": None if total is None else [0.5 + i / 100 for i in range(10)],
        "points": points,
        "error": None,
        "late": None,
        "overrides": [],
        **extra,
    }


@pytest.fixture
def results():
    return [
        result("alice", 66.1),
        result("bob", None, status="error", error="model.py line 12: NameError: name 'x' is not defined"),
        result(
            "carol",
            50.0,
            final_points={"exercise1": 47.0, "exercise2": 3.0, "total": 90.0},
            overrides=[{"item": "total", "points": 90, "reason": "regraded <by hand>", "decided_by": "TA Kim"}],
        ),
        result(
            "d.o'neil",
            80.0,
            final_points={"exercise1": 69.3, "exercise2": 2.7, "total": 72.0},
            late={"days_late": 1, "penalty_fraction": 0.1, "reason": "1 day late: -10% of the points"},
        ),
    ]


ROSTER = ["alice", "bob", "carol", "d.o'neil", "zoë"]


def settings(**changes):
    return ExportSettings(**{"column_name": "Lab 8", "column_id": "123456", **changes})


def read_back(path, delimiter=","):
    text = path.read_bytes().decode("utf-8")
    return text, list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def test_blackboard_csv_matches_students_by_username_and_the_column_by_id(tmp_path, results):
    [path] = get_exporter("bb").export(results, ROSTER, settings(), tmp_path / "exports")
    assert path == tmp_path / "exports" / "lab-8_blackboard.csv"
    text, rows = read_back(path)
    assert not text.startswith("\ufeff")
    assert rows[0] == ["Username", HEADER]
    assert dict(rows[1:]) == {"alice": "66.1", "bob": "", "carol": "90", "d.o'neil": "72", "zoë": "0"}
    for line in text.splitlines():
        assert re.fullmatch(r'"[^"]*"(,"[^"]*")*', line), line


def test_missing_submissions_can_be_blank(tmp_path, results):
    [path] = get_exporter("bb").export(results, ROSTER, settings(missing_submission="blank"), tmp_path)
    assert dict(read_back(path)[1][1:])["zoë"] == ""


def test_only_the_roster_is_exported_in_its_order(tmp_path, results):
    for name in ("bb", "bb-tab", "canvas", "full"):
        [path] = get_exporter(name).export(results, ["carol", "alice"], settings(), tmp_path / name)
        text = path.read_bytes().decode("utf-8-sig")
        assert "carol" in text and "alice" in text and "bob" not in text and "d.o'neil" not in text, name


def test_without_a_column_id_or_gradebook_the_export_refuses_to_invent_a_header(tmp_path, results):
    with pytest.raises(ExportError, match="column_id"):
        get_exporter("bb").export(results, ROSTER, settings(column_id=None), tmp_path)
    with pytest.raises(ValueError):
        ExportSettings(column_id="12a")


def test_tab_variant_is_a_tab_delimited_xls_with_feedback(tmp_path, results):
    [path] = get_exporter("bb-tab").export(results, ROSTER, settings(feedback=True), tmp_path)
    assert path.suffix == ".xls"
    _, rows = read_back(path, delimiter="\t")
    assert rows[0] == ["Username", HEADER, "Feedback to Learner", "Feedback Format"]
    by_user = {row[0]: row for row in rows[1:]}
    assert by_user["carol"][3] == "HTML"
    assert "set to 90 by TA Kim: regraded &lt;by hand&gt;" in by_user["carol"][2]
    assert by_user["carol"][2].startswith("Lab 8: 90 / 104<br>")
    assert "\n" not in by_user["bob"][2] and "NameError" in by_user["bob"][2]
    assert "1 day late" in by_user["d.o'neil"][2]
    assert by_user["zoë"][2] == "No submission was received for Lab 8."


DOWNLOAD_HEADER = [
    "Last Name",
    "First Name",
    "Username",
    "Student ID",
    "Last Access",
    "Availability",
    "Quiz 3 [Total Pts: 10] |664617",
    HEADER,
]
DOWNLOAD_ROWS = [
    ["Smith", "Alice", "alice", "1001", "2022-11-01", "Yes", "8", "Needs Grading"],
    ["Jones", "Bob", "bob", "1002", "2022-11-01", "Yes", "", "In Progress"],
    ["Müller", "Zoë", "zoë", "1005", "", "Yes", "7", "55"],
]


ON_ROSTER = ["alice", "bob", "zoë"]
BOM = {"utf-8-sig": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-8": b""}


def write_download(path, header, rows, delimiter, encoding, line_end="\r\n"):
    """A gradebook as Blackboard writes it: every value quoted; UTF-16 files carry their byte-order mark."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator=line_end).writerows([header, *rows])
    path.write_bytes(BOM.get(encoding, b"") + buffer.getvalue().encode(encoding.replace("-sig", "")))
    return path


def decoded_lines(path, encoding):
    data = path.read_bytes()
    assert data.startswith(BOM[encoding]), data[:4]
    return data[len(BOM[encoding]) :].decode(encoding.replace("-sig", "")).splitlines(keepends=True)


def quoted(cells, delimiter, line_end):
    return delimiter.join(f'"{cell}"' for cell in cells) + line_end


def test_filling_a_download_writes_only_username_and_the_labs_column_for_the_roster(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8-sig")
    [path] = get_exporter("bb").export(
        results, ON_ROSTER, settings(column_id=None), tmp_path / "out", gradebook=gradebook
    )  # fmt: skip
    lines = decoded_lines(path, "utf-8-sig")
    assert lines == [
        quoted(["Username", HEADER], ",", "\r\n"),
        quoted(["alice", "66.1"], ",", "\r\n"),
        quoted(["bob", ""], ",", "\r\n"),
        quoted(["zoë", "0"], ",", "\r\n"),  # in the course, no result: zero as the rubric says
    ]
    assert "Quiz 3" not in path.read_text(encoding="utf-8-sig")  # another lab's grades are not written back


def test_a_download_filled_with_all_columns_is_the_same_bytes_but_the_labs_cells(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8-sig")
    [path] = get_exporter("bb").export(
        results, ON_ROSTER, settings(), tmp_path / "out", gradebook=gradebook, all_columns=True
    )  # fmt: skip
    before, after = decoded_lines(gradebook, "utf-8-sig"), decoded_lines(path, "utf-8-sig")
    assert after[0] == before[0]
    assert after[1] == before[1].replace('"Needs Grading"', '"66.1"')
    assert after[2] == before[2].replace('"In Progress"', '""')
    assert after[3] == before[3].replace('"55"', '"0"')
    assert len(after) == 4  # carol has a result but is in neither the download nor the roster: not invented


@pytest.mark.parametrize(
    ("encoding", "line_end"), [("utf-16-le", "\r\n"), ("utf-16-le", "\n"), ("utf-8", "\n"), ("utf-8-sig", "\r\n")]
)
def test_a_filled_download_keeps_its_encoding_and_line_ends(tmp_path, results, encoding, line_end):
    gradebook = write_download(tmp_path / "gc.xls", DOWNLOAD_HEADER, DOWNLOAD_ROWS, "\t", encoding, line_end)
    [path] = get_exporter("bb-tab").export(
        results, ON_ROSTER, settings(), tmp_path / "out", gradebook=gradebook, all_columns=True
    )  # fmt: skip
    before, after = decoded_lines(gradebook, encoding), decoded_lines(path, encoding)
    assert after[0] == before[0] and after[0].endswith(line_end) and not after[0].endswith("\r" + line_end)
    assert after[3] == before[3].replace('"55"', '"0"')
    [path] = get_exporter("bb-tab").export(results, ON_ROSTER, settings(), tmp_path / "min", gradebook=gradebook)
    assert decoded_lines(path, encoding)[1] == quoted(["alice", "66.1"], "\t", line_end)


def test_filling_a_utf16_xls_download_with_all_columns_inserts_feedback_after_the_notes(tmp_path, results):
    header = DOWNLOAD_HEADER + ["Grading Notes", "Notes Format"]
    rows = [row + ["", "SMART_TEXT"] for row in DOWNLOAD_ROWS]
    gradebook = write_download(tmp_path / "gc.xls", header, rows, "\t", "utf-16-le")
    [path] = get_exporter("bb-tab").export(
        results, ON_ROSTER, settings(feedback=True), tmp_path, gradebook=gradebook, all_columns=True
    )  # fmt: skip
    back = list(csv.reader(decoded_lines(path, "utf-16-le"), delimiter="\t"))
    assert back[0] == header + ["Feedback to Learner", "Feedback Format"]
    alice = next(row for row in back if row[2] == "alice")
    assert alice[7] == "66.1" and alice[10].startswith("Lab 8: 66.1 / 104<br>") and alice[11] == "HTML"


def test_filling_a_download_with_feedback_writes_the_feedback_columns_only(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8")
    [path] = get_exporter("bb").export(results, ["bob"], settings(feedback=True), tmp_path, gradebook=gradebook)
    _, rows = read_back(path)
    assert rows[0] == ["Username", HEADER, "Feedback to Learner", "Feedback Format"]
    assert rows[1][:2] == ["bob", ""] and "NameError" in rows[1][2] and rows[1][3] == "HTML"


def test_column_names_with_brackets_are_found_by_the_trailing_id(tmp_path, results):
    header = ["Username", "Lab 8 [draft] [Total Pts: 104 Score] |777", HEADER.replace("123456", "778")]
    gradebook = write_download(tmp_path / "gc.csv", header, [["alice", "", ""]], ",", "utf-8")
    [path] = get_exporter("bb").export(
        results, ["alice"], settings(column_name="Lab 8 [draft]", column_id=None), tmp_path / "o", gradebook=gradebook
    )  # fmt: skip
    assert read_back(path)[1] == [["Username", header[1]], ["alice", "66.1"]]


def test_a_gradebook_without_the_column_is_an_error_naming_the_columns(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8")
    with pytest.raises(ExportError, match=r"no column with id 999.*Quiz 3"):
        get_exporter("bb").export(results, ON_ROSTER, settings(column_id="999"), tmp_path, gradebook=gradebook)
    with pytest.raises(ExportError, match="no grade column named 'Zebra'"):
        get_exporter("bb").export(
            results, ON_ROSTER, settings(column_name="Zebra", column_id=None), tmp_path, gradebook
        )


def test_a_column_named_like_the_assignment_is_suggested_and_the_recorded_assignment_is_filled(tmp_path, results):
    header = ["Username", "Quiz 3 [Total Pts: 10] |664617", "Lab 8 CNN [Total Pts: 104 Score] |555"]
    gradebook = write_download(tmp_path / "gc.csv", header, [["alice", "", ""]], ",", "utf-8")
    exporter = get_exporter("bb")
    with pytest.raises(ExportError) as near:
        exporter.export(results, ["alice"], settings(column_id=None), tmp_path, gradebook)
    assert "did you mean 'Lab 8 CNN'" in str(near.value) and "Quiz 3" not in str(near.value).split("?")[0]
    # The import recorded the assignment's name: its column is the lab's, and the TA is told which was filled.
    [path] = exporter.export(
        results, ["alice"], settings(column_id=None), tmp_path, gradebook, assignment_names=["Lab 8 CNN"]
    )
    header_back, alice = read_back(path)[1]
    assert header_back[1] == "Lab 8 CNN [Total Pts: 104 Score] |555" and alice[0] == "alice" and alice[1] != ""
    assert exporter.notes and "filled 'Lab 8 CNN [Total Pts: 104 Score] |555'" in exporter.notes[0]


def test_canvas_export_has_the_points_possible_row_and_its_own_assignment_id(tmp_path, results):
    [path] = get_exporter("canvas").export(results, ROSTER, settings(canvas_assignment_id="4321"), tmp_path)
    _, rows = read_back(path)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 8 (4321)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "104.00"]
    assert {row[3]: row[5] for row in rows[2:]} == {
        "alice": "66.1",
        "bob": "",
        "carol": "90",
        "d.o'neil": "72",
        "zoë": "0",
    }
    [path] = get_exporter("canvas").export(results, ROSTER, settings(), tmp_path / "no-id")
    assert read_back(path)[1][0][5] == "Lab 8"  # Blackboard's column id is not a Canvas id


CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz (99)", "Lab 8 CNN (4321)"]
CANVAS_ROWS = [
    ["    Points Possible", "", "", "", "", "10.00", "104.00"],
    ["Smith, Alice", "7", "", "alice", "A", "9", ""],
    ["Jones, Bob", "8", "", "bob", "A", "7", "12"],
]


def write_canvas_download(path):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([CANVAS_HEADER, *CANVAS_ROWS])
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    return path


def test_canvas_fills_a_download_by_assignment_id_with_its_identity_columns_only(tmp_path, results):
    gradebook = write_canvas_download(tmp_path / "canvas.csv")
    exporter = get_exporter("canvas")
    [path] = exporter.export(results, ["alice"], settings(canvas_assignment_id="4321"), tmp_path / "o", gradebook)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data
    assert data.decode("utf-8-sig").splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,Lab 8 CNN (4321)",
        "    Points Possible,,,,,104.00",
        '"Smith, Alice",7,,alice,A,66.1',
    ]
    [path] = exporter.export(
        results, ["alice"], settings(canvas_assignment_id="4321"), tmp_path / "all", gradebook, all_columns=True
    )  # fmt: skip
    before, after = gradebook.read_bytes().splitlines(), path.read_bytes().splitlines()
    assert after[:2] == before[:2] and after[2] == before[2].replace(b",A,9,", b",A,9,66.1") and len(after) == 3


def test_canvas_names_a_missing_assignment_id_and_suggests_the_near_name(tmp_path, results):
    gradebook = write_canvas_download(tmp_path / "canvas.csv")
    with pytest.raises(ExportError, match=r"no assignment with id 1234 .*canvas_assignment_id.*'Lab 8 CNN \(4321\)'"):
        get_exporter("canvas").export(results, ["alice"], settings(canvas_assignment_id="1234"), tmp_path, gradebook)
    with pytest.raises(ExportError, match=r'did you mean .*canvas_assignment_id: "4321"'):
        get_exporter("canvas").export(results, ["alice"], settings(), tmp_path, gradebook)


def test_full_csv_has_every_component_per_student(tmp_path, results):
    results[0]["error"] = "=HYPERLINK(1)"
    [path] = get_exporter("full").export(results, ROSTER, settings(), tmp_path)
    frame = pd.read_csv(path, encoding="utf-8-sig").set_index("student")
    assert list(frame.index) == ROSTER
    assert frame.loc["alice", "points_total"] == 66.1
    assert frame.loc["carol", "points_total"] == 50.0
    assert frame.loc["carol", "final_total"] == 90.0
    assert "total=90 by TA Kim" in frame.loc["carol", "overrides"]
    assert frame.loc["d.o'neil", "days_late"] == 1
    assert pd.isna(frame.loc["bob", "final_total"])
    assert frame.loc["bob", "status"] == "error" and "NameError" in frame.loc["bob", "error"]
    assert frame.loc["zoë", "status"] == "missing"
    assert frame.loc["zoë", "grade"] == 0
    assert frame.loc["alice", "accuracy_truck"] == pytest.approx(0.59)
    assert frame.loc["alice", "error"] == "'=HYPERLINK(1)"


def test_results_may_be_pydantic_objects(tmp_path):
    class Result(BaseModel):
        student: str
        status: str
        points: dict

    [path] = get_exporter("bb").export(
        [Result(student="amy", status="graded", points={"total": 10})], ["amy"], settings(), tmp_path
    )
    assert read_back(path)[1][1] == ["amy", "10"]


def test_exports_leave_no_temporary_files(tmp_path, results):
    out = tmp_path / "exports"
    paths = [
        path
        for name in ("bb", "bb-tab", "canvas", "full")
        for path in get_exporter(name).export(results, ROSTER, settings(), out)
    ]
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in paths)


def test_unknown_exporter_suggests_the_closest_name():
    with pytest.raises(ExportError, match="did you mean 'canvas'"):
        get_exporter("canvs")
    with pytest.raises(ExportError, match="did you mean 'bb'"):
        get_exporter("blackboard")


def test_feedback_for_an_error_without_points():
    text = feedback_text(result("bob", None, status="error", error="timed out after 300 s"), settings())
    assert text == (
        "Your submission could not be fully graded.\n"
        "Message recorded (it can quote your code and its output): timed out after 300 s"
    )


# --- the feedback: the short form of the student's report --------------------------------------------------


def reported(**changes):
    """A graded result as results/<student>.json holds it: items, baselines, answers, late and an override."""
    question = {
        "number": 1,
        "points": 0.5,
        "max_points": 1.0,
        "reason": "0.5/1; 2 of 6 key ideas; missing: autoencoder.",
    }
    data = result(
        "dave",
        70.0,
        final_points={"exercise1": 61.2, "exercise2": 4.0, "total": 65.2},
        items=[
            {"item": "exercise1", "points": 68.0, "max_points": 100.0, "reason": "accuracy 63.12% on the anchors"},
            {"item": "exercise2", "points": 2.0, "max_points": 4.0, "reason": "2 of 4 answers earned points"},
        ],
        comparison=[
            {"baseline": "lenet5", "accuracy": 0.6012, "difference": 0.03, "beats": True},
            {"baseline": "resnet20", "accuracy": 0.9105, "difference": -0.2793, "beats": False},
        ],
        answers={"questions": [question, {**question, "number": 2, "points": 1.0, "reason": "1/1; all key ideas."}]},
        late={"days_late": 1, "penalty_fraction": 0.1, "reason": "1 day late: -10% of the points"},
        overrides=[{"item": "exercise2", "points": 4, "reason": "answer 1 accepted", "decided_by": "TA Kim"}],
    )
    return {**data, **changes}


def test_feedback_is_the_short_form_of_the_report():
    lines = feedback_text(reported(), settings()).splitlines()
    assert lines[0] == "Lab 8: 65.2 / 104"
    assert "Exercise 1: 61.2 / 100" in lines and "Exercise 2: 4 / 4" in lines
    assert "Test accuracy: 63.12%" in lines
    assert "  lenet5 baseline 60.12%: 3.00 points above" in lines
    assert "  resnet20 baseline 91.05%: 27.93 points below" in lines
    assert "Late: 1 day late: -10% of the points" in lines
    assert "Exercise 2 set to 4 by TA Kim: answer 1 accepted" in lines
    assert "  Question 1: 0.5 / 1 - 0.5/1; 2 of 6 key ideas; missing: autoencoder." in lines
    assert "  Question 2: 1 / 1 - 1/1; all key ideas." in lines


def test_feedback_says_a_ta_will_read_an_answer_awaiting_review_in_the_pages_words():
    data = reported()
    questions = data["answers"]["questions"]
    data["answers"] = {"questions": [{**questions[0], "needs_review": True}, {**questions[1], "needs_review": False}]}
    lines = feedback_text(data, settings()).splitlines()
    first = lines.index("  Question 1: 0.5 / 1 - 0.5/1; 2 of 6 key ideas; missing: autoencoder.")
    assert lines[first + 1] == f"    {PAGE_REVIEW_WORDS}"
    assert lines.count(f"    {PAGE_REVIEW_WORDS}") == 1  # question 2 waits for nobody


def test_feedback_gives_the_tas_comment_instead_once_the_review_is_decided():
    data = reported()
    data["answers"]["questions"][0]["needs_review"] = True
    decision = {"subject": "q1", "item": "exercise2", "question": 1, "points": 0.75, "comment": "Close enough.",
                "decided_by": "Kim", "decided_at": "2026-03-01T10:00:00Z", "status": "applied"}  # fmt: skip
    lines = feedback_text({**data, "decisions": [decision]}, settings()).splitlines()
    assert "  Question 1: 0.75 / 1 - graded by Kim" in lines and "    TA's comment: Close enough." in lines
    assert PAGE_REVIEW_WORDS not in "\n".join(lines)
    reopened = feedback_text({**data, "decisions": [{**decision, "status": "reopened"}]}, settings())
    assert f"    {PAGE_REVIEW_WORDS}" in reopened.splitlines() and "Close enough." not in reopened


def test_feedback_names_no_host_path():
    errors = {
        "submissions/dave: no weights file; save torch.save(model.state_dict(), 'weights.pth')": "no weights file;",
        "/srv/ta/lab8/submissions/dave/weights.pth: 1100 MB is over the 1024 MB limit": "weights.pth: 1100 MB",
        'File "/usr/lib/python3/dist-packages/torch/nn/modules/module.py", line 3, in load': '"module.py", line 3',
    }
    for error, kept in errors.items():
        text = feedback_text(reported(status="error", error=error), settings())
        assert kept in text and "submissions" not in text and "/dave" not in text and "/usr" not in text, text
    for kept_as_is in ("model.py line 12: NameError: name 'dave' is not defined", "shape 3 / 10 at http://x.org/a/b"):
        assert without_host_paths(kept_as_is, "dave") == kept_as_is


def test_feedback_from_student_strings_is_plain_short_and_no_formula():
    hostile = '=HYPERLINK("http://evil")\x1b[31m\u202e' + "x" * 5000
    text = feedback_text(reported(status="error", error=hostile, final_points={"total": None}, points={}), settings())
    assert text.startswith("Your submission could not be fully graded.\nMessage recorded (it can quote your code")
    assert '=HYPERLINK("http://evil")' in text
    assert "\x1b" not in text and "\u202e" not in text and len(text) <= MAX_FEEDBACK_CHARS
    assert feedback_text(reported(), settings(column_name="-Lab 8")).startswith("'-Lab 8: 65.2 / 104")
    long_reasons = [{"number": n, "points": 0, "max_points": 1, "reason": "r" * 900} for n in range(1, 60)]
    text = feedback_text(reported(answers={"questions": long_reasons}), settings())
    assert len(text) <= MAX_FEEDBACK_CHARS and text.endswith("...")


# --- no cell starts a formula --------------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil","x")'
# The formula behind what some spreadsheets skip (whitespace) or read as the plain sign (a compatibility form).
HIDDEN_FORMULAS = {
    "leading space": " " + FORMULA,
    "newline": "\n" + FORMULA,
    "no-break space": "\u00a0" + FORMULA,
    "fullwidth equals": "\uff1d" + FORMULA[1:],
    "tab": "\t" + FORMULA,
}
FORMATS = {"bb": ",", "bb-tab": "\t", "canvas": ",", "full": ","}


def formula_cells(rows: list[list[str]]) -> list[str]:
    """The cells a spreadsheet would run: the formula at their start, behind nothing but the whitespace of the
    variants (a defused cell starts with the apostrophe that makes a spreadsheet show it as text)."""
    found = [cell for row in rows for cell in row if "HYPERLINK" in cell]
    assert found, rows
    return [cell for cell in found if cell.lstrip(" \t\r\n\u00a0").startswith(("=", "\uff1d"))]


@pytest.mark.parametrize("hidden", HIDDEN_FORMULAS.values(), ids=HIDDEN_FORMULAS.keys())
@pytest.mark.parametrize("format_name", FORMATS)
def test_no_exported_cell_starts_a_formula_behind_whitespace_or_a_fullwidth_sign(tmp_path, results, format_name,
                                                                                 hidden):  # fmt: skip
    mallory = result(hidden, 40.0, status="error", error=hidden)  # a folder name, and an error from student code
    [path] = get_exporter(format_name).export(
        [*results, mallory], ["alice", hidden], settings(feedback=True), tmp_path
    )  # fmt: skip
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=FORMATS[format_name]))
    assert formula_cells(rows) == []
    alice = next(row for row in rows if "alice" in row)
    assert "66.1" in alice  # the grades the exporter writes stay plain numbers


@pytest.mark.parametrize("hidden", HIDDEN_FORMULAS.values(), ids=HIDDEN_FORMULAS.keys())
def test_feedback_never_starts_a_formula(hidden):
    """The feedback starts with the column's name; its other lines (errors, reasons) never start the cell."""
    assert feedback_text(reported(), settings(column_name=hidden)).startswith("'" + hidden)


@pytest.mark.parametrize("hidden", HIDDEN_FORMULAS.values(), ids=HIDDEN_FORMULAS.keys())
@pytest.mark.parametrize("all_columns", [False, True], ids=["minimal", "all-columns"])
def test_a_filled_download_starts_no_formula_in_its_names_and_usernames(tmp_path, results, hidden, all_columns):
    username = hidden.strip()  # how the roster and the results name the student the download lists
    rows = [[hidden, "Mallory", hidden, "1009", "", "Yes", "", ""], *DOWNLOAD_ROWS]
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, rows, ",", "utf-8")
    mallory = result(username, 40.0)
    [path] = get_exporter("bb").export(
        [*results, mallory], [username, "alice"], settings(feedback=True), tmp_path / "bb", gradebook=gradebook,
        all_columns=all_columns,
    )  # fmt: skip
    back = read_back(path)[1]
    assert formula_cells(back) == [] and "66.1" in next(row for row in back if "alice" in row)
    canvas = [*CANVAS_ROWS, [hidden, "9", "", hidden, hidden, "", "3"]]
    gradebook = write_download(tmp_path / "canvas.csv", CANVAS_HEADER, canvas, ",", "utf-8", "\n")
    [path] = get_exporter("canvas").export(
        [*results, mallory], [username, "alice"], settings(canvas_assignment_id="4321"), tmp_path / "canvas",
        gradebook, all_columns=all_columns,
    )  # fmt: skip
    back = read_back(path)[1]
    assert formula_cells(back) == [] and back[2][-1] == "66.1" and back[1][-1] == "104.00"


def test_plain_numbers_and_text_that_is_no_formula_are_written_as_they_are():
    for value in ("66.1", "-2.5", "+3", "1e-3", "0", "", "alice", "d.o'neil", "'=already text", "Smith, Alice"):
        assert defuse_formula(value) == value
    for value in ("-cmd|' /C calc'!A0", "@SUM(A1)", "\u3000+1+2", "\u200b=1", "\ufe66HYPERLINK()", "\r=1", " -2+3"):
        assert defuse_formula(value) == "'" + value
    assert defuse_formula(12.5) == 12.5 and defuse_formula(None) is None


# --- the roster ---------------------------------------------------------------------------------------------


def test_a_roster_is_a_username_csv_a_gradebook_or_a_list(tmp_path):
    (tmp_path / "roster.csv").write_bytes("\ufeffName,Username\nAlice,alice\nZoë,zoë\n,\n".encode())
    assert read_roster(tmp_path / "roster.csv") == ["alice", "zoë"]
    gradebook = write_download(tmp_path / "gc.xls", DOWNLOAD_HEADER, DOWNLOAD_ROWS, "\t", "utf-16-le")
    assert read_roster(gradebook) == ["alice", "bob", "zoë"]
    assert read_roster(write_canvas_download(tmp_path / "canvas.csv")) == ["alice", "bob"]
    (tmp_path / "roster.txt").write_text("# section A\nalice\n\nbob\nalice\n", encoding="utf-8")
    assert read_roster(tmp_path / "roster.txt") == ["alice", "bob"]
    (tmp_path / "bad.csv").write_text("Name,Email\nAlice,a@x\n")
    with pytest.raises(ExportError, match=r"bad.csv: no 'Username' column"):
        read_roster(tmp_path / "bad.csv")


def test_reconcile_sorts_students_into_matched_missing_and_unknown():
    graded = ["alice", "bob", "mallory"]
    on_roster = reconcile(graded, ["zoë", "alice", "bob"], None, [])
    assert on_roster.exported == ["zoë", "alice", "bob"]
    assert (on_roster.matched, on_roster.missing, on_roster.unknown) == (["alice", "bob"], ["zoë"], ["mallory"])
    both = reconcile(graded, ["alice", "bob", "zoë"], ["bob", "zoë", "yan"], [])
    assert both.exported == ["bob", "zoë"] and both.not_in_gradebook == ["alice"]
    assert both.unknown == ["alice", "mallory"]
    nothing_given = reconcile(graded, None, None, ["carol", "alice"])
    assert nothing_given.exported == ["carol", "alice", "bob", "mallory"] and nothing_given.missing == ["carol"]


# --- the export verb on a graded class ----------------------------------------------------------------------

CLASS_EXPORT = {"column_name": "Lab 8", "points_possible": 104, "feedback": True}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, tiny_split):
    """alice and bob, and the shipped example (a SAMPLE file inside) in the same submissions folder."""
    root = tmp_path_factory.mktemp("class")
    write_npz(tiny_split, root / "split.npz")
    rubric = write_rubric(root / "rubric.yaml", Path("split.npz"), tiny_split, export=CLASS_EXPORT)
    submissions = root / "submissions"
    for student in ("alice", "bob"):
        fake_submission(submissions, student)
    shutil.copytree(Path(__file__).resolve().parents[1] / "submissions" / "example", submissions / "example")
    assert (submissions / "example" / SAMPLE_MARKER).is_file()  # as shipped
    (submissions / "alice" / MANIFEST).write_text("{}")  # unreadable as a manifest: ignored for suggestions
    sandbox = FakeBackend({"alice": logits_with_accuracy(tiny_split.labels, 0.75)})
    options = BatchOptions(rubric=rubric, submissions=submissions, results=root / "results", sandbox=sandbox)
    console = Console(file=io.StringIO(), width=300)
    report = grade_all(options, console)
    return SimpleNamespace(root=root, rubric=rubric, submissions=submissions, results=root / "results",
                           report=report, sandbox=sandbox, output=console.file.getvalue())  # fmt: skip


def export_class(graded_class, tmp_path, **options):
    console = Console(file=io.StringIO(), width=300)
    written = export_results(
        rubric=graded_class.rubric, results=graded_class.results, submissions=graded_class.submissions,
        out=tmp_path / "exports", console=console, **options,
    )  # fmt: skip
    return written, console.file.getvalue()


def test_a_sample_is_not_graded_by_grade_all(graded_class):
    assert graded_class.report.sandbox_runs == 2
    assert sorted(job.submission_dir.name for job in graded_class.sandbox.jobs) == ["alice", "bob"]
    assert [folder.name for folder in student_folders(graded_class.submissions)] == ["alice", "bob"]
    assert "not graded as students (a SAMPLE file inside): example" in graded_class.output
    assert "dim" not in graded_class.output  # a style of the console, never printed as a word


def test_a_folder_the_import_wrote_is_a_student_even_with_a_sample_marker(tmp_path):
    bulk = BulkZip()
    bulk.attempt("mallory", datetime(2022, 11, 1, 12), {"model.py": TINY_MODEL.encode(), SAMPLE_MARKER: b"x"})
    submissions = tmp_path / "submissions"
    import_bulk_download(bulk.write(tmp_path / "gradebook.zip"), submissions, AttemptPolicy(), None)
    (submissions / "mallory" / SAMPLE_MARKER).write_text("copied from the example")
    fake_submission(submissions, "example")
    (submissions / "example" / SAMPLE_MARKER).write_text("the shipped sample")
    assert [folder.name for folder in student_folders(submissions)] == ["mallory"]


def test_a_sample_graded_alone_stays_out_of_exports_and_the_summary(graded_class, tmp_path, capsys):
    alice = (graded_class.results / "alice.json").read_text(encoding="utf-8")
    (graded_class.results / "example.json").write_text(alice.replace('"alice"', '"example"'), encoding="utf-8")
    try:
        (path,), printed = export_class(graded_class, tmp_path, format_name="full")
        assert list(pd.read_csv(path, encoding="utf-8-sig")["student"]) == ["alice", "bob"]
        assert "left out the sample(s) example" in printed and "matched 2" in printed
        assert summary_main(results=graded_class.results, submissions=graded_class.submissions) == 0
        assert "2 graded" in capsys.readouterr().out
    finally:
        (graded_class.results / "example.json").unlink()


def test_the_example_graded_alone_is_in_no_class_view_count_or_copy_pair(graded_class, tiny_split, tmp_path):
    """`make grade SUB=example` beside a class: the sample's result is its own, never one of the class."""
    from grader.integrity.copies import compare_class, read_copy_report
    from grader.pipeline import grade_submission, open_session
    from grader.report.class_summary import summarise
    from grader.report.html.build import build_reports
    from grader.results.store import load_results
    from grader.rubric.config import load_rubric

    results = tmp_path / "results"
    shutil.copytree(graded_class.results, results)
    same_as_alice = FakeBackend({"example": logits_with_accuracy(tiny_split.labels, 0.75)})  # alice's predictions
    with open_session(load_rubric(graded_class.rubric), graded_class.rubric, backend=same_as_alice) as session:
        sample = grade_submission(graded_class.submissions / "example", session)
    assert sample.sample and sample.status == "graded"
    save_result(sample, results)
    stored, _ = load_results(results)
    summary = summarise(stored)
    assert summary.graded + summary.failed == 2  # alice and bob, as grade --all said
    rubric = load_rubric(graded_class.rubric)
    compare_class(results, tiny_split.labels, rubric.integrity, tiny_split.content_sha256())
    pairs = read_copy_report(results).model_dump_json()
    assert "example" not in pairs
    written = build_reports(results=results, rubric=graded_class.rubric, output=tmp_path / "report", exports=None)
    assert "example" not in written.index.read_text(encoding="utf-8")


def test_export_with_a_roster_prints_matched_missing_and_unknown(graded_class, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("Username,Last Name\nalice,Smith\ndan,Brown\n", encoding="utf-8")
    (path,), printed = export_class(graded_class, tmp_path, format_name="canvas", roster=roster)
    assert [row[3] for row in read_back(path)[1][2:]] == ["alice", "dan"]
    assert "matched 1" in printed
    assert "missing 1 (in the roster, no result; exported as 0): dan" in printed
    assert "unknown 1 (a result, but not in the roster; not exported): bob" in printed


def test_export_fills_the_column_of_the_assignment_the_import_recorded(graded_class, tmp_path, capsys):
    header = ["Last Name", "Username", "Quiz 3 [Total Pts: 10] |664617", "Lab 8 CNN [Total Pts: 104 Score] |555"]
    rows = [["Smith", "alice", "8", ""], ["Other", "olga", "9", "12"]]
    gradebook = write_download(tmp_path / "gc.xls", header, rows, "\t", "utf-16-le")
    submissions = tmp_path / "submissions"
    shutil.copytree(graded_class.submissions, submissions)
    (submissions / "bob" / MANIFEST).write_text(
        '{"username": "bob", "display_name": "Bob", "assignment": "Lab 8 CNN", "attempt": "a", '
        '"attempts_seen": ["a"], "attempt_policy": "newest", "receipt": "r.txt"}', encoding="utf-8"
    )  # fmt: skip
    arguments = ["export", "--format", "bb-tab", "--gradebook", str(gradebook), "--rubric", str(graded_class.rubric),
                 "--results", str(graded_class.results), "--submissions", str(submissions),
                 "--out", str(tmp_path / "exports")]  # fmt: skip
    assert cli_main(arguments) == 0  # the column of the assignment the import recorded is the lab's
    printed = " ".join(capsys.readouterr().out.split())
    assert "no grade column named 'Lab 8'; filled 'Lab 8 CNN [Total Pts: 104 Score] |555'" in printed
    lines = decoded_lines(tmp_path / "exports" / "lab-8_blackboard.xls", "utf-16-le")
    assert lines[0].split("\t")[:2] == ['"Username"', f'"{header[3]}"']
    rubric = yaml.safe_load(graded_class.rubric.read_text())
    rubric["export"]["column_name"] = "Lab 8 CNN"
    (tmp_path / "rubric.yaml").write_text(yaml.safe_dump(rubric))
    shutil.copy(graded_class.root / "split.npz", tmp_path / "split.npz")
    arguments[arguments.index("--rubric") + 1] = str(tmp_path / "rubric.yaml")
    assert cli_main(arguments) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "matched 1" in printed and "missing 1" in printed and "olga" in printed and "unknown 1" in printed
    lines = decoded_lines(tmp_path / "exports" / "lab-8-cnn_blackboard.xls", "utf-16-le")
    assert [line.split("\t")[:2] for line in lines] == [
        ['"Username"', f'"{header[3]}"'], ['"alice"', '"' + lines[1].split("\t")[1].strip('"') + '"'],
        ['"olga"', '"0"'],
    ]  # fmt: skip
    assert lines[1].split("\t")[1] != '""' and "Quiz 3" not in "".join(lines)
    assert cli_main([*arguments, "--all-columns"]) == 0
    everything = decoded_lines(tmp_path / "exports" / "lab-8-cnn_blackboard.xls", "utf-16-le")
    assert everything[0].startswith('"Last Name"\t"Username"\t"Quiz 3 [Total Pts: 10] |664617"\t')
    assert everything[2].startswith('"Other"\t"olga"\t"9"\t"0"\t')


def test_feedback_says_a_late_attempt_was_set_aside_and_answers_came_from_the_text_field():
    notes = [
        "set aside 1 attempt(s) after the deadline",
        "no answers file in the graded attempt: the text typed into its Submission Field is used (original/a.md)",
    ]
    lines = feedback_text(reported(notes=notes), settings()).splitlines()
    assert any("after the deadline were set aside" in line and "before the deadline was graded" in line
               for line in lines)  # fmt: skip
    assert any("answers you typed into Blackboard's text field were graded" in line for line in lines)
    assert not any("Submission Field is used" in line or "original/" in line for line in lines)


def test_feedback_leaves_out_the_similarity_figure_of_an_answer():
    question = {"number": 1, "points": 1.0, "max_points": 1.0,
                "reason": "1/1; 4 of 6 key ideas; closeness to the model answer 0.87; missing: robust."}  # fmt: skip
    text = feedback_text(reported(answers={"questions": [question]}), settings())
    assert "  Question 1: 1 / 1 - 1/1; 4 of 6 key ideas; missing: robust." in text.splitlines()
    assert "closeness" not in text


def test_feedback_says_a_ta_will_look_at_an_unreadable_answers_file_until_decided():
    from grader.report.words import FILE_REVIEW_WORDS

    data = {**reported(), "answers": {"questions": [], "error": "answers.md: not UTF-8 text"}}
    lines = feedback_text(data, settings()).splitlines()
    assert lines[lines.index("  answers.md: not UTF-8 text") + 1] == f"  {FILE_REVIEW_WORDS}"
    decision = {"subject": "answers-error", "item": "exercise2", "question": None, "points": 2.0, "comment": "",
                "decided_by": "Kim", "decided_at": "2026-03-01T10:00:00Z", "status": "applied"}  # fmt: skip
    assert FILE_REVIEW_WORDS not in feedback_text({**data, "decisions": [decision]}, settings())


def copy_of_class(graded_class, tmp_path):
    """The graded class's submissions and results in a folder of the test's own (the rubric is shared)."""
    shutil.copytree(graded_class.submissions, tmp_path / "submissions")
    shutil.copytree(graded_class.results, tmp_path / "results")
    return SimpleNamespace(rubric=graded_class.rubric, submissions=tmp_path / "submissions",
                           results=tmp_path / "results")  # fmt: skip


def export_copy(copy, out, **options):
    console = Console(file=io.StringIO(), width=300)
    written = export_results(rubric=copy.rubric, results=copy.results, submissions=copy.submissions, out=out,
                             console=console, **options)  # fmt: skip
    return written, console.file.getvalue()


def test_an_export_ends_saying_what_still_waits_for_a_ta_and_the_summary_counts_the_same(graded_class, tmp_path,
                                                                                         capsys):  # fmt: skip
    copy = copy_of_class(graded_class, tmp_path)  # alice and bob sent no answers file: each waits for a TA
    _, printed = export_copy(copy, tmp_path / "exports", format_name="canvas")
    waiting = ("2 answers, errors or integrity flags still wait for a TA's decision (2 students: alice, bob); "
               "the export has the machine's points for them")  # fmt: skip
    assert printed.splitlines()[-1] == waiting
    assert summary_main(results=copy.results, submissions=copy.submissions) == 0
    assert "2 answers, errors or integrity flags still wait for a TA's decision (2 students: alice, bob); " in (
        capsys.readouterr().out
    )
    overrides = tmp_path / "overrides.yaml"  # an override of Exercise 2 decides alice's answers
    overrides.write_text(yaml.safe_dump({"alice": {"items": {"exercise2": 2}, "reason": "sent by mail",
                                                   "decided_by": "TA Kim"}}))  # fmt: skip
    _, printed = export_copy(copy, tmp_path / "exports", format_name="canvas", overrides=overrides)
    assert printed.splitlines()[-1].startswith("1 answers, errors or integrity flags still wait for a TA's "
                                               "decision (1 student: bob); ")  # fmt: skip
    assert summary_main(results=copy.results, submissions=copy.submissions) == 0  # the export saved the override
    assert "still wait for a TA's decision (1 student: bob)" in capsys.readouterr().out


def test_an_export_with_nothing_waiting_says_nothing_about_the_review(graded_class, tmp_path):
    copy = copy_of_class(graded_class, tmp_path)
    overrides = tmp_path / "overrides.yaml"
    decided = {"items": {"exercise2": 0}, "reason": "no answers sent", "decided_by": "TA Kim"}
    overrides.write_text(yaml.safe_dump({"alice": decided, "bob": decided}))
    _, printed = export_copy(copy, tmp_path / "exports", format_name="canvas", overrides=overrides)
    assert "wait for a TA" not in printed and printed.splitlines()[-1].endswith("lab-8_canvas.csv")


def test_the_full_export_names_an_unreadable_answers_file_and_what_waits_for_review(graded_class, tmp_path):
    copy = copy_of_class(graded_class, tmp_path)
    alice = load_result(copy.results / "alice.json")
    save_result(alice.model_copy(update={"answers": {**alice.answers, "error": "answers.pdf: not a PDF"}}),
                copy.results)  # fmt: skip
    (path,), _ = export_copy(copy, tmp_path / "exports", format_name="full")
    frame = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False).set_index("student")
    assert frame.loc["alice", "status"] == "graded" and frame.loc["alice", "final_exercise2"] == 0
    assert frame.loc["alice", "answers_error"] == "answers.pdf: not a PDF"
    assert frame.loc["alice", "review_waiting"] == "answers-error"


def test_results_without_a_submission_folder_are_exported_and_summarised_with_a_warning(graded_class, tmp_path,
                                                                                         capsys):  # fmt: skip
    copy = copy_of_class(graded_class, tmp_path)
    alice = (copy.results / "alice.json").read_text(encoding="utf-8")
    for name in ("olga", "example"):  # olga of last term's class; the shipped sample graded alone
        (copy.results / f"{name}.json").write_text(alice.replace('"alice"', f'"{name}"'), encoding="utf-8")
    (copy.submissions / "pat").mkdir()  # submitted nothing: no result, no warning
    warning = (f"1 result has no submission folder in {copy.submissions}/ (olga): a previous class? To start a "
               f"new class, move {copy.results}/ away (or grade into another --results folder)")  # fmt: skip
    (path,), printed = export_copy(copy, tmp_path / "exports", format_name="full")
    assert warning in printed
    assert list(pd.read_csv(path, encoding="utf-8-sig")["student"]) == ["alice", "bob", "pat", "olga"]
    assert summary_main(results=copy.results, submissions=copy.submissions) == 0
    assert warning in capsys.readouterr().out
    shutil.copytree(copy.submissions / "alice", copy.submissions / "olga")
    _, printed = export_copy(copy, tmp_path / "exports", format_name="full")
    assert "no submission folder" not in printed
