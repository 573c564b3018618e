"""A user's own model for `own_model.py`: an ordinary nn.Module, nothing nnrecipe-specific.

Kept in a module (not in the script's ``__main__``) so that `nnrecipe predict` and
`nnrecipe.load` can rebuild it from model.json's ``"class": "mynets:DigitsCNN"`` when run from
this folder.
"""

from torch import nn


class DigitsCNN(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN → ReLU → max-pool 2 → linear, for 1×8×8 images."""

    def __init__(self, width: int = 32, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(width * 16, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
