"""Writes a safetensors file holding one tensor of every dtype Afterimage reads.
Usage: write_safetensors.py OUT.safetensors   (prints which writer was used)"""
import sys

import torch

from safetensors_io import WRITER, save

base = torch.arange(12, dtype=torch.float64).reshape(3, 4) / 4 - 1
tensors = {
    "f32": base.float(), "f64": base, "f16": base.half(), "bf16": base.bfloat16(),
    "i64": (base * 4 + 4).long(), "i32": (base * 4 + 4).int(), "u8": (base * 4 + 4).to(torch.uint8),
    "bool": base > 0, "nested.name.weight": torch.ones(2, 2, 1, 1),
}
save(tensors, sys.argv[1], metadata={"written_by": WRITER})
print(WRITER)
