"""The verbs' options: each declared once, and none accepted only to be dropped."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from grader.cli import cli


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
