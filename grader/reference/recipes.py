"""How each reference network is trained. The architecture lives in reference/<name>/model.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WarmRestart(BaseModel):
    """A phase after the main schedule (as in SGDR): the learning rate jumps back up, then anneals to zero along a
    cosine, continuing from the previous phase's weights and momentum buffers."""

    epochs: int = Field(gt=0)
    learning_rate: float = Field(gt=0)


class Recipe(BaseModel):
    name: str = Field(description="Folder under reference/ holding model.py")
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0, description="Peak learning rate")
    momentum: float = Field(ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    schedule: Literal["constant", "one-cycle"] = "constant"
    augment: bool = Field(default=False, description="Random crop with padding 4 and horizontal flip")
    channels_last: bool = Field(
        default=False, description="Faster convolutions on CPU; needs a model that never calls .view"
    )
    seed: int = 1
    warm_restarts: list[WarmRestart] = []

    @property
    def phase_epochs(self) -> list[int]:
        """Epochs of each phase: the main schedule, then each warm restart in turn."""
        return [self.epochs] + [restart.epochs for restart in self.warm_restarts]

    @property
    def total_epochs(self) -> int:
        return sum(self.phase_epochs)

    def phase_of(self, epoch: int) -> int:
        """0 for an epoch (counted from 1) of the main schedule, k for one of the k-th warm restart."""
        end = 0
        for phase, epochs in enumerate(self.phase_epochs):
            end += epochs
            if epoch <= end:
                return phase
        raise ValueError(f"epoch {epoch} is past the recipe's {self.total_epochs} epochs")


def resnet_recipe(name: str, **changes) -> Recipe:
    """The ResNets share SGD with Nesterov momentum, one-cycle, weight decay, label smoothing and augmentation."""
    common = dict(
        batch_size=128,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        label_smoothing=0.1,
        schedule="one-cycle",
        augment=True,
        channels_last=True,
    )
    return Recipe(name=name, **(common | changes))


RECIPES = {
    # The tutorial's recipe (SGD with momentum, cross-entropy, batch 64, lr 0.01, seed 1), run for more epochs.
    "lenet5": Recipe(name="lenet5", epochs=10, batch_size=64, learning_rate=0.01, momentum=0.9),
    # On the course's JPEG-decoded test split: 86.9% after the one-cycle epochs, 87.8% and 88.4% after each restart.
    "resnet20": resnet_recipe(
        "resnet20",
        epochs=30,
        learning_rate=0.2,
        warm_restarts=[WarmRestart(epochs=15, learning_rate=0.05), WarmRestart(epochs=20, learning_rate=0.05)],
    ),
    "resnet18": resnet_recipe("resnet18", epochs=40, learning_rate=0.1),
}
