"""One submission's way through grading, shared by every verb: grade, grade --all, check, reference grade.

open_session()      -> GradingSession: the rubric, the pinned split, the sandbox, the baselines
grade_submission()  -> Result: intake, the sandbox run, scoring, every graded item (the machine's points)
rescore()           -> Result: a stored result brought up to a changed rubric, without the sandbox
apply_policy()      -> Result: the late penalty, then the TA's overrides, into final_points
"""

from grader.pipeline.items import ITEMS, GradedItem, graded_items, item_names
from grader.pipeline.policy import CoursePolicy, apply_policy
from grader.pipeline.session import GradingSession, open_session
from grader.pipeline.submission import grade_submission, rescore

__all__ = [
    "ITEMS",
    "CoursePolicy",
    "GradedItem",
    "GradingSession",
    "apply_policy",
    "grade_submission",
    "graded_items",
    "item_names",
    "open_session",
    "rescore",
]
