"""The PyTorch reference for the parity test: a small conv net with batch norm and spectral norm,
trained three Adam steps from saved weights; every output, loss and gradient is recorded.
Usage: parity_convnet.py OUT.safetensors"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from safetensors_io import save

torch.manual_seed(0)
torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(3, 8, 3, padding=1))
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = spectral_norm(nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1))
        self.fc = spectral_norm(nn.Linear(8, 4))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))          # [N, 8, 8, 8]
        h = F.leaky_relu(self.conv2(h), 0.2)          # [N, 16, 4, 4]
        h = F.relu(self.up(h)).mean(dim=(2, 3))       # [N, 8]
        return self.fc(h)                             # [N, 4]


net = Net()
record = {"init." + k: v.clone() for k, v in net.state_dict().items()}
x = torch.randn(6, 3, 8, 8)
y = torch.tensor([0, 1, 2, 3, 1, 0])
record["x"], record["y"] = x, y

optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999), eps=1e-8, weight_decay=1e-3)
for step in range(3):
    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1)
    optimizer.zero_grad()
    loss.backward()
    record[f"step{step}.logits"] = logits.detach()
    record[f"step{step}.loss"] = loss.detach().reshape(1)
    for name, p in net.named_parameters():
        record[f"step{step}.grad.{name}"] = p.grad.clone()
    optimizer.step()

for k, v in net.state_dict().items():
    record["final." + k] = v.clone()
net.eval()
with torch.no_grad():
    record["final.eval_logits"] = net(x)

# SGD with Nesterov momentum and AdamW on one shared problem, for the optimizer parity test.
for kind in ("sgd", "adamw"):
    torch.manual_seed(1)
    w = torch.randn(5, 3, requires_grad=True)
    target = torch.randn(7, 3)
    inputs = torch.randn(7, 5)
    if kind == "sgd":
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)
    else:
        opt = torch.optim.AdamW([w], lr=0.05, betas=(0.9, 0.99), weight_decay=0.1)
    record[f"{kind}.w0"] = w.detach().clone()
    record[f"{kind}.inputs"], record[f"{kind}.target"] = inputs, target
    for step in range(4):
        opt.zero_grad()
        ((inputs @ w - target) ** 2).mean().backward()
        opt.step()
    record[f"{kind}.w4"] = w.detach().clone()

save(record, sys.argv[1])
