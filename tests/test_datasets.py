import pickle

import numpy as np
import pytest
from helpers import write_cifar_batches, write_npz
from PIL import Image

from grader.datasets import CIFAR10_CLASSES, DatasetError, SplitFormat, detect_format, load_split
from grader.datasets.cifar_batches import file_md5
from grader.datasets.pinned_split import SplitMismatch, load_pinned_split


def write_image_folder(split, root):
    for index, (image, label) in enumerate(zip(split.images, split.labels)):
        folder = root / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:05d}.png")
    return root


def test_three_formats_decode_to_the_same_content(tmp_path, tiny_split):
    batches = load_split(write_cifar_batches(tiny_split, tmp_path / "b"))
    npz = load_split(write_npz(tiny_split, tmp_path / "s.npz"))
    # An image folder orders images by class, so compare it against the split sorted the same way.
    order = np.argsort(tiny_split.labels, kind="stable")
    folder = load_split(write_image_folder(tiny_split, tmp_path / "f"))
    assert batches.content_sha256() == npz.content_sha256() == tiny_split.content_sha256()
    assert np.array_equal(folder.images, tiny_split.images[order])
    assert np.array_equal(folder.labels, tiny_split.labels[order])


def test_detect_format_names_each_layout(tmp_path, tiny_split):
    assert detect_format(write_cifar_batches(tiny_split, tmp_path / "b")) == SplitFormat.cifar_batches
    assert detect_format(write_npz(tiny_split, tmp_path / "s.npz")) == SplitFormat.npz
    assert detect_format(write_image_folder(tiny_split, tmp_path / "f")) == SplitFormat.image_folder
    with pytest.raises(DatasetError, match="not a CIFAR-10 split"):
        detect_format(tmp_path)


def test_md5_pin_refuses_other_data_and_prints_both_hashes(tmp_path, tiny_split):
    root = write_cifar_batches(tiny_split, tmp_path / "b")
    actual = file_md5(root / "cifar-10-batches-py" / "test_batch")
    assert len(load_pinned_split(root, SplitFormat.cifar_batches, None, actual)) == 40
    with pytest.raises(SplitMismatch) as error:
        load_pinned_split(root, SplitFormat.cifar_batches, None, "0" * 32)
    assert "0" * 32 in str(error.value) and actual in str(error.value)


def test_sha256_pin_refuses_a_changed_label(tmp_path, tiny_split):
    pinned = tiny_split.content_sha256()
    labels = tiny_split.labels.copy()
    labels[0] = (labels[0] + 1) % 10
    path = tmp_path / "s.npz"
    np.savez(path, images=tiny_split.images, labels=labels)
    with pytest.raises(SplitMismatch, match="sha256 expected"):
        load_pinned_split(path, SplitFormat.npz, pinned, None)


def test_a_split_of_another_format_than_the_pin_says_how_to_adopt_it(tmp_path, tiny_split):
    path = tmp_path / "mine.npz"
    np.savez(path, images=tiny_split.images, labels=tiny_split.labels)
    with pytest.raises(SplitMismatch, match="pins a cifar-batches split, found npz") as error:
        load_pinned_split(path, SplitFormat.cifar_batches, None, "0" * 32)
    assert "grader pin-split PATH" in str(error.value)


def test_a_missing_rubric_says_where_to_run_or_how_to_name_it(tmp_path):
    from grader.rubric.config import RubricError, load_rubric

    with pytest.raises(RubricError, match="no such rubric file") as error:
        load_rubric(tmp_path / "rubric.yaml")
    assert "--rubric PATH" in str(error.value) and "grader's folder" in str(error.value)


def test_a_pickle_batch_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}))
    with pytest.raises(DatasetError, match="forbidden global"):
        load_split(tmp_path)


def test_offline_missing_batches_say_where_to_put_them(tmp_path, monkeypatch):
    import torchvision.datasets

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)
    with pytest.raises(DatasetError) as error:
        load_pinned_split(tmp_path / "data", SplitFormat.cifar_batches, None, "x" * 32)
    assert "cifar-10-batches-py/test_batch" in str(error.value).replace("\\", "/")
    assert "cifar-10-python.tar.gz" in str(error.value)


def test_npz_with_wrong_shape_names_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.int64))
    with pytest.raises(DatasetError, match="bad.npz: images must be uint8"):
        load_split(path)
