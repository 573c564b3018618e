import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.models import build_model


def _vit(**kw):
    spec = {"name": "vit", "in_channels": 1, "image_size": [8, 8], "out_features": 10, "patch_size": 4,
            "dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2, "dropout": 0.1}
    return build_model(spec | kw)


@pytest.mark.parametrize("channels,size,patch", [(1, 8, 2), (1, 8, 4), (3, 32, 4), (3, 32, 8)])
def test_output_shape_and_patch_embedding_parameters(channels, size, patch):
    dim = 32
    m = _vit(in_channels=channels, image_size=[size, size], patch_size=patch)
    assert m(torch.randn(2, channels, size, size)).shape == (2, 10)
    assert sum(p.numel() for p in m.patch_embed.parameters()) == patch * patch * channels * dim + dim
    assert m.positions.shape == (1, (size // patch) ** 2 + 1, dim)


def test_patch_embedding_is_a_linear_map_of_each_flattened_patch():
    m = _vit(in_channels=3, image_size=[8, 12], patch_size=4)
    x = torch.randn(1, 3, 8, 12)
    tokens = m.patch_embed(x).flatten(2).transpose(1, 2)  # [1, 2·3 patches, dim]
    w = m.patch_embed.weight.flatten(1)  # [dim, C·p·p]
    for i in range(2):
        for j in range(3):
            patch = x[0, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4].flatten()
            torch.testing.assert_close(tokens[0, 3 * i + j], w @ patch + m.patch_embed.bias)


def test_head_is_the_last_linear_and_reads_the_cls_token():
    m = _vit().eval()
    assert [x for x in m.modules() if isinstance(x, nn.Linear)][-1] is m.head
    x = torch.randn(2, 1, 8, 8)
    seen = {}
    m.norm.register_forward_hook(lambda mod, i, o: seen.setdefault("z", o))
    logits = m(x)
    torch.testing.assert_close(logits, m.head(seen["z"][:, 0]))


def test_attention_maps():
    m = _vit(patch_size=2)
    maps = m.attention_maps(torch.randn(2, 1, 8, 8))
    assert len(maps) == 2 and maps[0].shape == (2, 4, 17, 17)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 17))


def test_bad_specs():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        _vit(image_size=[8, 8], patch_size=3)
    with pytest.raises(ValueError, match="divisible by heads"):
        _vit(dim=30, heads=4)


def test_fits_a_few_digit_sized_images():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    m = _vit(dropout=0.0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = F.cross_entropy(m(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 5
