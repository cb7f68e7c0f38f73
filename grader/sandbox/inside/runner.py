"""Runs one student's model inside the sandbox and writes its logits.

This file is copied into the sandbox with diagnostics.py beside it: they import only the standard
library, numpy and torch, never the rest of the grader. It sees the student's files and the test
images; the labels never reach it. Everything it reports goes through two files in the
output folder: logits.npy (float32 [N, 10]) and meta.json. The host treats both as
untrusted, since student code runs in this same process and could overwrite them: so a
warning is a code ({"code": "whole-model"}) that the host words itself (protocol.WARNING_WORDS),
never a sentence of this file's.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
import zipfile

import numpy as np
import torch

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)
NUM_CLASSES = 10
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "weights")


class SubmissionError(Exception):
    """A failure caused by the submission, reported to the host as (kind, message)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def default_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> float [N, 3, 32, 32] in [-1, 1], as the tutorial's Normalize(0.5, 0.5)."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(DEFAULT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(DEFAULT_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


# --- describing failures ---------------------------------------------------------------


def where_in_submission(error, submission_dir):
    """'model.py line 12' for the innermost traceback frame inside the submission, else ''."""
    location = ""
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename).startswith(os.path.abspath(submission_dir) + os.sep):
            location = f"{os.path.basename(frame.filename)} line {frame.lineno}"
    if isinstance(error, SyntaxError) and error.filename:
        location = f"{os.path.basename(error.filename)} line {error.lineno}"
    return location


def describe(error, submission_dir):
    message = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, SyntaxError):
        message = f"SyntaxError: {error.msg}"
    location = where_in_submission(error, submission_dir)
    return f"{location}: {message}" if location else message


# --- progress, so the host can say what was running when it stopped the sandbox ---------


class Progress:
    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, "progress.json")

    def phase(self, name, **details):
        with open(self.path, "w") as stream:
            json.dump({"phase": name, **details}, stream)


# --- loading the submission -------------------------------------------------------------


