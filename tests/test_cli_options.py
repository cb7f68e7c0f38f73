"""The verbs' options: each declared once, and none accepted only to be dropped; how the CLI starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grader.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def options_of(*path: str) -> set[str]:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return {option for parameter in command.params for option in getattr(parameter, "opts", [])}


@pytest.mark.parametrize("verb", ["check", "pack"])
def test_the_students_verbs_refuse_an_isolation_they_would_ignore(verb, tmp_path):
    assert "--isolation" not in options_of(verb)
    done = CliRunner().invoke(cli, [verb, str(tmp_path), "--isolation", "process"])
    assert done.exit_code == 2 and "No such option '--isolation'" in done.output


def test_grading_the_baselines_takes_the_same_sandbox_options_as_grading_a_student():
    shared = {"--rubric", "--data", "--sandbox", "--timeout", "--isolation"}
    assert shared <= options_of("grade")
    assert shared <= options_of("reference", "grade")
    assert shared - {"--isolation"} <= options_of("check")


def test_info_lines_reach_the_class_log_but_not_the_terminal_without_v(rubric_file, tmp_path, capsys):
    import logging

    from grader.batch.run import class_run_log
    from grader.cli import main

    assert main(["validate", str(rubric_file)]) == 0
    with class_run_log(tmp_path) as log_file:
        logging.getLogger("grader.batch.run").info("12 student(s): 12 to grade")
    assert "12 student(s): 12 to grade" in log_file.read_text()
    assert "12 student(s)" not in capsys.readouterr().err


def test_a_python_without_the_graders_dependencies_is_told_which_one_to_use():
    """`python -m grader` from a Python that lacks rich, pydantic...: one line naming the missing package and
    .venv, not a traceback (-S leaves the site-packages out, as a system Python without them)."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "grader", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "which the grader needs, is not installed" in done.stderr and ".venv/bin/grader" in done.stderr
    assert "Traceback" not in done.stderr
