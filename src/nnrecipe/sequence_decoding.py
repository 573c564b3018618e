"""Decoding and sampling for trained sequence models (shared by fit, predict and `nnrecipe sample`).

- `decode_outputs`: seq2seq source ids → output strings, greedy (argmax each step) or beam search
  (``beam > 1``, GNMT length penalty; RNN seq2seq only — the Transformer decodes greedily).
- `sample_text`: a language model continues a prompt, drawing each token from softmax(z/τ)
  (τ → 0 approaches argmax, τ > 1 flattens the distribution).
"""

from __future__ import annotations

import torch

from nnrecipe.data import BOS, EOS, Vocab
from nnrecipe.models.rnn import RecurrentNet


@torch.no_grad()
def decode_outputs(model, arch: dict, src: torch.Tensor, vocab: Vocab, *, max_len: int, beam: int = 1,
                   length_penalty: float = 0.6, batch_size: int = 512):
    """→ (list of decoded strings, attention [N, L, S] of greedy decoding or None)."""
    model.eval()
    outputs, maps = [], []
    for i in range(0, len(src), batch_size):
        s = src[i:i + batch_size]
        if beam > 1 and arch["name"] == "seq2seq":
            tokens, attn = model.beam_search(s, None, max_len, BOS, EOS, beam=beam,
                                             length_penalty=length_penalty), None
        else:
            tokens, attn = model.greedy_decode(s, None, max_len, BOS, EOS)
        outputs += [vocab.decode(row) for row in tokens.tolist()]
        if attn is not None:
            maps.append(attn)
    attention = None
    if maps and len(maps) == 1:
        attention = maps[0].cpu()
    elif maps:  # batches decode to different lengths: pad to the longest
        L = max(m.shape[1] for m in maps)
        attention = torch.cat([torch.nn.functional.pad(m, (0, 0, 0, L - m.shape[1])) for m in maps]).cpu()
    return outputs, attention


@torch.no_grad()
def sample_text(model, arch: dict, vocab: Vocab, prompt: str, length: int, *, temperature: float = 0.8,
                seed: int = 0) -> str:
    """The prompt followed by `length` sampled tokens."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = vocab.encode(prompt) or [vocab.encode(" ")[0] if " " in vocab.tokens else 4]
    x = torch.tensor([ids], device=device)
    recurrent = isinstance(model, RecurrentNet)
    if recurrent:
        logits, state = model.forward_with_state(x, None, None)
    else:
        logits = model(x[:, -model.max_len:])
    new = []
    for _ in range(length):
        probs = (logits[:, -1] / temperature).softmax(-1)
        probs[:, :4] = 0  # never emit <pad> <unk> <bos> <eos> into running text
        nxt = torch.multinomial(probs, 1, generator=generator)
        new.append(int(nxt))
        if recurrent:  # carry the state: one step per token
            logits, state = model.forward_with_state(nxt, None, state)
        else:  # no key/value cache: re-read the (cropped) context
            x = torch.cat([x, nxt], dim=1)
            logits = model(x[:, -model.max_len:])
    return prompt + _join(vocab, new)


def _join(vocab: Vocab, ids: list[int]) -> str:
    tokens = [vocab.tokens[i] for i in ids if i >= 4]
    return "".join(tokens) if vocab.level == "char" else " " + " ".join(tokens)
