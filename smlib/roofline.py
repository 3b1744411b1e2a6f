"""How close a training step runs to this machine's matrix-multiply rate (the bench's roofline columns).

Useful work of a step, per trainable transformer block and per real (unpadded) token, forward + backward:

    FLOP per token per block = 6 * (4 H^2 + 2 H I)

(forward: 2 FLOP per multiply-add over the block's four H x H projections, query, key, value and attention
output, and its two H x I feed-forward matrices; backward: twice the forward, the gradients of inputs and
of weights). For all-MiniLM-L6-v2 (H = 384, I = 1536) that is 10.6 MFLOP, the "~11 MFLOP" the speed work was planned with.
Attention's score and value products (4 T H per token forward, T the text's length) and every elementwise
op are left out: they are a few percent of it at these lengths, and a step that spends its time on them is
exactly what the share should expose. Full fine-tuning counts every block (6); the pooling adapter of
trainable_layers 0 counts none (no share is given).

The denominator is a GEMM of the block's own shape, (T x H) @ (H x I) with T = the step's real token count,
timed here in bf16 and in fp32: share = achieved FLOP/s / the GEMM rate of the precision the setting ran in.
"""
from __future__ import annotations

import math
import statistics
import time

import torch


def flop_per_token(hidden: int, intermediate: int) -> float:
    """Forward + backward FLOP of one transformer block per token (the formula above)."""
    return 6.0 * (4 * hidden * hidden + 2 * hidden * intermediate)


def trainable_blocks(trainable_layers, n_layers: int) -> int:
    """How many blocks a step runs forward and backward: all of them for 'all', else trainable_layers."""
    return n_layers if trainable_layers == "all" else int(trainable_layers)


def gemm_rate(tokens: int, hidden: int, intermediate: int, dtype: torch.dtype, device: torch.device | str = "cpu",
              repeats: int = 7, min_seconds: float = 0.2) -> float:
    """FLOP/s of (tokens x hidden) @ (hidden x intermediate) in dtype: the median of `repeats` timings, each of
    enough back-to-back products to last min_seconds."""
    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(tokens, hidden, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(hidden, intermediate, generator=g).to(device=device, dtype=dtype)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):  # warm-up: thread pool, kernel selection
        torch.matmul(a, b)
    sync()
    t0 = time.perf_counter()
    torch.matmul(a, b)
    sync()
    per = max(1, math.ceil(min_seconds / max(time.perf_counter() - t0, 1e-6)))  # products per timing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per):
            torch.matmul(a, b)
        sync()
        times.append((time.perf_counter() - t0) / per)
    return 2.0 * tokens * hidden * intermediate / statistics.median(times)


def machine_rates(tokens: int, hidden: int, intermediate: int, device: torch.device | str = "cpu") -> dict[str, float]:
    """The GEMM rate of both precisions a setting may run in, keyed as train.precision names them."""
    return {"bf16": gemm_rate(tokens, hidden, intermediate, torch.bfloat16, device),
            "fp32": gemm_rate(tokens, hidden, intermediate, torch.float32, device)}


def achieved(seconds: float, tokens: int, blocks: int, hidden: int, intermediate: int) -> float:
    """Useful FLOP/s of a step: FLOP per token per block x blocks x real tokens / its seconds."""
    return flop_per_token(hidden, intermediate) * blocks * tokens / seconds
