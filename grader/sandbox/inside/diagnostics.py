"""The self-check's probes (runner.py --diagnose, for `grader check` only); each finding is a field of meta.json's
"diagnostics", which the host validates (protocol.Diagnostics). The labels stay on the host, so the normalisation
probe reports the predicted classes of every `step`-th image as digits, and the host scores them.
"""

import numpy as np
import torch

NUM_CLASSES = 10
SAMPLE = 500  # images probed per normalisation: enough to tell 5 rubric points from noise
SHOWN = 5  # names reported per finding
NORMALISATIONS = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # ToTensor() without Normalize
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # the tutorial's Normalize, the runner's default
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
PROBE_SHAPES = ((1, 28, 28), (3, 28, 28), (1, 32, 32))


def normalise(images, mean, std):
    x = images.permute(0, 3, 1, 2).float().div_(255)
    return ((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).contiguous()


def untrained_batchnorm(model):
    """BatchNorm layers whose running statistics are still mean 0, variance 1: they never saw a batch."""
    buffers = dict(model.named_buffers())
    names = []
    for key, mean in buffers.items():
        if key.endswith("running_mean"):
            var = buffers.get(key[: -len("running_mean")] + "running_var")
            if var is not None and bool((mean == 0).all()) and bool((var == 1).all()):
                names.append(key[: -len(".running_mean")] or "(model)")
    return names[:SHOWN]


def probe_input_shapes(model, device):
    """The input shapes [C, H, W], other than CIFAR-10's, on which the model runs; for a model built for MNIST."""
    fits = []
    for shape in PROBE_SHAPES:
        try:
            out = model(torch.zeros((2, *shape), device=device))
            if isinstance(out, torch.Tensor) and out.shape == (2, NUM_CLASSES):
                fits.append(list(shape))
        except Exception:  # noqa: BLE001 - a probe that fails is the expected answer
            pass
    return fits


def as_graded(preprocess, images, device):
    """The preprocessed batch as the runner hands it to the model: on the device and contiguous."""
    x = preprocess(images)
    return x.to(device).contiguous() if isinstance(x, torch.Tensor) else x


def inference_mode_findings(model, preprocess, sample, device, found):
    x = as_graded(preprocess, sample, device)
    first, second = model(x).float(), model(x).float()
    scale = float(first.abs().max()) + 1e-6
    found["train_mode"] = [name or "(model)" for name, module in model.named_modules() if module.training][:SHOWN]
    found["random"] = float((first - second).abs().max()) > 1e-4 * scale
    found["batch_stats"] = (
        not found["random"] and len(x) > 2 and float((model(x[:2]).float() - first[:2]).abs().max()) > 1e-3 * scale
    )


def normalisation_predictions(model, preprocess, images, device):
    step = max(1, len(images) // SAMPLE)
    sample = torch.from_numpy(np.array(images[::step][:SAMPLE]))

    def digits(x):
        return "".join(str(int(p)) for p in model(x.to(device)).argmax(1))

    probe = {"step": step, "used": digits(as_graded(preprocess, sample, device))}
    return probe | {name: digits(normalise(sample, mean, std)) for name, (mean, std) in NORMALISATIONS.items()}


def diagnose(model, preprocess, images, device, meta, found):
    """Fills `found` with what a student should know about their model; what it found before a failure stays."""
    model.eval()
    found["batchnorm_init"] = untrained_batchnorm(model)
    with torch.inference_mode():
        if not meta["ok"]:
            if meta.get("error_kind") == "forward":
                found["input_shapes"] = probe_input_shapes(model, device)
            return
        inference_mode_findings(model, preprocess, torch.from_numpy(np.array(images[:16])), device, found)
        found["normalisation"] = normalisation_predictions(model, preprocess, images, device)
