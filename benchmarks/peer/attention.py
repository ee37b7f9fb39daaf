"""The best a PyTorch user can do for BigGAN's attention core on this CPU, eagerly: the
forward and backward of softmax(QᵀK) applied to V at the shapes of the 64×64×3 inverter step
(batch 64, 32×32 positions, keys and values pooled to 16×16, ch 16: query and key 2 channels,
value 8), three ways:

- bmm: BigGAN-PyTorch's `bmm(g, softmax(bmm(θᵀ, φ)).transpose)`, the tuned peer's;
- bmm, row-major: the same products ordered so no gradient arrives transposed;
- sdpa: `F.scaled_dot_product_attention(q, k, v, scale=1)`, PyTorch 2.x's fused attention.

Afterimage runs its own fused kernel here (Sources/CTorch/attention.cpp); this script says
whether PyTorch offers the peer anything faster than its bmm.

    .venv/bin/python benchmarks/peer/attention.py [--threads 2] [--repeats 6]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def biggan(theta, phi, g):  # θ [B, dk, N], φ [B, dk, M], g [B, dv, M] → [B, dv, N]
    return torch.bmm(g, F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1).transpose(1, 2))


def row_major(theta, phi, g):
    return torch.bmm(F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1), g.transpose(1, 2)).transpose(1, 2)


def sdpa(theta, phi, g):
    q, k, v = (t.transpose(1, 2).unsqueeze(1) for t in (theta, phi, g))  # [B, 1, positions, channels]
    return F.scaled_dot_product_attention(q, k, v, scale=1.0).squeeze(1).transpose(1, 2)


def best_time(attention, inputs, repeats):
    """The fastest of `repeats` forward-and-backward passes, in milliseconds, and the output."""
    times = []
    for _ in range(repeats):
        for tensor in inputs:
            tensor.grad = None
        start = time.perf_counter()
        out = attention(*inputs)
        out.backward(torch.ones_like(out))
        times.append(time.perf_counter() - start)
    return min(times) * 1000, out.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    B, N, M, dk, dv = args.batch_size, 1024, 256, 2, 8
    inputs = [torch.randn(B, c, n, generator=generator).requires_grad_() for c, n in ((dk, N), (dk, M), (dv, M))]
    reference = None
    for name, attention in (("bmm", biggan), ("bmm_row_major", row_major), ("sdpa", sdpa)):
        ms, out = best_time(attention, inputs, args.repeats)
        reference = out if reference is None else reference
        print(json.dumps({"attention": name, "forward_backward_ms": round(ms, 2), "threads": args.threads,
                          "shape": [B, N, M, dk, dv], "max_difference_from_bmm": float((out - reference).abs().max())}))


if __name__ == "__main__":
    main()
