"""End-to-end grading through the local sandbox, including the hostile and broken submissions."""

import json
import os
import socket
import threading

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, bwrap_available, expected_logits, make_submission, require_tool, tiny_model

from grader.pipeline import grade_submission, open_session
from grader.rubric.config import load_rubric

pytestmark = pytest.mark.integration


@pytest.fixture(params=["bwrap", "process"])
def isolation(request, monkeypatch):
    if request.param == "bwrap":
        require_tool(bwrap_available(), "bubblewrap is not installed or cannot create namespaces here")
    monkeypatch.setenv("GRADER_LOCAL_ISOLATION", request.param)
    return request.param


def grade(rubric_file, folder, timeout=None, **limits):
    rubric = load_rubric(rubric_file)
    if limits:
        rubric.sandbox.limits = rubric.sandbox.limits.model_copy(update=limits)
    # The plain-process runs of these tests are the fallback's own tests: accepted in so many words.
    isolation = "process" if os.environ.get("GRADER_LOCAL_ISOLATION") == "process" else None
    with open_session(rubric, rubric_file, timeout_seconds=timeout, isolation=isolation) as session:
        return grade_submission(folder, session)


def test_good_submission_is_graded_with_the_logits_of_the_model(rubric_file, submissions, tiny_split, isolation):
    result = grade(rubric_file, make_submission(submissions, "alice"))
    assert result.status == "graded", result.error
    expected = (expected_logits(tiny_split).argmax(1) == tiny_split.labels).mean()
    assert result.accuracy == pytest.approx(expected)
    assert result.points.exercise1 == pytest.approx(max(0.0, (expected - 0.1) / 0.8 * 100), abs=0.01)
    assert result.run.isolation.startswith(isolation)
    assert result.run.parameter_count == sum(p.numel() for p in tiny_model().parameters())
    assert set(result.inputs.submission) == {"model.py", "weights.pth"}


def test_grading_twice_gives_identical_results(rubric_file, submissions):
    folder = make_submission(submissions, "bob")
    first, second = grade(rubric_file, folder), grade(rubric_file, folder)
    drop = {"timings", "run"}
    assert first.model_dump(exclude=drop) == second.model_dump(exclude=drop)


def test_syntax_error_names_file_and_line(rubric_file, submissions):
    source = TINY_MODEL + "\n\ndef broken(:\n    pass\n"
    result = grade(rubric_file, make_submission(submissions, "s", source))
    assert result.status == "error" and result.error_kind == "syntax"
    assert result.error.startswith(f"model.py line {source.count(chr(10)) - 1}: SyntaxError")


def test_name_error_at_import_names_the_line(rubric_file, submissions):
    result = grade(rubric_file, make_submission(submissions, "n", "import torch\n\nx = undefined_name\n"))
    assert result.error_kind == "import"
    assert result.error == "model.py line 3: NameError: name 'undefined_name' is not defined"


def test_neither_build_model_nor_net(rubric_file, submissions):
    result = grade(rubric_file, make_submission(submissions, "c", "import torch\nclass Model(torch.nn.Module): pass\n"))
    assert result.error_kind == "contract"
    assert "neither build_model() nor a class Net" in result.error


def test_weights_that_do_not_fit_name_the_keys(rubric_file, submissions):
    weights = tiny_model().state_dict()
    weights["extra.weight"] = weights.pop("fc.weight")
    result = grade(rubric_file, make_submission(submissions, "w", weights=weights))
    assert result.error_kind == "weights"
    assert "missing keys: fc.weight" in result.error and "unexpected keys: extra.weight" in result.error


def test_whole_pickled_model_loads_with_a_warning(rubric_file, submissions, tiny_split):
    folder = make_submission(submissions, "p")
    namespace = {"__name__": "student_model"}
    exec(compile(TINY_MODEL, str(folder / "model.py"), "exec"), namespace)
    import sys
    import types

    module = types.ModuleType("student_model")
    module.__dict__.update(namespace)
    sys.modules["student_model"] = module
    torch.manual_seed(0)
    torch.save(namespace["Net"](), folder / "weights.pth")
    result = grade(rubric_file, folder)
    assert result.status == "graded", result.error
    assert result.run.weights_format == "whole-model"
    assert [warning.code for warning in result.run.warnings] == ["whole-model"]


