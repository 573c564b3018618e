"""TensorBoard event files for a fit (``train.tensorboard: true`` / ``--tensorboard``).

`TensorBoardLogger` is a callback that writes, through ``torch.utils.tensorboard.SummaryWriter``
(the `tensorboard` package, an optional extra: ``pip install "nnrecipe[tensorboard]"``), into
``RUN/tensorboard/`` (``RUN/tensorboard/member-i`` for ensemble members):

- per epoch: ``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy``, ``epoch/lr``,
  ``epoch/grad_norm``, ``epoch/clip_fraction`` (the history.csv row, x = epoch);
- per log step: ``step/loss`` and ``step/lr`` (x = optimizer step), values the trainer already
  synced for its log step, so logging adds no host-device sync;
- the health monitor's sampled statistics at the end of fit: ``health/<layer>/<statistic>``
  (x = step);
- the configuration (config.yaml's text) under the tag ``config``.

`tensorboard --logdir runs` shows every run; tensorboard's ``EventAccumulator`` reads them back.
"""

from __future__ import annotations

from pathlib import Path

from nnrecipe.errors import UserError
from nnrecipe.training.callbacks import Callback

EPOCH_TAGS = {"train_loss": "train/loss", "train_accuracy": "train/accuracy", "val_loss": "val/loss",
              "val_accuracy": "val/accuracy", "lr": "epoch/lr", "grad_norm": "epoch/grad_norm",
              "clip_fraction": "epoch/clip_fraction"}
HEALTH_STATS = ("grad_norm", "update_ratio", "act_mean", "act_std", "dead_fraction")


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter  # imports the optional tensorboard package
    except ImportError:
        raise UserError("train.tensorboard needs the tensorboard package", "train.tensorboard",
                        'pip install "nnrecipe[tensorboard]", or drop --tensorboard') from None
    return SummaryWriter


class TensorBoardLogger(Callback):
    order = 60  # after early stopping and history: logs what they logged

    def __init__(self, log_dir: Path, *, config_text: str, health=None):
        self.writer_class = _summary_writer()  # fails before training starts when it is missing
        self.log_dir, self.config_text, self.health = Path(log_dir), config_text, health
        self.writer = None

    def on_fit_begin(self, trainer, logs):
        self.writer = self.writer_class(log_dir=str(self.log_dir))
        self.writer.add_text("config", f"```yaml\n{self.config_text}\n```", global_step=0)

    def on_batch_end(self, trainer, logs):
        self.writer.add_scalar("step/loss", logs["loss"], logs["step"])
        self.writer.add_scalar("step/lr", logs["lr"], logs["step"])

    def on_epoch_end(self, trainer, logs):
        for key, tag in EPOCH_TAGS.items():
            if logs.get(key) is not None:
                self.writer.add_scalar(tag, float(logs[key]), int(logs["epoch"]))
        self.writer.flush()

    def on_fit_end(self, trainer, logs):
        for row in getattr(self.health, "rows", []):
            for stat in HEALTH_STATS:
                if row.get(stat) is not None:
                    self.writer.add_scalar(f"health/{row['layer']}/{stat}", float(row[stat]), int(row["step"]))
        self.writer.close()
