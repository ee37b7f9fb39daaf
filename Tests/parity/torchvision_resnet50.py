"""torchvision's ResNet-50 (random weights, seed 0) saved as safetensors with an input and its
eval-mode logits. Usage: torchvision_resnet50.py OUT.safetensors"""
import sys

import torch
import torchvision

from safetensors_io import save

torch.manual_seed(0)
model = torchvision.models.resnet50(num_classes=7).eval()
# Move the batch-norm statistics away from their defaults so loading them matters.
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
x = torch.rand(2, 3, 64, 64)
with torch.no_grad():
    logits = model(x)
record = {"weights." + k: v for k, v in model.state_dict().items()}
record["input"], record["logits"] = x, logits
save(record, sys.argv[1])
