#!/usr/bin/env python3
"""What this machine's libtorch can do on the shapes that dominate an inverter training step.

Profiles one step of the tuned peer (benchmarks/peer/inverter.py --variant tuned) with
torch.profiler (record_shapes, with_flops), groups the convolutions and matrix products by
shape, and times the shapes that carry 90% of the step's FLOPs alone: each as a forward
convolution (or matmul) of the same shape on random data, the best of `--repeats` runs after a
warm-up. The limit is the step's FLOPs over the time those best kernels would take for them:
what the step would reach if every dominant op ran as fast as libtorch runs it alone.

    limit.py --resolution 64 --channels 3 --batch-size 64 --threads 2

Prints one JSON line: limit_gflops, the profiled step's flops, and per shape its share, best
GFLOP/s and calls. Run it with .venv/bin/python, the torch whose libtorch the Swift side links.
"""
import argparse
import json
import sys
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

import inverter  # benchmarks/peer/inverter.py
from step import environment_fields

CONVOLUTIONS = {"aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution"}
PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"}


def profile_step(args):
    """The tuned peer's training step under the profiler: its FLOPs by op shape."""
    nets = inverter.build(args)
    images = torch.rand(args.batch_size, args.channels, args.resolution, args.resolution)
    with torch.no_grad():
        logit_scale = max(nets[3](images).std().item(), 1e-6)
    nets, optimizers, images, extra = inverter.prepare("tuned", nets, images)
    G = nets[0]
    noise = torch.Generator().manual_seed(1)

    def step(index):
        inverter.training_step(nets, optimizers, images, torch.randn(args.batch_size, G.noise_size, generator=noise),
                               torch.randn(args.batch_size, G.noise_size, generator=noise), logit_scale, index, **extra)

    step(0)  # warm-up: oneDNN's kernels are chosen on the first call
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True, with_flops=True) as profiler:
        step(1)
    shapes = defaultdict(lambda: {"flops": 0, "calls": 0})
    total = 0
    for event in profiler.events():
        if not event.flops:
            continue
        total += event.flops
        if event.name in CONVOLUTIONS and len(event.input_shapes) >= 2 and len(event.input_shapes[1]) == 4:
            key = ("conv", tuple(event.input_shapes[0]), tuple(event.input_shapes[1]))
        elif event.name in PRODUCTS and len(event.input_shapes) >= 2 and len(event.input_shapes[-2]) == 2 \
                and len(event.input_shapes[-1]) == 2 and event.input_shapes[-2][1] == event.input_shapes[-1][0]:
            key = ("matmul", tuple(event.input_shapes[-2]), tuple(event.input_shapes[-1]))  # [M, K] @ [K, N]
        else:
            continue
        shapes[key]["flops"] += event.flops
        shapes[key]["calls"] += 1
    return total, shapes


def best_throughput(kind, a, b, repeats):
    """The best GFLOP/s of one forward op of this shape, alone, on random data."""
    if kind == "conv":
        x = torch.randn(*a).contiguous(memory_format=torch.channels_last)
        w = torch.randn(*b).contiguous(memory_format=torch.channels_last)
        padding = b[2] // 2
        flops = 2 * a[0] * b[0] * b[1] * b[2] * b[3] * a[2] * a[3]  # stride 1, "same" padding
        run = lambda: F.conv2d(x, w, padding=padding)
    else:
        x, w = torch.randn(*a), torch.randn(*b)
        flops = 2 * a[0] * a[1] * b[1]
        run = lambda: x @ w
    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            run()
        best = min(best, (time.perf_counter() - start) / 5)
    return flops / best / 1e9


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, choices=[32, 64, 128], default=32)
    parser.add_argument("--channels", type=int, choices=[1, 3], default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per shape; the best counts")
    parser.add_argument("--coverage", type=float, default=0.9, help="time the shapes that carry this share of the FLOPs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total, shapes = profile_step(args)
    ranked = sorted(shapes.items(), key=lambda item: -item[1]["flops"])
    covered, rows, seconds = 0, [], 0.0
    for (kind, a, b), stats in ranked:
        if covered >= args.coverage * total:
            break
        gflops = best_throughput(kind, a, b, args.repeats)
        covered += stats["flops"]
        seconds += stats["flops"] / (gflops * 1e9)
        rows.append({"kind": kind, "input": list(a), "weight": list(b), "calls": stats["calls"],
                     "share": stats["flops"] / total, "best_gflops": gflops})
    limit = covered / seconds / 1e9 if seconds else float("nan")
    print(json.dumps({"impl": "python", "mode": "limit", "resolution": args.resolution, "channels": args.channels,
                      "batch_size": args.batch_size, "profiled_flops_per_step": total, "covered_share": covered / total,
                      "limit_gflops": limit, "shapes": rows, **environment_fields()}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
