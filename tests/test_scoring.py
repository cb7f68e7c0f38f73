import numpy as np
import pytest

from grader.scoring.accuracy import InvalidOutput, score


def test_accuracy_per_class_and_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 2])
    logits = np.eye(10, dtype=np.float32)[[0, 1, 1, 1, 0]]
    scores = score(logits, labels)
    assert scores.accuracy == pytest.approx(0.6)
    assert scores.per_class_accuracy[:3] == [0.5, 1.0, 0.0]
    assert scores.confusion_matrix[0][:3] == [1, 1, 0]
    assert scores.confusion_matrix[2][:3] == [1, 0, 0]
    assert sum(map(sum, scores.confusion_matrix)) == 5


def test_wrong_shape_and_nan_are_refused():
    labels = np.zeros(4, dtype=np.int64)
    with pytest.raises(InvalidOutput, match=r"shape \[4, 9\]"):
        score(np.zeros((4, 9), np.float32), labels)
    logits = np.zeros((4, 10), np.float32)
    logits[1, 3] = np.nan
    with pytest.raises(InvalidOutput, match="NaN values in 1 of 4 rows"):
        score(logits, labels)
