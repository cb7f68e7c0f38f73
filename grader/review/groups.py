"""A question's answers grouped by meaning, so that a TA grades alike answers in one action.

Answers whose words are the same (case, spacing and punctuation aside) are one unit from the start. Units are then
merged by average-linkage agglomerative clustering on the cosine of their sentence vectors (MiniLM when installed,
else TF-IDF over content lemmas) until no two clusters are closer than the group threshold; each group is split
the same way with a tighter threshold into sub-groups. The thresholds are per kind of vector: TF-IDF cosines of
two paraphrases are far lower than MiniLM's.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.answers.text import content_lemmas

# Chosen by reading the groups of the lab's development answers: a group shares the answer's gist (same ideas,
# same side), a sub-group says nearly the same thing in other words.
GROUP_SIMILARITY = {"embedding": 0.72, "tfidf": 0.40}
SUBGROUP_SIMILARITY = {"embedding": 0.86, "tfidf": 0.65}
WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class AnswerGroup:
    """Indices into the answers grouped, as sub-groups; `members` is all of them."""

    subgroups: tuple[tuple[int, ...], ...]

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(index for subgroup in self.subgroups for index in subgroup)


def same_words(text: str) -> str:
    """The text as a key that ignores case, spacing and punctuation."""
    return " ".join(WORDS.findall(text.casefold()))


def tfidf_vectors(texts: Sequence[str]) -> np.ndarray:
    """Unit rows of sublinear TF-IDF over the texts' content lemmas (idf from these texts alone)."""
    counts = [Counter(content_lemmas(text)) for text in texts]
    vocabulary = {lemma: column for column, lemma in enumerate(sorted({lemma for c in counts for lemma in c}))}
    documents = Counter(lemma for c in counts for lemma in c)
    matrix = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
    for row, c in enumerate(counts):
        for lemma, n in c.items():
            idf = math.log((len(texts) + 1) / (documents[lemma] + 1)) + 1
            matrix[row, vocabulary[lemma]] = (1 + math.log(n)) * idf
    return unit_rows(matrix)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def average_linkage(similarity: np.ndarray, sizes: Sequence[int], threshold: float) -> list[list[int]]:
    """Clusters of the rows of a similarity matrix, merged closest first while the average similarity between
    two clusters' members (each row weighs its size) reaches `threshold`."""
    count = len(sizes)
    if count == 0:
        return []
    closeness = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(closeness, -np.inf)
    weight = np.array(sizes, dtype=np.float64)
    clusters: list[list[int] | None] = [[index] for index in range(count)]
    while count > 1:
        i, j = divmod(int(np.argmax(closeness)), len(weight))
        if closeness[i, j] < threshold:
            break
        merged = (weight[i] * closeness[i] + weight[j] * closeness[j]) / (weight[i] + weight[j])
        closeness[i, :], closeness[:, i] = merged, merged
        closeness[i, i] = -np.inf
        closeness[j, :], closeness[:, j] = -np.inf, -np.inf
        weight[i] += weight[j]
        clusters[i] = clusters[i] + clusters[j]
        clusters[j] = None
        count -= 1
    return [cluster for cluster in clusters if cluster is not None]


def group_answers(texts: Sequence[str], vectors: np.ndarray | None = None) -> list[AnswerGroup]:
    """Groups of the answers (largest first), each split into sub-groups (largest first). `vectors` are the
    texts' sentence embeddings in the same order; None: TF-IDF."""
    if not texts:
        return []
    kind = "embedding" if vectors is not None else "tfidf"
    rows = unit_rows(np.asarray(vectors, dtype=np.float32)) if vectors is not None else tfidf_vectors(texts)
    by_words: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        by_words.setdefault(same_words(text), []).append(index)
    units = list(by_words.values())
    sizes = [len(members) for members in units]
    unit = unit_rows(np.stack([rows[members].mean(axis=0) for members in units]))
    similarity = unit @ unit.T
    groups = []
    for cluster in average_linkage(similarity, sizes, GROUP_SIMILARITY[kind]):
        inside = similarity[np.ix_(cluster, cluster)]
        found = average_linkage(inside, [sizes[u] for u in cluster], SUBGROUP_SIMILARITY[kind])
        subgroups = [sorted(index for position in sub for index in units[cluster[position]]) for sub in found]
        subgroups.sort(key=lambda members: (-len(members), members[0]))
        groups.append(AnswerGroup(tuple(tuple(members) for members in subgroups)))
    groups.sort(key=lambda group: (-len(group.members), min(group.members)))
    return groups