def import_model_module(model_path, submission_dir):
    sys.path.insert(0, submission_dir)
    spec = importlib.util.spec_from_file_location("student_model", model_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["student_model"] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise SubmissionError("syntax", describe(error, submission_dir)) from error
    except BaseException as error:  # noqa: BLE001 - anything model.py raises is the student's failure
        raise SubmissionError("import", describe(error, submission_dir)) from error
    return module


def construct_model(module, submission_dir):
    if callable(getattr(module, "build_model", None)):
        factory, name = module.build_model, "build_model()"
    elif isinstance(getattr(module, "Net", None), type):
        factory, name = module.Net, "Net()"
    else:
        raise SubmissionError(
            "contract",
            "model.py defines neither build_model() nor a class Net; define one of them so the grader can "
            "construct your model with no arguments",
        )
    try:
        model = factory()
    except BaseException as error:  # noqa: BLE001
        raise SubmissionError("build", f"{name} failed: {describe(error, submission_dir)}") from error
    if not isinstance(model, torch.nn.Module):
        raise SubmissionError("contract", f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def read_safetensors(path):
    """A safetensors file is an 8-byte header length, a JSON header, then raw little-endian tensors."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}  # fmt: skip
    with open(path, "rb") as stream:
        header_size = int.from_bytes(stream.read(8), "little")
        if header_size > 100 * 2**20:
            raise ValueError("header larger than 100 MB")
        header = json.loads(stream.read(header_size))
        body = stream.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] == "BF16":
            start, end = entry["data_offsets"]
            raw = np.frombuffer(body[start:end], dtype=np.int16).astype(np.int32) << 16
            tensors[name] = torch.from_numpy(raw.view(np.float32).reshape(entry["shape"]).copy()).bfloat16()
            continue
        start, end = entry["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


def is_torchscript(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def unwrap_state_dict(loaded):
    """Students often save {'epoch': ..., 'model_state_dict': ...}; take the tensors wherever they are."""
    if isinstance(loaded, dict) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded
    if isinstance(loaded, dict):
        for key in STATE_DICT_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    return None


def load_whole_model(weights_path, module, warnings):
    """A pickled nn.Module (torch.save(model, path)): its class must be importable here."""
    import __main__

    if module is not None:
        # Notebook pickles name their classes __main__.Net; model.py may define the same class.
        for name, value in vars(module).items():
            if isinstance(value, type) and not hasattr(__main__, name):
                setattr(__main__, name, value)
    try:
        model = torch.load(weights_path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError, ImportError) as error:
        raise SubmissionError(
            "weights",
            f"{os.path.basename(weights_path)} holds a whole pickled model whose class cannot be found ({error}). "
            "It was probably defined in a notebook. Save the weights instead with "
            "torch.save(model.state_dict(), 'weights.pth') and define the class in model.py.",
        ) from error
    except Exception as error:  # noqa: BLE001 - not a pickle torch.save wrote (cut short, another format, garbage)
        raise SubmissionError(
            "weights", f"{os.path.basename(weights_path)}: cannot be read by torch.load ({type(error).__name__})"
        ) from error
    if not isinstance(model, torch.nn.Module):
        raise SubmissionError("weights", f"{os.path.basename(weights_path)} holds {type(model).__name__}, not weights")
    warnings.append({"code": "whole-model"})
    return model


def check_keys(model, state_dict, weights_name):
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{key} {list(state_dict[key].shape)} (model has {list(expected[key].shape)})"
        for key in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    if not (missing or unexpected or wrong_shape):
        return
    parts = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape)):
        if keys:
            shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
            parts.append(f"{label}: {shown}")
    raise SubmissionError("weights", f"{weights_name} does not fit the model in model.py: " + "; ".join(parts))


def without_shared_prefix(state_dict, model_keys, warnings):
    """The state dict without a prefix every key shares ('model.' from PyTorch Lightning, '_orig_mod.' from
    torch.compile), when what is left names exactly the model's keys; else unchanged."""
    keys = list(state_dict)
    if not keys or set(keys) == model_keys:
        return state_dict
    first = keys[0]
    for end in range(len(first)):
        if first[end] != ".":
            continue
        prefix = first[: end + 1]
        if all(key.startswith(prefix) for key in keys) and {key[end + 1 :] for key in keys} == model_keys:
            warnings.append({"code": "key-prefix", "prefix": prefix})
            return {key[end + 1 :]: value for key, value in state_dict.items()}
    return state_dict


def load_model(model_path, weights_path, submission_dir, warnings, progress=None, import_seconds=0):
    """Returns (model, preprocess, weights_format). The host times the import against `import_seconds`."""
    module = None
    if model_path:
        if progress:
            progress.phase("importing", limit_s=import_seconds)
        module = import_model_module(model_path, submission_dir)
        if progress:
            progress.phase("loading")
    preprocess = getattr(module, "preprocess", None) or default_preprocess
    weights_name = os.path.basename(weights_path)
    if is_torchscript(weights_path):
        return torch.jit.load(weights_path, map_location="cpu"), preprocess, "torchscript"
    if module is None:
        raise SubmissionError("contract", f"no model.py: {weights_name} is not a TorchScript archive")
    if weights_path.endswith(".safetensors"):
        try:
            state_dict, weights_format = read_safetensors(weights_path), "safetensors"
        except (ValueError, KeyError, OSError) as error:
            raise SubmissionError("weights", f"{weights_name}: not a readable safetensors file ({error})") from error
    else:
        try:
            loaded = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - weights_only refuses pickled classes with many error types
            if "weights_only" not in str(error) and "Unsupported global" not in str(error):
                raise SubmissionError("weights", f"{weights_name}: cannot be read by torch.load ({error})") from error
            return load_whole_model(weights_path, module, warnings), preprocess, "whole-model"
        state_dict, weights_format = unwrap_state_dict(loaded), "state_dict"
        if state_dict is None:
            raise SubmissionError(
                "weights", f"{weights_name} holds {type(loaded).__name__}, not a state_dict of tensors"
            )
    model = construct_model(module, submission_dir)
    if any(key.startswith("module.") for key in state_dict) and not any(
        key.startswith("module.") for key in model.state_dict()
    ):
        warnings.append({"code": "dataparallel"})  # removed the 'module.' prefix that nn.DataParallel adds
        state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    state_dict = without_shared_prefix(state_dict, set(model.state_dict()), warnings)
    check_keys(model, state_dict, weights_name)
    model.load_state_dict(state_dict)
    return model, preprocess, weights_format


# --- inference --------------------------------------------------------------------------


def pick_device(requested):
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def predict(model, preprocess, images, device, batch_size, progress, submission_dir):
    model.to(device).eval()
    outputs = []
    total = len(images)
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            progress.phase("inference", done=start, total=total)
            batch = torch.from_numpy(np.array(images[start : start + batch_size]))
            try:
                x = preprocess(batch)
                if isinstance(x, torch.Tensor):
                    # A permuted tensor breaks the .view() of tutorial-style models; the tutorial's ToTensor never does.
                    x = x.to(device).contiguous()
                out = model(x)
            except BaseException as error:  # noqa: BLE001
                raise SubmissionError("forward", describe(error, submission_dir)) from error
            if not isinstance(out, torch.Tensor):
                raise SubmissionError("output", f"the model returned {type(out).__name__}, not a tensor")
            if out.ndim != 2 or out.shape != (len(batch), NUM_CLASSES):
                raise SubmissionError(
                    "output", f"the model returned shape {list(out.shape)} for {len(batch)} images; expected [N, 10]"
                )
            outputs.append(out.float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, NUM_CLASSES), np.float32)


def write_meta(output_dir, meta):
    with open(os.path.join(output_dir, "meta.json"), "w") as stream:
        json.dump(meta, stream)


def run(args):
    warnings = []
    meta = {"ok": False, "torch_version": torch.__version__, "warnings": warnings}
    progress = Progress(args.output)
    model = preprocess = images = device = None
    try:
        started = time.perf_counter()
        progress.phase("loading")
        model_path = os.path.join(args.submission, args.model) if args.model else None
        weights_path = os.path.join(args.submission, args.weights)
        model, preprocess, meta["weights_format"] = load_model(
            model_path, weights_path, args.submission, warnings, progress, args.import_seconds
        )
        meta["parameter_count"] = sum(p.numel() for p in model.parameters())
        meta["load_seconds"] = round(time.perf_counter() - started, 4)
        images = np.load(args.images, mmap_mode="r", allow_pickle=False)
        device = pick_device(args.device)
        meta["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        started = time.perf_counter()
        logits = predict(model, preprocess, images, device, args.batch_size, progress, args.submission)
        meta["inference_seconds"] = round(time.perf_counter() - started, 4)
        np.save(os.path.join(args.output, "logits.npy"), logits.astype(np.float32), allow_pickle=False)
        meta["ok"] = True
        progress.phase("done")
    except SubmissionError as error:
        meta["error_kind"], meta["error"] = error.kind, error.message
    write_meta(args.output, meta)
    if args.diagnose and model is not None:
        # The graded figures are already written: a crash here cannot change them.
        add_diagnostics(model, preprocess, images, device, meta)
        write_meta(args.output, meta)
    return 0 if meta["ok"] else 1


def add_diagnostics(model, preprocess, images, device, meta):
    """The self-check's findings (diagnostics.py) into meta["diagnostics"]; advice only, never a failure."""
    found = meta["diagnostics"] = {}
    try:
        # Loaded under a name of its own, off sys.path: a submission's own diagnostics.py stays its own.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diagnostics.py")
        spec = importlib.util.spec_from_file_location("grader_sandbox_diagnostics", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.diagnose(model, preprocess, images, device, meta, found)
    except BaseException as error:  # noqa: BLE001 - diagnostics are advice, never a failure
        found["skipped"] = f"{type(error).__name__}: {str(error)[:300]}"


def install_guard(readable_roots, writable_roots, denied_roots, library_roots):
    """Best-effort barrier for the plain-process fallback, where no namespace hides the disk and network.

    Not a security boundary (the grader refuses to grade with it unless told to); it keeps an honest
    submission from touching the labels, the grader or other students by mistake. An audit hook
    cannot be removed once installed; it refuses network use, new processes, loading native code
    from outside the Python libraries, and opening or listing anything under the denied roots.
    """
    denied = [os.path.realpath(root) for root in denied_roots]
    writable = [os.path.realpath(root) for root in writable_roots]
    libraries = [os.path.realpath(root) for root in library_roots]
    allowed = writable + libraries + [os.path.realpath(root) for root in readable_roots]
    blocked_events = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "os.fork",
                      "os.forkpty", "os.system", "os.posix_spawn", "os.exec", "subprocess.Popen",
                      "os.spawn"}  # fmt: skip

    def inside(path, roots):
        real = os.path.realpath(path)
        return any(real == root or real.startswith(root + os.sep) for root in roots)

    def hook(event, args):
        if event in blocked_events:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "ctypes.dlopen":
            # torchvision loads its compiled operators this way; anything else (libc) is refused.
            name = args[0] if args else None
            if not isinstance(name, (str, bytes)) or not inside(os.fsdecode(name), libraries):
                raise PermissionError(f"sandbox: loading {name!r} is not allowed")
        if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
            path = os.fsdecode(args[0])
            if inside(path, denied) and not inside(path, allowed):
                raise PermissionError(f"sandbox: {path} is outside the submission")
            writing = event == "open" and len(args) > 1 and isinstance(args[1], str) and set(args[1]) & set("wax+")
            if writing and not inside(path, writable):
                raise PermissionError(f"sandbox: cannot write {path}")

    sys.addaudithook(hook)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Run a student's model on the test images")
    parser.add_argument("--submission", required=True, help="folder with the student's files (read-only)")
    parser.add_argument("--model", default="", help="model file name inside the submission, empty for TorchScript")
    parser.add_argument("--weights", required=True, help="weights file name inside the submission")
    parser.add_argument("--images", required=True, help="uint8 [N, 32, 32, 3] .npy file")
    parser.add_argument("--output", required=True, help="folder for logits.npy and meta.json")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--import-seconds", type=float, default=0, help="the host's limit on importing model.py")
    parser.add_argument("--diagnose", action="store_true", help="after the run, probe for common mistakes")
    parser.add_argument("--guard", action="store_true", help="install the audit-hook guard (plain-process fallback)")
    parser.add_argument("--guard-write", action="append", default=[], help="fallback guard: writable root")
    parser.add_argument("--guard-deny", action="append", default=[], help="fallback guard: hidden root")
    parser.add_argument("--guard-read", action="append", default=[], help="fallback guard: Python's libraries")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.guard:
        readable = [args.submission, args.images]
        install_guard(readable, args.guard_write + [args.output], args.guard_deny, args.guard_read)
    return run(args)


def main_and_exit(argv=None):
    """The whole run, then the process ends: how the sandbox starts the runner, cold or forked by the zygote."""
    try:
        status = main(argv)
    except BaseException:  # noqa: BLE001 - reported on stderr; the host reads the exit status
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: a thread or atexit handler of the submission must not keep the finished run alive.
    os._exit(status)


if __name__ == "__main__":
    main_and_exit()
