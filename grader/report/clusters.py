"""Pairs of students grouped into clusters (connected components): five students sharing one answer are one
group for the TA to read together, not ten pairs. `grader summary` and the class page show the same clusters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from grader.answers import DuplicatePair
from grader.integrity.copies import CopyReport


@dataclass
class Cluster:
    students: list[str]
    questions: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    strongest: float = 0.0
    pairs: int = 0


def connected_groups(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Each group of students linked by a chain of pairs, sorted; the groups largest first, then by name."""
    parent: dict[str, str] = {}

    def root(student: str) -> str:
        parent.setdefault(student, student)
        while parent[student] != student:
            parent[student] = parent[parent[student]]
            student = parent[student]
        return student

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for student in list(parent):
        groups.setdefault(root(student), []).append(student)
    return sorted((sorted(group) for group in groups.values()), key=lambda group: (-len(group), group))


def cluster_pairs(pairs: list[tuple[str, str, float, int | None, list[str]]]) -> list[Cluster]:
    """pairs: (student a, student b, similarity, question or None, reasons), into one Cluster per group."""
    clusters = [Cluster(students=group) for group in connected_groups((a, b) for a, b, *_ in pairs)]
    where = {student: cluster for cluster in clusters for student in cluster.students}
    for a, _, similarity, question, reasons in pairs:
        cluster = where[a]
        cluster.pairs += 1
        cluster.strongest = max(cluster.strongest, similarity)
        if question is not None and question not in cluster.questions:
            cluster.questions.append(question)
        cluster.reasons += [reason for reason in reasons if reason not in cluster.reasons]
    for cluster in clusters:
        cluster.questions.sort()
    return clusters


def answer_clusters(duplicates: list[DuplicatePair]) -> list[Cluster]:
    """The students whose written answers are near-duplicates, one cluster per group, with the questions."""
    return cluster_pairs([(pair.student_a, pair.student_b, pair.similarity, pair.question, []) for pair in duplicates])


def copy_clusters(report: CopyReport | None) -> list[Cluster]:
    """The students whose models look copied (copies.json's pairs), one cluster per group, with the reasons."""
    pairs = report.pairs if report else []
    return cluster_pairs([(pair.student_a, pair.student_b, pair.agreement, None, pair.reasons) for pair in pairs])
