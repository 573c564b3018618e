"""ResNet training throughput in images/s (forward + backward + AdamW step), batch 128.

Measured in this one run on whatever device is there (no stored numbers):
  - CPU: fp32 (and bf16 autocast with --bf16)
  - CUDA (when present): fp32, then channels_last + bf16 autocast, then + torch.compile, each as
    images/s and as a fraction of the GPU's peak, where achieved FLOP/s = 3 × forward MACs × 2 ×
    images/s (backward ≈ 2× forward) and the peak is measured in the same run with a large bf16
    matmul (so the fraction is of a measured, not a datasheet, peak).

    python benchmarks/conv_throughput.py [--size 32] [--steps 20] [--widths 32,64,128]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nnrecipe.models import build_model
from nnrecipe.models.summary import summarize


def _model(size: int, widths: list[int], device):
    spec = {"name": "resnet", "in_channels": 3, "image_size": [size, size], "out_features": 10,
            "widths": widths, "blocks": [2] * len(widths), "norm": "batch", "activation": "relu", "dropout": 0.0}
    return build_model(spec).to(device)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_second(model, device, *, batch: int, size: int, steps: int, bf16: bool,
                      channels_last: bool) -> float:
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - start)


def peak_matmul_flops(device, dtype) -> float:
    n = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps = 20 if device.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--widths", default="32,64,128")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast on the CPU")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    macs = summarize(_model(args.size, widths, torch.device("cpu")), (1, 3, args.size, args.size))["total_macs"]
    flops_per_image = 3 * 2 * macs
    print(f"resnet widths {widths}, {args.size}x{args.size}, batch {args.batch}: "
          f"{macs / 1e6:.1f} M forward MACs per image")
    cpu = torch.device("cpu")
    for bf16 in ([False, True] if args.bf16 else [False]):
        ips = images_per_second(_model(args.size, widths, cpu), cpu, batch=args.batch, size=args.size,
                                steps=args.steps, bf16=bf16, channels_last=False)
        print(f"cpu {'bf16' if bf16 else 'fp32'}: {ips:.0f} images/s "
              f"({ips * flops_per_image / 1e9:.1f} GFLOP/s; CPU fp32 matmul peak here "
              f"{peak_matmul_flops(cpu, torch.float32) / 1e9:.0f} GFLOP/s)")
    if not torch.cuda.is_available():
        print("no CUDA device: GPU rows skipped")
        return
    gpu = torch.device("cuda")
    peak = peak_matmul_flops(gpu, torch.bfloat16)
    print(f"gpu: {torch.cuda.get_device_name()}, measured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s")
    variants = [("fp32", False, False, False), ("channels_last+bf16", True, True, False),
                ("channels_last+bf16+compile", True, True, True)]
    for name, bf16, cl, compiled in variants:
        model = _model(args.size, widths, gpu)
        if compiled:
            model = torch.compile(model)
        ips = images_per_second(model, gpu, batch=args.batch, size=args.size, steps=args.steps * 5,
                                bf16=bf16, channels_last=cl)
        print(f"gpu {name}: {ips:.0f} images/s, {ips * flops_per_image / peak:.1%} of the measured peak")


if __name__ == "__main__":
    main()
