"""Exercise 2: grading the four written questions of the lab.

grade_answers() reads one student's answers file (.md, .txt, .docx, .pdf), finds each
question's answer and scores it on key concepts and semantic similarity to the reference;
class_duplicate_report() lists near-duplicate answers across the class.
"""

from .duplicates import class_duplicate_report
from .locate import find_answers_file
from .results import AnswersResult, DuplicatePair, QuestionResult
from .rubric import Concept, Exercise2Rubric, PartialCreditRule, QuestionRubric
from .score import grade_answers

__all__ = [
    "AnswersResult",
    "Concept",
    "DuplicatePair",
    "Exercise2Rubric",
    "PartialCreditRule",
    "QuestionResult",
    "QuestionRubric",
    "class_duplicate_report",
    "find_answers_file",
    "grade_answers",
]
