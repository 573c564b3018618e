"""Length bucketing for token batches: each batch holds sequences of similar length and is cut to
its own longest one, so a batch of 30-token texts does not pay for the 400-token text elsewhere.

    perm  = a random permutation of the N rows (the batch-order generator)
    pools = perm cut into chunks of B · POOL rows; each chunk sorted by length (stable)
    batches = every sorted chunk cut into batches of B; the order of all batches shuffled
    batch  = rows[idx][:, :max(lengths[idx])]   (each input and a token target by its own lengths)

The pooled sort is the bucket iterator of torchtext's ``BucketIterator`` and AllenNLP's
``BucketBatchSampler`` (sort within a large random pool, shuffle the batches): batches stay random
between epochs while padding falls to a few tokens. Lengths are counted once on the host, so no
step reads anything back from the device to cut its batch. Hand-written: the samplers above belong
to libraries that are not dependencies here, and it is a dozen lines over `torch.randperm`.
"""

from __future__ import annotations

import torch

POOL = 50  # batches per sorted pool


def token_lengths(t: torch.Tensor, pad: int = 0) -> torch.Tensor | None:
    """Non-pad tokens per row of a right-padded id tensor [N, T] (on the host), or None when `t` is
    not a token tensor (floats, or a 1-D class target)."""
    if t.dim() != 2 or t.dtype != torch.long:
        return None
    return (t != pad).sum(dim=1).cpu()


class LengthBuckets:
    """The Trainer's batching for token data (module docstring): `order` draws the epoch's index
    batches, `take` cuts a batch to its own length."""

    def __init__(self, X, y: torch.Tensor):
        inputs = X if isinstance(X, tuple) else (X,)
        self.lengths = [token_lengths(t) for t in inputs]
        self.target_lengths = token_lengths(y)
        self.key = self.lengths[0]  # bucketed by the (source) input's length

    def order(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device,
              *, drop_singleton: bool = False) -> list[torch.Tensor]:
        perm = torch.randperm(n, generator=generator)
        batches = []
        for start in range(0, n, batch_size * POOL):
            pool = perm[start:start + batch_size * POOL]
            pool = pool[torch.sort(self.key[pool], stable=True).indices]
            batches += list(pool.split(batch_size))
        if drop_singleton and len(batches[-1]) == 1 and len(batches) > 1:
            batches[-2] = torch.cat(batches[-2:])  # BatchNorm cannot train on 1 row
            batches.pop()
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]  # host indices: `take` moves them, nothing is read back

    @staticmethod
    def _cut(t: torch.Tensor, rows: torch.Tensor, width: int | None) -> torch.Tensor:
        t = t[rows]
        return t if width is None else t[:, :width]

    def take(self, X, y: torch.Tensor, idx: torch.Tensor):
        """Rows `idx`, the first input cut to its longest row; the other inputs and a token target
        (seq2seq's decoder inputs and outputs, which must stay aligned) to their common longest."""
        inputs = X if isinstance(X, tuple) else (X,)
        widths = [None if n is None else max(int(n[idx].max()), 1) for n in [*self.lengths, self.target_lengths]]
        aligned = [w for w in widths[1:] if w is not None]
        common = max(aligned) if aligned else None
        rows = idx.to(y.device)  # one host-to-device copy of the indices per batch
        cut = (self._cut(inputs[0], rows, widths[0]),
               *(self._cut(t, rows, common if w is not None else None) for t, w in zip(inputs[1:], widths[1:-1])))
        return (cut if isinstance(X, tuple) else cut[0]), self._cut(y, rows, common if widths[-1] is not None else None)
