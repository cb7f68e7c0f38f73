"""Exporters: each file is parsed back and checked against the results it came from."""

import csv
import io
import re

import pandas as pd
import pytest
from pydantic import BaseModel

from grader.export.base import ExportError, ExportSettings, feedback_text, get_exporter

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


def test_a_student_with_a_result_outside_the_roster_is_still_exported(tmp_path, results):
    [path] = get_exporter("bb").export(results, ["alice"], settings(), tmp_path)
    assert [row[0] for row in read_back(path)[1][1:]] == ["alice", "bob", "carol", "d.o'neil"]


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
    assert "<br>Total: 90 / 104" in by_user["carol"][2]
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


def write_download(path, header, rows, delimiter, encoding):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL).writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_filling_a_downloaded_csv_keeps_its_other_columns_and_rows(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8-sig")
    [path] = get_exporter("bb").export(results, [], settings(column_id=None), tmp_path / "out", gradebook=gradebook)
    _, rows = read_back(path)
    assert rows[0] == DOWNLOAD_HEADER
    by_user = {row[2]: row for row in rows[1:]}
    assert by_user["alice"][:7] == DOWNLOAD_ROWS[0][:7]
    assert by_user["alice"][7] == "66.1"
    assert by_user["bob"][7] == ""
    assert by_user["zoë"][7] == "0"  # in the course, no result: zero as the rubric says
    assert by_user["carol"][7] == "90"  # graded but not in the download: appended for Blackboard to report
    assert by_user["carol"][0] == ""


def test_filling_a_utf16_xls_download_inserts_feedback_after_the_notes(tmp_path, results):
    header = DOWNLOAD_HEADER + ["Grading Notes", "Notes Format"]
    rows = [row + ["", "SMART_TEXT"] for row in DOWNLOAD_ROWS]
    gradebook = write_download(tmp_path / "gc.xls", header, rows, "\t", "utf-16")
    assert gradebook.read_bytes()[:2] == b"\xff\xfe"
    [path] = get_exporter("bb-tab").export(results, [], settings(feedback=True), tmp_path, gradebook=gradebook)
    _, back = read_back(path, delimiter="\t")
    assert back[0] == header + ["Feedback to Learner", "Feedback Format"]
    alice = next(row for row in back if row[2] == "alice")
    assert alice[7] == "66.1" and alice[10].startswith("Test accuracy: 63.12%") and alice[11] == "HTML"


def test_column_names_with_brackets_are_found_by_the_trailing_id(tmp_path, results):
    header = ["Username", "Lab 8 [draft] [Total Pts: 104 Score] |777", HEADER.replace("123456", "778")]
    gradebook = write_download(tmp_path / "gc.csv", header, [["alice", "", ""]], ",", "utf-8")
    [path] = get_exporter("bb").export(
        results, [], settings(column_name="Lab 8 [draft]", column_id=None), tmp_path / "o", gradebook=gradebook
    )
    assert read_back(path)[1][1] == ["alice", "66.1", ""]


def test_a_gradebook_without_the_column_is_an_error_naming_the_columns(tmp_path, results):
    gradebook = write_download(tmp_path / "gc.csv", DOWNLOAD_HEADER, DOWNLOAD_ROWS, ",", "utf-8")
    with pytest.raises(ExportError, match=r"no column with id 999.*Quiz 3"):
        get_exporter("bb").export(results, [], settings(column_id="999"), tmp_path, gradebook=gradebook)
    with pytest.raises(ExportError, match="no grade column named 'Lab 9'"):
        get_exporter("bb").export(results, [], settings(column_name="Lab 9", column_id=None), tmp_path, gradebook)


def test_canvas_export_has_the_points_possible_row(tmp_path, results):
    [path] = get_exporter("canvas").export(results, ROSTER, settings(), tmp_path)
    _, rows = read_back(path)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 8 (123456)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "104.00"]
    assert {row[3]: row[5] for row in rows[2:]} == {
        "alice": "66.1",
        "bob": "",
        "carol": "90",
        "d.o'neil": "72",
        "zoë": "0",
    }


def test_canvas_fills_a_downloaded_gradebook(tmp_path, results):
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 8 (4321)", "Quiz (99)"]
    rows = [
        ["    Points Possible", "", "", "", "", "104.00", "10.00"],
        ["Smith, Alice", "7", "", "alice", "A", "", "9"],
    ]
    gradebook = write_download(tmp_path / "canvas.csv", header, rows, ",", "utf-8-sig")
    [path] = get_exporter("canvas").export(results, [], settings(column_id=None), tmp_path / "o", gradebook)
    _, back = read_back(path)
    assert back[1] == rows[0]
    assert back[2] == ["Smith, Alice", "7", "", "alice", "A", "66.1", "9"]


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
        [Result(student="amy", status="graded", points={"total": 10})], [], settings(), tmp_path
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
    assert text == "Your submission could not be fully graded: timed out after 300 s"
