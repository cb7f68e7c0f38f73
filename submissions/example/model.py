"""The lab tutorial's LeNet-5 (class Net, as in section 3.4), with 3 input channels for CIFAR-10."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_pool1 = nn.Sequential(nn.Conv2d(3, 6, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.conv_pool2 = nn.Sequential(nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, stride=2))
        self.fc1 = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
        self.out = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pool2(self.conv_pool1(x))
        x = x.view(x.size(0), -1)
        return self.out(self.fc2(self.fc1(x)))
