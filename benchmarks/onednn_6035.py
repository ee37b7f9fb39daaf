"""oneDNN bug 6035 in plain PyTorch, no Afterimage code: one channels-last strided 1x1
convolution's weight gradient, [32, IC, 32, 32] -> 8 channels at stride 2, against float64.

    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/onednn_6035.py 4 2    # IC=4, 2 threads

Prints the largest error of the weight gradient relative to its largest value (about 1e-7 when
exact). On oneDNN 3.12's AVX2 kernels, IC < 8 gives errors near 1, a hang or a segfault; see
docs/INSTALL.md, "Every x86 CPU", for why Afterimage's Tensor.conv2d avoids the kernel.
"""
import sys

import torch


def main() -> None:
    channels, threads = int(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    x = torch.randn(32, channels, 32, 32).to(memory_format=torch.channels_last)
    weight = torch.randn(8, channels, 1, 1, requires_grad=True)
    upstream = torch.randn(32, 8, 16, 16)
    (torch.nn.functional.conv2d(x, weight, stride=2) * upstream).sum().backward()
    reference = weight.detach().double().requires_grad_()
    (torch.nn.functional.conv2d(x.double().contiguous(), reference, stride=2) * upstream.double()).sum().backward()
    error = (weight.grad.double() - reference.grad).abs().max() / reference.grad.abs().max()
    print(f"{channels} input channels, {threads} threads: weight gradient off by {error.item():.3g} of its largest value")


if __name__ == "__main__":
    main()
