#!/usr/bin/env python3
"""The Python PyTorch peer of afterimage-bench (benchmarks/swift/main.swift).

Same model, same training step, same CLI, same JSON lines, with "impl": "python":

    step.py step --repeats N --warmup W [--threads T] [--seed S]
    step.py overhead --count N [--threads T]

Run it with .venv/bin/python (the torch whose libtorch the Swift side links).
"""
import argparse
import json
import os
import re
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class UpBlock(nn.Module):
    """BatchNorm -> ReLU -> nearest 2x upsampling -> 3x3 convolution: doubles the resolution."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        # [B, Cin, H, W] -> [B, Cin, 2H, 2W] -> [B, Cout, 2H, 2W]
        return self.conv(F.interpolate(F.relu(self.bn(x)), scale_factor=2, mode="nearest"))


class ConvGenerator(nn.Module):
    """z [B, 128] -> image [B, 3, 32, 32] in (-1, 1); layers built in the Swift side's order."""

    latent_size = 128

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(self.latent_size, 4 * 4 * 256)
        self.blocks = nn.Sequential(UpBlock(256, 128), UpBlock(128, 64), UpBlock(64, 32))
        self.bn_out = nn.BatchNorm2d(32)
        self.conv_out = nn.Conv2d(32, 3, 3, padding=1)

    def forward(self, z):
        x = self.fc(z).view(z.shape[0], 256, 4, 4)  # [B, 256, 4, 4]
        x = self.blocks(x)  # [B, 128, 8, 8] -> [B, 64, 16, 16] -> [B, 32, 32, 32]
        return torch.tanh(self.conv_out(F.relu(self.bn_out(x))))  # [B, 3, 32, 32]


def loaded_library(name):
    """The first library mapped into this process whose path contains `name`, resolved, or ""."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line[line.find("/"):].strip() if "/" in line else ""
                if name in os.path.basename(path):
                    return os.path.realpath(path)
    except OSError:
        pass
    return ""


def environment_fields():
    return {
        "threads": torch.get_num_threads(),
        "libtorch": torch.__version__,
        "libtorch_path": loaded_library("libtorch_cpu.so"),
        "blas": torch_blas(),
    }


def torch_blas():
    """The BLAS torch computes with: its build's BLAS_INFO (MKL is linked into the wheel's
    libtorch_cpu), not whatever else is mapped (numpy brings an OpenBLAS of its own)."""
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return f"{found.group(1)} (libtorch's)" if found else loaded_library("blas")


def measure_steps(repeats, warmup, seed):
    torch.manual_seed(seed)
    batch = 64
    model = ConvGenerator()  # weights from the global generator, as on the Swift side
    z = torch.randn(batch, ConvGenerator.latent_size)  # [64, 128], fixed
    target = torch.rand(batch, 3, 32, 32) * 2 - 1  # [64, 3, 32, 32] in [-1, 1), fixed
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    first_loss = None

    def step():
        nonlocal first_loss
        output = model(z)  # [64, 3, 32, 32]
        loss = F.l1_loss(output, target)
        optimizer.zero_grad(set_to_none=True)  # the Swift side drops gradients too
        loss.backward()
        optimizer.step()
        if first_loss is None:
            first_loss = loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    fields = environment_fields()
    fields.update(
        impl="python",
        params=sum(p.numel() for p in model.parameters()),
        step_times_s=times,
        first_loss=first_loss,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
    )
    print(json.dumps(fields, sort_keys=True))


def measure_overhead(count):
    a = torch.tensor([1.0])
    b = torch.tensor([2.0])
    for _ in range(max(count // 10, 1000)):  # warm-up
        a + b
    start = time.perf_counter()
    for _ in range(count):
        a + b
    elapsed = time.perf_counter() - start
    fields = environment_fields()
    fields.update(impl="python", count=count, op_overhead_us=elapsed / count * 1e6)
    fields["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(fields, sort_keys=True))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["step", "overhead"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "step":
        measure_steps(args.repeats, args.warmup, args.seed)
    else:
        measure_overhead(args.count)


if __name__ == "__main__":
    main(sys.argv[1:])
