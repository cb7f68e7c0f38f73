from pathlib import Path

import numpy as np
import pytest
import yaml

from grader.cli import main
from grader.datasets.pinned_split import SplitMismatch
from grader.rubric.config import RubricError, load_rubric
from grader.rubric.points import exercise1_points


def test_default_rubric_is_valid():
    rubric = load_rubric("rubric.yaml")
    assert rubric.split.md5 == "40351d587109b95175f43aff81a1287e"
    assert rubric.exercise1.points == 100


def test_invalid_rubric_error_names_the_key(tmp_path, rubric_file):
    data = yaml.safe_load(rubric_file.read_text())
    data["exercise1"]["anchors"][1]["points"] = "lots"
    data["sandbox"]["limits"]["memroy_mb"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(RubricError) as error:
        load_rubric(bad)
    message = str(error.value)
    assert "bad.yaml" in message
    assert "exercise1.anchors.1.points" in message
    assert "sandbox.limits.memroy_mb" in message


def test_points_follow_straight_lines_between_anchors(rubric_file):
    exercise = load_rubric(rubric_file).exercise1  # anchors 10% -> 0, 90% -> 100
    assert exercise1_points(0.05, exercise).points == 0
    assert exercise1_points(0.50, exercise).points == 50
    assert exercise1_points(0.95, exercise).points == 100


def test_baseline_anchor_needs_a_measured_baseline(tmp_path, rubric_file):
    data = yaml.safe_load(rubric_file.read_text())
    data["exercise1"]["anchors"] = [{"baseline": "lenet5", "points": 60}, {"baseline": "resnet20", "points": 100}]
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(data))
    exercise = load_rubric(path).exercise1
    assert exercise1_points(0.75, exercise, {"lenet5": 0.6, "resnet20": 0.9}).points == 80
    with pytest.raises(RubricError, match="baseline 'resnet20' has no accuracy measured on the pinned split"):
        exercise1_points(0.75, exercise, {"lenet5": 0.6})


def test_validate_command_checks_without_grading(rubric_file, capsys):
    assert main(["validate", str(rubric_file)]) == 0
    assert "is valid" in capsys.readouterr().out


def test_pin_split_writes_the_pin_and_keeps_comments(tmp_path, tiny_split):
    from helpers import write_npz

    rubric = tmp_path / "rubric.yaml"
    text = Path("rubric.yaml").read_text()
    rubric.write_text(text)
    split = write_npz(tiny_split, tmp_path / "mine.npz")
    assert main(["pin-split", str(split), "--rubric", str(rubric)]) == 0
    pinned = load_rubric(rubric)
    assert pinned.split.sha256 == tiny_split.content_sha256()
    assert pinned.split.format.value == "npz"
    assert "# Exercise 1: accuracy on the split decides the points" in rubric.read_text()


def test_pin_split_changes_only_the_split_and_its_own_comment(tmp_path, tiny_split):
    from helpers import write_npz

    original = (Path(__file__).resolve().parents[1] / "rubric.yaml").read_text()
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(original)
    inside = write_npz(tiny_split, tmp_path / "data.npz")
    assert main(["pin-split", str(inside), "--rubric", str(rubric)]) == 0
    pinned = rubric.read_text()
    removed = set(original.splitlines()) - set(pinned.splitlines())
    assert all("split" in line or "md5" in line or line.startswith(("  name:", "  format:", "  path:")) or
               "torchvision" in line or "pin-split" in line for line in removed), removed  # fmt: skip
    assert "md5 that torchvision checks" not in pinned, "a comment about the old split survived"
    assert "Pinned by `grader pin-split`: 40 images (npz) from data.npz" in pinned
    assert load_rubric(rubric).split.path == "data.npz"  # inside the rubric's folder: relative

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = rubric.rename(elsewhere / "rubric.yaml")
    assert main(["pin-split", str(inside), "--rubric", str(moved)]) == 0
    assert load_rubric(moved).split.path == str(inside.resolve())  # outside it: absolute, no ../..


def test_pinning_the_training_split_too_and_again_changes_nothing_else(tmp_path, tiny_split):
    from helpers import write_npz

    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((Path(__file__).resolve().parents[1] / "rubric.yaml").read_text())
    data = write_npz(tiny_split, tmp_path / "data.npz")
    assert main(["pin-split", str(data), "--train", "--rubric", str(rubric)]) == 0
    assert main(["pin-split", str(data), "--rubric", str(rubric)]) == 0
    once = rubric.read_text()
    assert main(["pin-split", str(data), "--train", "--rubric", str(rubric)]) == 0
    assert main(["pin-split", str(data), "--rubric", str(rubric)]) == 0
    assert rubric.read_text() == once, "pinning the same splits again must leave the file as it was"
    pinned = load_rubric(rubric)
    assert pinned.train_split.sha256 == pinned.split.sha256 == tiny_split.content_sha256()
    assert once.count("# Pinned by `grader pin-split --train`") == 1


