"""A small PyTorch classifier saved as TorchScript, with inputs and logits for the import test.
The model expects inputs normalised with mean 0.5 and std 0.25 and returns 5 logits.
Usage: export_classifier.py MODEL.pt REFERENCE.safetensors"""
import sys

import torch
import torch.nn as nn

from safetensors_io import save

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()
scripted = torch.jit.script(model)
scripted.save(sys.argv[1])
images = torch.rand(4, 3, 16, 16)  # in [0, 1], as Afterimage passes them
with torch.no_grad():
    logits = scripted((images - 0.5) / 0.25)
save({"images": images, "logits": logits}, sys.argv[2])