def test_whole_model_from_a_notebook_explains_how_to_save_a_state_dict(rubric_file, submissions):
    folder = make_submission(
        submissions, "nb", "import torch\n\ndef build_model():\n    return torch.nn.Linear(1, 1)\n"
    )
    (folder / "weights.pth").write_bytes(_pickled_main_class())
    result = grade(rubric_file, folder)
    assert result.error_kind == "weights"
    assert "notebook" in result.error and "model.state_dict()" in result.error


def _pickled_main_class() -> bytes:
    """A torch.save of a model whose class lived in __main__, as a notebook writes it."""
    import io
    import pickle

    class NotebookNet(torch.nn.Module):
        pass

    NotebookNet.__module__, NotebookNet.__qualname__ = "__main__", "NotebookNet"
    import __main__

    __main__.NotebookNet = NotebookNet
    try:
        buffer = io.BytesIO()
        torch.save(NotebookNet(), buffer, pickle_module=pickle)
        return buffer.getvalue()
    finally:
        del __main__.NotebookNet


def test_wrong_output_shape(rubric_file, submissions):
    source = TINY_MODEL.replace("nn.Linear(4 * 8 * 8, 10)", "nn.Linear(4 * 8 * 8, 9)")
    result = grade(rubric_file, make_submission(submissions, "o", source, weights=_weights_for(source)))
    assert result.error_kind == "output"
    assert "expected [N, 10]" in result.error


def _weights_for(source):
    namespace = {}
    exec(compile(source, "m", "exec"), namespace)
    return namespace["Net"]().state_dict()


def test_nan_output_is_an_error_result(rubric_file, submissions):
    source = TINY_MODEL + "\n    def forward(self, x):\n        return torch.full((x.shape[0], 10), float('nan'))\n"
    result = grade(rubric_file, make_submission(submissions, "nan", source))
    assert result.error_kind == "output" and "NaN values" in result.error


def test_sleeping_past_the_timeout_is_stopped(rubric_file, submissions, isolation):
    source = "import time\ntime.sleep(600)\n" + TINY_MODEL
    result = grade(rubric_file, make_submission(submissions, "sleepy", source), timeout=8)
    assert result.error_kind == "timeout"
    assert "wall-clock limit of 8 s while importing model.py" in result.error
    assert "import time" in result.error


def test_allocating_past_the_memory_limit(rubric_file, submissions, isolation):
    source = TINY_MODEL + "\nhoard = torch.ones(3 * 1024**3, dtype=torch.uint8)\n"
    result = grade(rubric_file, make_submission(submissions, "hog", source), memory_mb=1024)
    assert result.error_kind == "memory", result.error
    assert "1024 MB" in result.error


def test_fork_bomb_is_contained(rubric_file, submissions, isolation):
    source = "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except Exception:\n        break\n"
    result = grade(rubric_file, make_submission(submissions, "forky", source + TINY_MODEL), timeout=30, processes=64)
    # Either the forks are refused and the model still runs, or the sandbox dies with a reason; nothing survives it.
    assert result.status == "graded" or result.error_kind in {"import", "timeout", "crash", "memory"}
    assert not _processes_running("forky"), "a forked process outlived its sandbox"


def _processes_running(marker: str) -> list[str]:
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and marker in command:
            found.append(command)
    return found


