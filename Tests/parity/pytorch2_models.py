"""Two small classifiers of the kinds PyTorch 2.x users export, written in plain PyTorch (the
registry's torchvision does not load with the CPU torch), traced to TorchScript and compiled to
AOTInductor packages, with reference inputs and logits for the import tests.

- vit: a vision transformer: patch convolution, class token, position embedding, pre-norm
  blocks of multi-head attention through F.scaled_dot_product_attention, LayerNorm, GELU MLP.
- mobilenet: a MobileNetV3-style network: depthwise convolutions, hardswish, squeeze-excitation
  (hardsigmoid gate), inverted residual blocks, batch norm.

Both take 3x32x32 images normalised with mean 0.5 and std 0.25 and return 10 logits.

Usage: pytorch2_models.py OUT_DIR [--pt2]
Writes OUT_DIR/{vit,mobilenet}.pt, OUT_DIR/reference.safetensors (images, vit_logits,
mobilenet_logits, scripted_logits), OUT_DIR/scripted.pt (a scripted model whose
forward calls a helper method), and with --pt2 also OUT_DIR/{vit,mobilenet}.pt2. Also writes two files no
libtorch 2.13 loads, as a newer PyTorch would make them: newer-format.pt (file format 99) and
newer-operator.pt (calls an operator this libtorch lacks).
"""
import os
import sys
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import save


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, classes=10, dim=32, patch=8, size=32, depth=2, heads=4):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeezed):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(scale))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, expanded, cout, stride):
        super().__init__()
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, expanded, 1, bias=False), nn.BatchNorm2d(expanded), nn.Hardswish(),
            nn.Conv2d(expanded, expanded, 3, stride, 1, groups=expanded, bias=False), nn.BatchNorm2d(expanded), nn.Hardswish(),
            SqueezeExcitation(expanded, max(8, expanded // 4)),
            nn.Conv2d(expanded, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class TinyMobileNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()),
            InvertedResidual(16, 32, 16, 1),
            InvertedResidual(16, 48, 24, 2),
            InvertedResidual(24, 64, 24, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(24, 32), nn.Hardswish(), nn.Linear(32, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))



class Helpered(nn.Module):
    """torchvision's style: forward calls a helper method, which calls the layers; scripted."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.fc = nn.Linear(16, classes)

    def _forward_impl(self, x):
        return self.fc(self.layer1(self.stem(x)).mean([2, 3]))

    def forward(self, x):
        return self._forward_impl(x)


def trained_statistics(model):
    # Non-trivial batch-norm statistics, as a trained model has.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model


def write_newer_files(out, traced_path):
    """A newer PyTorch's files, made by editing a 2.13 file: its format version, or an operator."""
    with zipfile.ZipFile(traced_path) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    for name, edit in [
        ("newer-format.pt", lambda path, data: b"99\n" if path.endswith("/version") else data),
        ("newer-operator.pt", lambda path, data: data.replace(b"torch.linear(", b"torch.linear_from_the_future(")
         if path.endswith(".py") else data),
    ]:
        with zipfile.ZipFile(os.path.join(out, name), "w", zipfile.ZIP_STORED) as target:
            for info, data in entries:
                target.writestr(info, edit(info.filename, data))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    images = torch.rand(6, 3, 32, 32)
    normalised = (images - 0.5) / 0.25
    references = {"images": images}
    for name, model in [("vit", TinyViT()), ("mobilenet", trained_statistics(TinyMobileNet()))]:
        model.eval()
        with torch.no_grad():
            references[f"{name}_logits"] = model(normalised)
            traced = torch.jit.trace(model, normalised[:2])
        path = os.path.join(out, f"{name}.pt")
        traced.save(path)
        if "--pt2" in sys.argv:
            # The batch is dynamic, as users export for serving.
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(model, (normalised[:2],), dynamic_shapes=({0: batch},))
            torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(out, f"{name}.pt2"))
    helpered = Helpered().eval()
    torch.jit.script(helpered).save(os.path.join(out, "scripted.pt"))
    with torch.no_grad():
        references["scripted_logits"] = helpered(normalised)
    write_newer_files(out, os.path.join(out, "vit.pt"))
    save(references, os.path.join(out, "reference.safetensors"))


if __name__ == "__main__":
    main()
