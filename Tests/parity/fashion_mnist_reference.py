"""Reads Fashion-MNIST with an IDX reader of its own, written from the format's description (a
big-endian header: two zero bytes, the element type 0x08 for unsigned bytes, the number of
dimensions, then each dimension as a 32-bit integer; then the data), and records the first
labels and images of each split. Usage: fashion_mnist_reference.py DIR OUT.safetensors"""
import gzip
import os
import struct
import sys

import torch

from safetensors_io import save


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and kind == 0x08, f"{path}: not an unsigned-byte IDX file"
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


source, out = sys.argv[1], sys.argv[2]
record = {}
for split, prefix in (("train", "train"), ("test", "t10k")):
    images = read_idx(os.path.join(source, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz"))
    record[f"{split}.count"] = torch.tensor([images.shape[0]])
    record[f"{split}.labels"] = labels[:16].long()
    record[f"{split}.images"] = images[:4].unsqueeze(1).contiguous()
save(record, out)