def test_pin_split_private_adopts_a_npy_pair_as_cifar_10_1_ships_it(tmp_path, tiny_split, capsys):
    """The instructor's private split: NAME_data.npy (uint8 [N, 32, 32, 3]) and NAME_labels.npy beside it."""
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((Path(__file__).resolve().parents[1] / "rubric.yaml").read_text())
    private = tmp_path / "private"
    private.mkdir()
    np.save(private / "cifar10.1_v6_data.npy", tiny_split.images)
    np.save(private / "cifar10.1_v6_labels.npy", tiny_split.labels.astype(np.int32))  # any integer type
    assert main(["pin-split", str(private / "cifar10.1_v6_data.npy"), "--private", "--rubric", str(rubric)]) == 0
    assert "pinned 40 images (npy-pair)" in capsys.readouterr().out
    pinned = load_rubric(rubric)
    assert pinned.private_split.name == "cifar10.1_v6" and pinned.private_split.format.value == "npy-pair"
    assert pinned.private_split.path == "private/cifar10.1_v6_data.npy"
    assert pinned.private_split.sha256 == tiny_split.content_sha256()
    assert pinned.train_split.md5["data_batch_1"] == "c99cafc152244af753f735de768cd75f", "the training pin is untouched"
    text = rubric.read_text()
    assert "# Pinned by `grader pin-split --private`: 40 images (npy-pair)" in text
    assert "strongest memorisation check" in text
    assert pinned.split.md5 == "40351d587109b95175f43aff81a1287e", "the test split's pin is untouched"
    # Its folder names the pair too, and pinning again changes nothing.
    assert main(["pin-split", str(private / "cifar10.1_v6_data.npy"), "--private", "--rubric", str(rubric)]) == 0
    assert rubric.read_text() == text
    assert main(["pin-split", str(private), "--private", "--name", "cifar10.1", "--rubric", str(rubric)]) == 0
    assert load_rubric(rubric).private_split.path == "private"


def test_the_default_rubric_pins_the_official_training_batches_by_md5(tmp_path, tiny_split):
    """The generalisation gap is measured by default where the batches are, and said to be unmeasured elsewhere."""
    from helpers import write_cifar_batches

    from grader.datasets.cifar_batches import OFFICIAL_TRAIN_BATCH_MD5, file_md5
    from grader.pipeline.session import read_session_inputs

    default = load_rubric(Path(__file__).resolve().parents[1] / "rubric.yaml")
    assert default.train_split.md5 == OFFICIAL_TRAIN_BATCH_MD5 and default.train_split.path == default.split.path
    root = write_cifar_batches(tiny_split, tmp_path / "data")  # test_batch only, as on a machine without them
    rubric = tmp_path / "rubric.yaml"
    edit = default.model_dump(mode="json", exclude_none=True)
    edit["split"].update(md5=file_md5(root / "cifar-10-batches-py" / "test_batch"))
    rubric.write_text(yaml.safe_dump(edit, sort_keys=False))
    inputs = read_session_inputs(load_rubric(rubric), rubric, resolve_anchors=False)
    assert inputs.train_sample is None
    assert any("training split is not here" in note for note in inputs.integrity_not_measured)
    # Batches that are there but not the official ones stop grading, as a wrong test split does.
    for name in OFFICIAL_TRAIN_BATCH_MD5:
        (root / "cifar-10-batches-py" / name).write_bytes((root / "cifar-10-batches-py" / "test_batch").read_bytes())
    with pytest.raises(SplitMismatch, match="data_batch_1: not the pinned split"):
        read_session_inputs(load_rubric(rubric), rubric, resolve_anchors=False)


def test_pin_split_private_names_what_is_wrong_with_a_pair(tmp_path, tiny_split, capsys):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text((Path(__file__).resolve().parents[1] / "rubric.yaml").read_text())
    original = rubric.read_text()
    np.save(tmp_path / "mine_data.npy", tiny_split.images)
    assert main(["pin-split", str(tmp_path / "mine_data.npy"), "--private", "--rubric", str(rubric)]) != 0
    assert "mine_labels.npy: no such file (the labels of the .npy pair)" in capsys.readouterr().err
    np.save(tmp_path / "mine_labels.npy", tiny_split.labels[:39])
    assert main(["pin-split", str(tmp_path / "mine_data.npy"), "--private", "--rubric", str(rubric)]) != 0
    assert "found 39 labels for 40 images" in capsys.readouterr().err
    np.save(tmp_path / "other.npy", tiny_split.images)
    assert main(["pin-split", str(tmp_path / "other.npy"), "--private", "--rubric", str(rubric)]) != 0
    assert "NAME_data.npy" in capsys.readouterr().err
    assert main(["pin-split", str(tmp_path / "mine_data.npy"), "--private", "--train", "--rubric", str(rubric)]) != 0
    assert "pin one at a time" in capsys.readouterr().err
    assert rubric.read_text() == original, "a refused pin leaves the rubric as it was"
