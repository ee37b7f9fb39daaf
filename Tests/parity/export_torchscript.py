"""Scripts a small classifier with PyTorch, saves it, and records an input and its output.
Usage: export_torchscript.py MODEL.pt REFERENCE.safetensors"""
import sys

import torch
import torch.nn as nn

from safetensors_io import save

torch.manual_seed(0)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        if x.shape[-1] != 16:
            raise ValueError("expected 16x16 images")
        return self.head(self.features(x).flatten(1))


model = Classifier().eval()
scripted = torch.jit.script(model)
scripted.save(sys.argv[1])
x = torch.randn(4, 3, 16, 16)
with torch.no_grad():
    y = scripted(x)
count = sum(p.numel() for p in model.parameters())
save({"input": x, "output": y, "parameter_count": torch.tensor([count])}, sys.argv[2])
