"""How this example's weights.pth was made: the lab tutorial's recipe, on CIFAR-10.

    python train.py                       # downloads CIFAR-10 with torchvision
    python train.py --npz train.npz       # or reads an .npz with images [N,32,32,3] and labels

Recipe (section 3 of the tutorial, run longer): batch 64, SGD with lr 0.01 and momentum 0.9,
cross-entropy, 10 epochs, seed 1, Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).
"""

import argparse

import numpy as np
import torch
from model import Net
from torch import nn


def load_training_set(npz_path):
    if npz_path:
        with np.load(npz_path) as data:
            images, labels = data["images"], data["labels"]
    else:
        import torchvision

        dataset = torchvision.datasets.CIFAR10("./datasets", train=True, download=True)
        images, labels = dataset.data, np.array(dataset.targets)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    return torch.utils.data.TensorDataset(x, torch.from_numpy(labels).long())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(1)
    loader = torch.utils.data.DataLoader(load_training_set(args.npz), batch_size=64, shuffle=True)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        net.train()
        total, correct = 0, 0
        for images, labels in loader:
            optimizer.zero_grad()
            outputs = net(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            total += len(labels)
            correct += (outputs.argmax(1) == labels).sum().item()
        print(f"[{epoch}/{args.epochs}] train accuracy {correct / total:.4f}")
    torch.save(net.state_dict(), "weights.pth")


if __name__ == "__main__":
    main()
