import io

from helpers import HOSTILE, assert_printed_literally, terminal
from rich.console import Console

from grader.report.console import render_result
from grader.report.text import literal
from grader.results.model import (
    BaselineComparison,
    InputHashes,
    LateInfo,
    OverrideRecord,
    Points,
    Result,
    RunInfo,
)
from grader.rubric.points import ItemPoints


def rendered(result: Result) -> str:
    console = Console(file=io.StringIO(), width=160)
    render_result(result, console)
    return console.file.getvalue()


def test_report_shows_points_late_penalty_override_and_final_total():
    result = Result(
        student="alice",
        status="graded",
        accuracy=0.6312,
        per_class_accuracy=[0.5] * 10,
        confusion_matrix=[[5 if i == j else (3 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)],
        items=[ItemPoints(item="exercise1", points=63.1, max_points=100, reason="accuracy 63.12%")],
        points=Points(exercise1=63.1, total=63.1),
        final_points=Points(exercise1=60.0, total=60.0),
        late=LateInfo(days_late=1, penalty_fraction=0.1, reason="1 day late"),
        overrides=[OverrideRecord(item="exercise1", points=60, reason="regraded by hand", decided_by="TA Kim")],
        inputs=InputHashes(grader_version="1"),
    )
    text = rendered(result)
    assert "63.12%" in text and "63.1 / 100" in text
    assert "-10%" in text and "1 day late" in text
    assert "regraded by hand (TA Kim)" in text
    assert "Final" in text and "60 / 100" in text
    assert "automobile (3)" in text  # airplane's most frequent confusion


def test_report_of_an_error_names_the_cause():
    result = Result(student="bob", status="error", error_kind="syntax", error="model.py line 3: SyntaxError: x",
                    inputs=InputHashes(grader_version="1"))  # fmt: skip
    text = rendered(result)
    assert "error" in text and "syntax" in text and "model.py line 3: SyntaxError: x" in text


def test_report_compares_with_each_baseline_or_says_none_was_measured():
    graded = dict(student="carol", status="graded", accuracy=0.7, inputs=InputHashes(grader_version="1"))
    compared = Result(
        **graded,
        comparison=[
            BaselineComparison(baseline="lenet5", accuracy=0.6265, difference=0.0735, beats=True),
            BaselineComparison(baseline="resnet20", accuracy=0.89, difference=-0.19, beats=False),
        ],
    )
    text = rendered(compared)
    assert "lenet5" in text and "+7.35 pts" in text and "yes" in text
    assert "resnet20" in text and "-19.00 pts" in text
    assert "No reference baseline" not in text
    assert "No reference baseline was measured on this split" in rendered(Result(**graded))


def test_every_string_from_the_submission_is_printed_literally():
    result = Result(
        student=HOSTILE,
        status="error",
        accuracy=0.5,
        split_name=HOSTILE,
        items=[ItemPoints(item="exercise1", points=50, max_points=100, reason=HOSTILE)],
        points=Points(total=50),
        final_points=Points(total=45),
        late=LateInfo(days_late=1, penalty_fraction=0.1, reason=HOSTILE),
        overrides=[OverrideRecord(item="exercise1", points=45, reason=HOSTILE, decided_by=HOSTILE)],
        error=HOSTILE,
        error_kind=HOSTILE,
        run=RunInfo(backend="local", isolation=HOSTILE, device=HOSTILE, warnings=[HOSTILE, f"whole-model: {HOSTILE}"]),
        comparison=[BaselineComparison(baseline=HOSTILE, accuracy=0.6, difference=-0.1, beats=False)],
        inputs=InputHashes(grader_version="1"),
    )
    console = terminal()
    render_result(result, console)
    output = console.file.getvalue()
    assert_printed_literally(output)
    assert output.count("[link=http://evil]click[/link]") >= 10


def test_control_characters_are_shown_as_escapes_and_newlines_and_tabs_kept():
    assert literal("a\rb\x1b[2Jc\u202ed\x9be\x7ff\tg\nh").plain == "a\\rb\\x1b[2Jc\\u202ed\\x9be\\x7ff\tg\nh"


def test_the_runs_warnings_are_printed_in_the_graders_words_and_what_it_claims_as_its_own():
    from grader.sandbox.protocol import WARNING_WORDS

    forged = "TA review: grade stands at 100/100"
    run = RunInfo(backend="local", isolation="bwrap", device="NVIDIA A100-SXM4-80GB", parameter_count=62006,
                  warnings=[forged, {"code": "whole-model"}])  # fmt: skip
    console = Console(file=io.StringIO(), width=400)
    render_result(Result(student="s", status="graded", run=run, inputs=InputHashes(grader_version="1")), console)
    text = console.file.getvalue()
    assert forged not in text and WARNING_WORDS["whole-model"] in text
    assert WARNING_WORDS["unrecognised"].format(count=1) in text
    assert "the run reported: device NVIDIA A100-SXM4-80GB, 62,006 parameters" in text
    forged_run = RunInfo(backend="local", isolation="bwrap", device=forged, parameter_count=10**15)
    assert "the run reported: device ?" in rendered(Result(student="s", status="graded", run=forged_run,
                                                             inputs=InputHashes(grader_version="1")))  # fmt: skip


def test_report_shows_points_with_the_exports_two_decimals():
    result = Result(
        student="alice",
        status="graded",
        items=[ItemPoints(item="exercise1", points=70.672, max_points=100, reason="accuracy 77.71%")],
        points=Points(exercise1=70.672, total=70.672),
        final_points=Points(exercise1=70.672, total=70.672),
        inputs=InputHashes(grader_version="1"),
    )
    text = rendered(result)
    assert "70.67 / 100" in text and "70.672" not in text


def test_report_says_which_attempt_and_answers_the_import_chose():
    result = Result(
        student="judy",
        status="graded",
        notes=[
            "set aside 1 attempt(s) after the deadline",
            "no answers file in the graded attempt: the text typed into its Submission Field is used (a.md)",
        ],
        inputs=InputHashes(grader_version="1"),
    )
    text = " ".join(rendered(result).split())
    assert "after the deadline were set aside" in text and "Blackboard's text field" in text
