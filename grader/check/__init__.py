"""Students' self-check: the grader's own path run on one submission, with advice on common mistakes.

`grader check FOLDER` stages the contract files (model.py, weights, answers) as the upload will
hold them, grades them through open_session/grade_submission in the local sandbox, and explains
what went wrong in words a student can act on. `grader pack FOLDER` does the same, then writes the
upload zip, and refuses when the check fails.
"""
