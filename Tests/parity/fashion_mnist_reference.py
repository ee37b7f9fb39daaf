"""Reads Fashion-MNIST the way torchvision does (its IDX reader) and records the first labels
and images of each split. Usage: fashion_mnist_reference.py DIR OUT.safetensors"""
import gzip
import os
import shutil
import sys
import tempfile

import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from safetensors_io import save

source, out = sys.argv[1], sys.argv[2]
record = {}
with tempfile.TemporaryDirectory() as scratch:
    for split, prefix in (("train", "train"), ("test", "t10k")):
        paths = {}
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            target = os.path.join(scratch, f"{prefix}-{kind}")
            with gzip.open(os.path.join(source, f"{prefix}-{kind}.gz")) as f, open(target, "wb") as g:
                shutil.copyfileobj(f, g)
            paths[kind] = target
        images = read_image_file(paths["images-idx3-ubyte"])
        labels = read_label_file(paths["labels-idx1-ubyte"])
        record[f"{split}.count"] = torch.tensor([images.shape[0]])
        record[f"{split}.labels"] = labels[:16].long()
        record[f"{split}.images"] = images[:4].unsqueeze(1).contiguous()
save(record, out)
