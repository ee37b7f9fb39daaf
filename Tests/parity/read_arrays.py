"""Reads the arrays Afterimage wrote beside a reconstruction grid with numpy and safetensors,
and checks them against the grid PNG and each other; prints a JSON summary.

usage: read_arrays.py GRID.png SAMPLES SCALE PADDING [SCORES.csv]

GRID.png was written by `afterimage inverter reconstruct --samples SAMPLES --arrays
safetensors,npz`: a row per original, the original then its SAMPLES reconstructions, each tile
SCALE times enlarged with PADDING pixels between tiles. GRID.npz and GRID.safetensors lie beside it.
"""
import csv
import json
import sys

import numpy as np
from PIL import Image
from safetensors.numpy import load_file

grid_path, samples, scale, padding = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = grid_path[: -len(".png")]
npz = np.load(base + ".npz")
tensors = load_file(base + ".safetensors")
assert sorted(npz.files) == sorted(tensors.keys()), (npz.files, list(tensors.keys()))
for name in npz.files:
    assert npz[name].dtype == tensors[name].dtype and np.array_equal(npz[name], tensors[name]), name

originals, reconstructions = npz["originals"], npz["reconstructions"]
n, s, c, h, w = reconstructions.shape
grid = np.asarray(Image.open(grid_path).convert("RGB"), dtype=np.float64) / 255
worst = 0.0
for i in range(n):
    for k in range(s + 1):
        top, left = padding + i * (h * scale + padding), padding + k * (w * scale + padding)
        tile = grid[top : top + h * scale : scale, left : left + w * scale : scale].transpose(2, 0, 1)  # [3, h, w]
        image = originals[i] if k == 0 else reconstructions[i, k - 1]
        image = np.broadcast_to(image, (3, h, w)) if c == 1 else image
        worst = max(worst, float(np.abs(tile - image).max()))

summary = {
    "names": sorted(npz.files),
    "shapes": {name: list(npz[name].shape) for name in npz.files},
    "dtypes": {name: str(npz[name].dtype) for name in npz.files},
    "largest_difference_from_grid": worst,
    "range": [float(reconstructions.min()), float(reconstructions.max())],
}
if len(sys.argv) > 5:
    with open(sys.argv[5], newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary["csv_rows"] = len(rows)
    summary["csv_columns"] = list(rows[0].keys()) if rows else []
print(json.dumps(summary))