def test_network_connection_is_blocked_and_grading_goes_on(rubric_file, submissions, tiny_split, isolation):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    received = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                received.append(connection.recv(100))
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    # The model predicts class 0 everywhere if it got through, class 1 if it was blocked.
    source = TINY_MODEL + textwrap_forward(
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
            leaked = 0
        except Exception:
            leaked = 1
        """
    )
    try:
        result = grade(rubric_file, make_submission(submissions, "net", source))
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert received == []
    assert result.status == "graded"
    assert result.confusion_matrix and all(row[1] == 4 for row in result.confusion_matrix)


def textwrap_forward(prelude: str) -> str:
    """Appends module code that runs at import and a forward() that predicts the class in `leaked`."""
    import textwrap

    return (
        "\n"
        + textwrap.dedent(prelude)
        + "\n\ndef _forward(self, x):\n    out = torch.zeros(x.shape[0], 10)\n    out[:, leaked] = 1\n    return out\n"
        + "\nNet.forward = _forward\n"
    )


def test_searching_the_disk_for_labels_finds_nothing(rubric_file, submissions, tiny_split, isolation):
    split_path = load_rubric(rubric_file).split.path
    source = TINY_MODEL + textwrap_forward(
        f"""
        import numpy as np
        leaked = 1
        try:
            labels = np.load({split_path!r})["labels"]
            leaked = 0
        except Exception:
            pass
        """
    )
    result = grade(rubric_file, make_submission(submissions, "peek", source))
    assert result.status == "graded"
    assert all(row[1] == 4 for row in result.confusion_matrix), "the split file was readable in the sandbox"


def test_torchscript_needs_no_model_py(rubric_file, submissions, tiny_split):
    folder = submissions / "ts"
    folder.mkdir()
    torch.jit.trace(tiny_model().eval(), torch.zeros(1, 3, 32, 32)).save(str(folder / "weights.pt"))
    result = grade(rubric_file, folder)
    assert result.status == "graded", result.error
    assert result.run.weights_format == "torchscript"
    expected = (expected_logits(tiny_split).argmax(1) == tiny_split.labels).mean()
    assert result.accuracy == pytest.approx(expected)


def test_safetensors_weights(rubric_file, submissions, tiny_split):
    from safetensors.torch import save_file

    folder = make_submission(submissions, "st")
    (folder / "weights.pth").unlink()
    save_file(tiny_model().state_dict(), folder / "weights.safetensors")
    result = grade(rubric_file, folder)
    assert result.status == "graded", result.error
    assert result.run.weights_format == "safetensors"


@pytest.mark.parametrize(
    "saved, prefix",
    [
        (lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 3}, "model."),  # Lightning
        (lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()}, "_orig_mod."),  # torch.compile
        (lambda sd: {"net": {f"module.{k}": v for k, v in sd.items()}, "acc": 0.7, "epoch": 9}, None),  # DataParallel
    ],
)
def test_a_prefix_every_weight_shares_is_removed_when_the_rest_matches(
    rubric_file, submissions, tiny_split, saved, prefix
):
    plain = grade(rubric_file, make_submission(submissions, "plain"))  # the same weights, saved plainly
    folder = make_submission(submissions, "ckpt")
    (folder / "weights.pth").unlink()
    torch.save(saved(tiny_model().state_dict()), folder / "weights.pth")
    result = grade(rubric_file, folder)
    assert result.status == "graded", result.error
    assert result.predictions_sha256 == plain.predictions_sha256  # the weights were loaded, not left at random
    codes = [warning.code for warning in result.run.warnings]
    assert codes == (["key-prefix"] if prefix else ["dataparallel"])
    if prefix:
        assert result.run.warnings[0].prefix == prefix


def test_weights_that_are_no_torch_save_file_are_a_weights_error_not_a_crash(rubric_file, submissions):
    folder = make_submission(submissions, "garbage")
    (folder / "weights.pth").write_bytes(b"\x80\x02this is not a pickle at all" * 10)
    result = grade(rubric_file, folder)
    assert result.status == "error" and result.error_kind == "weights", (result.error_kind, result.error)
    assert "cannot be read by torch.load" in result.error


def test_a_shared_prefix_is_kept_when_the_rest_does_not_match_the_model(rubric_file, submissions):
    folder = make_submission(submissions, "other")
    (folder / "weights.pth").unlink()
    state = {f"model.{k}": v for k, v in tiny_model().state_dict().items()}
    state["model.extra.weight"] = torch.zeros(3)
    torch.save(state, folder / "weights.pth")
    result = grade(rubric_file, folder)
    assert result.status == "error" and result.error_kind == "weights"


def test_custom_preprocess_is_used(rubric_file, submissions, tiny_split):
    source = TINY_MODEL + "\n\ndef preprocess(images):\n    return images.permute(0, 3, 1, 2).float() * 0\n"
    result = grade(rubric_file, make_submission(submissions, "pre", source))
    assert result.status == "graded"
    model = tiny_model().eval()
    with torch.inference_mode():
        constant = model(torch.zeros(1, 3, 32, 32)).argmax(1).item()
    assert result.accuracy == pytest.approx(float(np.mean(tiny_split.labels == constant)))


def test_missing_submission_folder_is_an_intake_error(rubric_file, submissions):
    result = grade(rubric_file, submissions / "nobody")
    assert result.status == "error" and result.error_kind == "intake"
    json.loads(result.model_dump_json())
