"""The one base of the grader's own errors: what the user must change, said in one message.

Faults of a submission are never raised: they become that student's error result. A GraderError
is about the grader's inputs (rubric, data, overrides, a download) or its machine (no sandbox),
and stops the command with the error's exit code; the CLI is the one place that prints it.
"""

from __future__ import annotations


class GraderError(Exception):
    exit_code = 2
