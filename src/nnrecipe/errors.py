"""Errors a user can fix. The CLI prints ``error: <what> (<where>, <how to fix>)`` and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a file, column, config value or shape the user must change."""

    def __init__(self, what: str, where: str, fix: str):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(f"{what} ({where}, {fix})")


class TrainingDiverged(Exception):
    """The loss became NaN/Inf; the trainer keeps the last good weights."""

    def __init__(self, step: int, epoch: int, value: float):
        self.step, self.epoch, self.value = step, epoch, value
        super().__init__(f"loss became {value} at step {step} (epoch {epoch})")
