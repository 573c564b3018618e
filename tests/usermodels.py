"""Users' own nn.Modules for the custom-model tests: importable as `usermodels` (tests/ is on the
path), so runs of them rebuild from model.json's "usermodels:Class"."""

import torch
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.head = nn.Linear(width * 16, classes)

    def forward(self, x):
        return self.head(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


class FlatMLP(nn.Module):
    """Any input shape, flattened: no dropout or batch norm, so data-parallel equals one process."""

    def __init__(self, n_in: int = 64, classes: int = 10, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


class ShapeRecorder(nn.Module):
    """Remembers the shape of the last input batch it saw (inputs of any shape [N, 4, 5])."""

    def __init__(self, classes: int = 2):
        super().__init__()
        self.lin = nn.Linear(20, classes)
        self.seen = None

    def forward(self, x):
        self.seen = tuple(x.shape[1:])
        return self.lin(x.flatten(1))
