"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ (run from the repository
root with the project's Python: .venv/bin/python fuzz/make-seeds.py). Small valid inputs of every
kind each reader takes, so that libFuzzer starts from the formats' real structure."""
import gzip
import io
import json
import os
import struct

import numpy as np
from PIL import Image
from safetensors.numpy import save

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    folder = os.path.join(root, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


rng = np.random.default_rng(0)

# safetensors: several dtypes, metadata, an empty tensor, a scalar.
put("safetensors", "f32", save({"w": rng.standard_normal((2, 3)).astype(np.float32)}))
put("safetensors", "mixed", save(
    {"a": np.arange(4, dtype=np.int64), "b": np.ones((1, 2, 2), dtype=np.float16), "c": np.zeros((0, 3), dtype=np.float32),
     "d": np.array(3.0, dtype=np.float64), "e": np.array([1, 0], dtype=np.uint8), "f": np.array([True, False])},
    metadata={"format": "afterimage-inverter-checkpoint", "step": "5"}))

# Images: PNG gray, RGB, RGBA, 16-bit, palette, interlaced; JPEG RGB, gray, CMYK, progressive.
pixels = (rng.random((6, 5, 3)) * 255).astype(np.uint8)
for name, image, options in [
    ("gray.png", Image.fromarray(pixels[:, :, 0]), {}),
    ("rgb.png", Image.fromarray(pixels), {}),
    ("rgba.png", Image.fromarray(np.dstack([pixels, pixels[:, :, :1]])), {}),
    ("gray16.png", Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257), {}),
    ("palette.png", Image.fromarray(pixels).convert("P"), {}),
    ("interlaced.png", Image.fromarray(pixels), {"interlace": 1}),
    ("rgb.jpg", Image.fromarray(pixels), {"quality": 90}),
    ("gray.jpg", Image.fromarray(pixels[:, :, 0]), {"quality": 90}),
    ("cmyk.jpg", Image.fromarray(pixels).convert("CMYK"), {"quality": 90}),
    ("progressive.jpg", Image.fromarray(pixels), {"quality": 90, "progressive": True}),
]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if name.endswith(".png") else "JPEG", **options)
    put("image", name, buffer.getvalue())


# IDX: images (rank 3) and labels (rank 1), plain and gzipped.
def idx(array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


images = idx((rng.random((2, 4, 4)) * 255).astype(np.uint8))
labels = idx(np.array([3, 7], dtype=np.uint8))
put("idx", "images", images)
put("idx", "labels", labels)
put("idx", "images.gz", gzip.compress(images))

# CIFAR: the first byte picks the variant (even: CIFAR-10, odd: CIFAR-100), then whole records.
record10 = lambda label: bytes([label]) + bytes(rng.integers(0, 256, 3072, dtype=np.uint8))
record100 = lambda coarse, fine: bytes([coarse, fine]) + bytes(rng.integers(0, 256, 3072, dtype=np.uint8))
put("cifar", "cifar10", b"\x00" + record10(1) + record10(9))
put("cifar", "cifar100", b"\x01" + record100(3, 42))

# Stored JSON: the first byte picks the type (see FuzzTargets.swift), then the file.
for selector, path in [
    (0, "models/classifiers/shapes-standard/config.json"),
    (1, "models/inverters/shapes-standard-fidelity/config.json"),
    (2, "models/inverters/shapes-standard-fidelity/results.json"),
    (3, "models/classifiers/shapes-standard/results.json"),
    (4, "models/eval/shapes-factors/factors.json"),
]:
    with open(path, "rb") as source:
        put("config", os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path), bytes([selector]) + source.read())

# Data-set names.
for index, name in enumerate([
    "shapes", "shapes:classes=20,seed=3", "shapes:train=64,test=32", "fashion-mnist", "fashion-mnist:/tmp/x",
    "cifar10:/data/cifar", "cifar100:/data/c100", "folder:pictures", "folder:",
]):
    put("dataset-name", f"name-{index}", name.encode())
print("wrote", root)
