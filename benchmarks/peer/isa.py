"""Prints, as one JSON line, the instruction sets this process's libtorch runs on: ATen's CPU
kernels (torch.backends.cpu.get_cpu_capability) and oneDNN's (the `isa:` of oneDNN's verbose
info line, printed when the first oneDNN convolution runs). benchmarks/run calls it with the
peer's environment, so the header names what the peer ran, not what the machine could run."""
import json
import os
import sys

import torch

# oneDNN writes its verbose lines to the process's standard output (file descriptor 1): send
# them to a pipe while one channels-last convolution, large enough for oneDNN, runs.
read, write = os.pipe()
saved = os.dup(1)
sys.stdout.flush()
os.dup2(write, 1)
try:
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        x = torch.randn(16, 64, 32, 32).contiguous(memory_format=torch.channels_last)
        w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
        torch.nn.functional.conv2d(x, w, padding=1)
finally:
    os.dup2(saved, 1)
    os.close(write)
    os.close(saved)
with os.fdopen(read) as pipe:
    lines = pipe.read().splitlines()
onednn = next((line.split("isa:", 1)[1].strip() for line in lines if ",isa:" in line), "unknown")
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "onednn": onednn}))
