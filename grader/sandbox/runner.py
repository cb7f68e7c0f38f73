"""Runs inside the sandbox. Depends only on torch and numpy, so it is easy to audit and to install."""

import torch

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


def default_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> float [N, 3, 32, 32] in [-1, 1], as the tutorial's Normalize(0.5, 0.5)."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(DEFAULT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(DEFAULT_STD).view(1, 3, 1, 1)
    return (x - mean) / std
