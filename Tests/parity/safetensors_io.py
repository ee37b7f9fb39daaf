"""Writes safetensors files from Python: PyTorch's own writer (the `safetensors` package) when it
is installed, else a minimal writer following the format's specification."""
import json
import struct

import torch

try:
    from safetensors.torch import save_file as _reference_save

    WRITER = "safetensors"
except ImportError:  # PyPI unreachable: the tests still run against the specification
    _reference_save = None
    WRITER = "fallback"

_NAMES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}


def save(tensors, path, metadata=None):
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    if _reference_save is not None:
        _reference_save(tensors, path, metadata=metadata)
        return
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))
