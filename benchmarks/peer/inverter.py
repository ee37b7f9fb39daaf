#!/usr/bin/env python3
"""The Python PyTorch peer of Afterimage's inverter-training step, written the BigGAN-PyTorch way.

The same generator G(logits, z), projection discriminator D(x, logits), frozen CIFAR ResNet-20
classifier and training step as Sources/Afterimage/Inversion (BigGAN.swift, InverterTrainer.swift,
InverterConfig.swift's defaults and `fidelity` losses), with PyTorch's own layers
(torch.nn.utils.spectral_norm, nn.BatchNorm2d, torch.optim.Adam). State-dict names equal the Swift
ones, so one safetensors file of weights loads on both sides.

    inverter.py --write-init W.safetensors --write-batch B.safetensors [--resolution R --channels C ...]
    inverter.py --first-step W.safetensors --batch B.safetensors [--write-after A.safetensors]
    inverter.py --time --steps N --warmup W          # training steps (--variant plain|tuned|compiled, --flops)
    inverter.py --reconstruct --steps N --warmup W   # EMA generator forward (eval, no_grad)
    inverter.py --classifier-step {standard,adversarial} --steps N --warmup W

Each prints one JSON line with "impl": "python". Run it with .venv/bin/python (scripts/setup makes it), the
torch whose libtorch the Swift side links.

Weights files hold `G.`, `G_ema.`, `D.` (the inverter checkpoint's prefixes) and `classifier.`
(the frozen ResNet-20), each followed by the module's state-dict name, u/v and BN buffers included.
"""
import argparse
import copy
import json
import math
import resource
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn.utils import spectral_norm

from step import environment_fields  # benchmarks/peer/step.py: threads, libtorch and BLAS in use

# --- Configuration ----------------------------------------------------------------------------

# BigGANArchitecture.forResolution: G's channel multipliers at 4x4 and after each up-block; D's
# per-block multipliers and downsampling; the resolutions followed by self-attention.
ARCHITECTURES = {
    32: dict(G=[4, 4, 2, 1], D=[1, 2, 4, 4], down=[True, True, False, False], attention=[16]),
    64: dict(G=[4, 4, 2, 1, 1], D=[1, 2, 4, 4, 4], down=[True, True, True, False, False], attention=[32]),
    128: dict(G=[8, 4, 4, 2, 1, 1], D=[1, 2, 4, 4, 8, 8], down=[True, True, True, True, False, False],
              attention=[64]),
}


@dataclass
class Losses:
    """InversionLossWeights.fidelity(layers: ["layer1", "layer2"]): hinge + 10 L1 + perceptual + logits."""
    adversarial: float = 1.0
    pixel_l1: float = 10.0
    pixel_l2: float = 0.0
    perceptual: float = 1.0
    perceptual_layers: tuple = ("layer1", "layer2")
    logit_consistency: float = 0.1


@dataclass
class Options:
    """InverterTrainingOptions' defaults (BigGAN-PyTorch's optimiser settings)."""
    steps: int = 3000
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    betas: tuple = (0.0, 0.999)

    # The EMA decay and start that InverterTrainingOptions picks from the run length.
    @property
    def ema_decay(self):
        return min(0.999, max(0.9, 1 - 10 / max(self.steps, 1)))

    @property
    def ema_start(self):
        return self.steps // 5


CLASSES = 10
# The classifier's input normalisation (ClassifierConfig.normalization, applied inside the
# classifier): 0.5/0.25 per channel, as InverterBenchmark.swift uses. The values only need to be
# the same on both sides; the batch file carries them.
NORMALIZATION = {3: ([0.5] * 3, [0.25] * 3), 1: ([0.5], [0.25])}


# --- Generator and discriminator (BigGAN.swift) ----------------------------------------------

def sn_linear(inputs, outputs, bias=True):
    return spectral_norm(nn.Linear(inputs, outputs, bias=bias))


def sn_conv(inputs, outputs, kernel, padding=0, bias=True):
    return spectral_norm(nn.Conv2d(inputs, outputs, kernel, padding=padding, bias=bias))


class SelfAttention(nn.Module):
    """SAGAN attention as in BigGAN: SN 1x1 theta, phi, g, o (no bias), keys/values pooled 2x."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        # The tuned and compiled peers order the second product row-major: 25% faster forward
        # and backward at the 64×64 step's shape (benchmarks/peer/attention.py).
        self.row_major = False
        self.theta = sn_conv(channels, channels // 8, 1, bias=False)
        self.phi = sn_conv(channels, channels // 8, 1, bias=False)
        self.g = sn_conv(channels, channels // 2, 1, bias=False)
        self.o = sn_conv(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))  # starts as the identity

    def forward(self, x):
        B, C, H, W = x.shape
        theta = self.theta(x).view(B, C // 8, H * W)  # (B, C/8, HW)
        phi = F.max_pool2d(self.phi(x), [2, 2]).view(B, C // 8, H * W // 4)  # (B, C/8, HW/4)
        g = F.max_pool2d(self.g(x), [2, 2]).view(B, C // 2, H * W // 4)  # (B, C/2, HW/4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)  # (B, HW, HW/4)
        if self.row_major:  # the same products ordered so no gradient reaches the softmax transposed
            attended = torch.bmm(beta, g.transpose(1, 2)).transpose(1, 2)  # (B, C/2, HW)
        else:  # BigGAN-PyTorch's order
            attended = torch.bmm(g, beta.transpose(1, 2))
        o = self.o(attended.reshape(B, C // 2, H, W))  # (B, C, H, W)
        return x + self.gamma * o


class ConditionalBatchNorm(nn.Module):
    """BN(x) * (1 + gain(c)) + bias(c), gain and bias SN linear maps without bias."""

    def __init__(self, channels, condition_size):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = sn_linear(condition_size, channels, bias=False)
        self.bias = sn_linear(condition_size, channels, bias=False)

    def forward(self, x, c):
        scale = (self.gain(c) + 1).unsqueeze(2).unsqueeze(3)  # (B, C, 1, 1)
        shift = self.bias(c).unsqueeze(2).unsqueeze(3)
        return self.bn(x) * scale + shift


class GBlock(nn.Module):
    def __init__(self, inputs, outputs, condition_size):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(inputs, condition_size)
        self.conv1 = sn_conv(inputs, outputs, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(outputs, condition_size)
        self.conv2 = sn_conv(outputs, outputs, 3, padding=1)
        self.conv_sc = sn_conv(inputs, outputs, 1)

    def forward(self, x, c):  # (B, in, H, W) -> (B, out, 2H, 2W)
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class Generator(nn.Module):
    """LogitGenerator: BigGAN with hierarchical z, its class embedding a linear map of the logits."""

    def __init__(self, resolution, channels, ch=16, noise_size=64, embedding_size=64, attention=True,
                 logit_count=CLASSES):
        super().__init__()
        arch = ARCHITECTURES[resolution]
        blocks = len(arch["G"]) - 1
        self.chunk = max(1, noise_size // (blocks + 1))  # one chunk for the 4x4 seed, one per block
        self.noise_size = self.chunk * (blocks + 1)
        self.base = ch * arch["G"][0]
        condition_size = embedding_size + self.chunk
        self.shared = nn.Linear(logit_count, embedding_size, bias=False)  # not spectrally normalised
        self.linear = sn_linear(self.chunk, self.base * 16)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()  # keyed by the index of the block it follows
        for index in range(blocks):
            inputs, outputs = ch * arch["G"][index], ch * arch["G"][index + 1]
            self.blocks.append(GBlock(inputs, outputs, condition_size))
            if attention and (8 << index) in arch["attention"] and outputs >= 8:
                self.attention[str(index)] = SelfAttention(outputs)
        last = ch * arch["G"][-1]
        self.output_bn = nn.BatchNorm2d(last)
        self.output_conv = sn_conv(last, channels, 3, padding=1)
        for name, p in self.named_parameters():  # BigGAN's orthogonal initialisation
            if (name.endswith("weight") or name.endswith("weight_orig")) and p.dim() >= 2:
                nn.init.orthogonal_(p)

    def forward(self, logits, z):  # logits (B, K), z (B, noise) -> images (B, C, R, R) in (-1, 1)
        zs = torch.split(z, self.chunk, 1)
        embedded = self.shared(logits)  # (B, E)
        h = self.linear(zs[0]).view(z.shape[0], self.base, 4, 4)
        for index, block in enumerate(self.blocks):
            h = block(h, torch.cat([embedded, zs[index + 1]], 1))  # doubles H and W
            if str(index) in self.attention:
                h = self.attention[str(index)](h)
        return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


class DBlock(nn.Module):
    def __init__(self, inputs, outputs, downsample, preactivation):
        super().__init__()
        self.conv1 = sn_conv(inputs, outputs, 3, padding=1)
        self.conv2 = sn_conv(outputs, outputs, 3, padding=1)
        self.learnable_sc = inputs != outputs or downsample
        if self.learnable_sc:
            self.conv_sc = sn_conv(inputs, outputs, 1)
        self.downsample = downsample
        self.preactivation = preactivation

    def shortcut(self, x):
        if self.preactivation:  # convolve, then pool
            if self.learnable_sc:
                x = self.conv_sc(x)
            if self.downsample:
                x = F.avg_pool2d(x, 2)
        else:  # the first block pools first, keeping its shortcut cheap
            if self.downsample:
                x = F.avg_pool2d(x, 2)
            if self.learnable_sc:
                x = self.conv_sc(x)
        return x

    def forward(self, x):
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class Discriminator(nn.Module):
    """ProjectionDiscriminator: linear(phi(x)) + <SN-linear(logits), phi(x)>."""

    def __init__(self, resolution, channels, ch=16, attention=True, logit_count=CLASSES):
        super().__init__()
        arch = ARCHITECTURES[resolution]
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        inputs, size = channels, resolution
        for index, (multiplier, down) in enumerate(zip(arch["D"], arch["down"])):
            outputs = ch * multiplier
            self.blocks.append(DBlock(inputs, outputs, down, preactivation=index > 0))
            size //= 2 if down else 1
            if attention and size in arch["attention"] and len(self.attention) == 0 and outputs >= 8 and down:
                self.attention[str(index)] = SelfAttention(outputs)
            inputs = outputs
        self.linear = sn_linear(inputs, 1)
        self.embed = sn_linear(logit_count, inputs, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("weight_orig") and p.dim() >= 2:
                nn.init.orthogonal_(p)

    def forward(self, x, logits):  # x (B, C, R, R) in [-1, 1], logits (B, K) -> scores (B,)
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if str(index) in self.attention:
                h = self.attention[str(index)](h)
        h = torch.sum(F.relu(h), [2, 3])  # phi(x): (B, C)
        return self.linear(h).squeeze(1) + torch.sum(self.embed(logits) * h, 1)


# --- The classifier (ResNet.swift, Classifier.swift) -----------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(outputs))

    def forward(self, x):
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(residual + (x if self.downsample is None else self.downsample(x)))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 at width 0.5 (8/16/32 channels); takes images in [0, 1] and normalises them."""

    def __init__(self, channels, mean, std, width=0.5, classes=CLASSES):
        super().__init__()
        widths = [max(4, int(math.floor(w * width + 0.5))) for w in (16, 32, 64)]
        self.conv1 = nn.Conv2d(channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inputs = widths[0]
        for stage, outputs in enumerate(widths):
            blocks = []
            for block in range(3):
                blocks.append(BasicBlock(inputs, outputs, 2 if stage > 0 and block == 0 else 1))
                inputs = outputs
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inputs, classes)
        for m in self.modules():  # torchvision's initialisation: He normal, fan-out
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Part of the classifier's config, not of its weights: kept out of the state dict.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def features(self, images, names=()):
        """Logits (B, K) and the feature maps named in `names` (stem, layer1..3, pool)."""
        kept = {}
        h = F.relu(self.bn1(self.conv1((images - self.mean) / self.std)))
        if "stem" in names:
            kept["stem"] = h
        for stage in range(1, 4):
            h = getattr(self, f"layer{stage}")(h)  # layers 2 and 3 halve H and W
            if f"layer{stage}" in names:
                kept[f"layer{stage}"] = h
        h = h.mean([2, 3])  # (B, C)
        if "pool" in names:
            kept["pool"] = h
        return self.fc(h), kept

    def forward(self, images):
        return self.features(images)[0]


# --- The training step (InverterTrainer.trainingStep) ----------------------------------------

def normalized_channels(x):
    """Feature maps scaled to unit length along channels."""
    return x / (x.pow(2).sum(1, keepdim=True) + 1e-10).sqrt()


@torch.no_grad()
def ema_update(G, G_ema, step, options):
    weight = 1.0 if step < options.ema_start else 1 - options.ema_decay  # copies before ema_start
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, weight)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def training_step(nets, optimizers, images, d_noise, g_noise, logit_scale, step, losses=Losses(),
                  options=Options(), cached_logits=None, features=None):
    """One D update on real and fake in one pass, one G update, then the EMA of G; returns the logs.

    The plain peer (BigGAN-PyTorch's way) runs the classifier on the real batch for the logits
    and the perceptual targets, and a second classifier pass on the fakes for their logits. The
    tuned peer (`cached_logits` given) takes the logits from a cache and the fakes' logits from
    the same pass as their perceptual features, as ours does; `features` is the classifier's
    features function (the compiled one for the compiled peer)."""
    G, G_ema, D, classifier = nets
    features = features or classifier.features
    G_optim, D_optim = optimizers
    B = images.shape[0]
    layers = losses.perceptual_layers
    # The frozen classifier on the real batch: the perceptual targets (and, for the plain peer,
    # the logits to invert).
    with torch.no_grad():
        raw_logits, targets = features(images, layers)  # (B, K)
    if cached_logits is not None:
        raw_logits = cached_logits
    conditioning = raw_logits  # preprocessing "raw"
    real = images * 2 - 1  # (B, C, R, R) in [-1, 1]
    G.train()
    D.train()
    log = {}

    # D step: one pass over cat([real, fake]), as BigGAN-PyTorch's G_D wrapper does.
    with torch.no_grad():
        fake = G(conditioning, d_noise)
    scores = D(torch.cat([real, fake]), torch.cat([conditioning, conditioning]))  # (2B,)
    real_scores, fake_scores = scores[:B], scores[B:]
    d_loss_real = F.relu(1 - real_scores).mean()
    d_loss_fake = F.relu(1 + fake_scores).mean()
    D_optim.zero_grad(set_to_none=True)
    (d_loss_real + d_loss_fake).backward()
    D_optim.step()
    log["d_loss_real"] = d_loss_real.item()
    log["d_loss_fake"] = d_loss_fake.item()
    log["d_score_real"] = real_scores.mean().item()
    log["d_score_fake"] = fake_scores.mean().item()

    # G step. D's weights need no gradients here (BigGAN-PyTorch's toggle_grad).
    D.requires_grad_(False)
    fake = G(conditioning, g_noise)  # (B, C, R, R)
    g_loss_adv = -D(fake, conditioning).mean()
    total = g_loss_adv * losses.adversarial
    log["g_loss_adv"] = g_loss_adv.item()
    fake01 = (fake + 1) / 2
    if losses.pixel_l1 > 0:
        l1 = F.l1_loss(fake01, images)
        total = total + l1 * losses.pixel_l1
        log["g_loss_pixel"] = l1.item()
    if losses.pixel_l2 > 0:
        l2 = F.mse_loss(fake01, images)
        total = total + l2 * losses.pixel_l2
        log.setdefault("g_loss_pixel", l2.item())
    if losses.perceptual > 0:
        fake_logits, produced = features(fake01, layers)
        distance = torch.zeros(())
        for layer in layers:
            distance = distance + F.mse_loss(normalized_channels(produced[layer]), normalized_channels(targets[layer]))
        total = total + distance * losses.perceptual
        log["g_loss_perceptual"] = distance.item()
    if losses.logit_consistency > 0:
        # The plain peer runs the classifier on the fakes again, for its logits.
        if cached_logits is None or losses.perceptual <= 0:
            fake_logits = classifier(fake01)
        consistency = F.mse_loss(fake_logits / logit_scale, raw_logits / logit_scale)
        total = total + consistency * losses.logit_consistency
        log["g_loss_logit"] = consistency.item()
    G_optim.zero_grad(set_to_none=True)
    total.backward()
    G_optim.step()
    D.requires_grad_(True)
    ema_update(G, G_ema, step, options)

    log["g_total"] = total.item()
    if not all(math.isfinite(v) for v in (log["d_loss_real"], log["d_loss_fake"], log["g_total"])) or \
            log["d_loss_real"] + log["d_loss_fake"] >= 1e4:
        raise RuntimeError(f"training diverged at step {step + 1}")
    return log


# --- Building, saving, loading ---------------------------------------------------------------

def build(args):
    """G, G_ema (a copy of G), D and the frozen classifier, drawn from libtorch's global generator."""
    torch.manual_seed(args.seed)
    G = Generator(args.resolution, args.channels, ch=args.ch)
    D = Discriminator(args.resolution, args.channels, ch=args.ch)
    G_ema = copy.deepcopy(G)
    mean, std = NORMALIZATION[args.channels]
    classifier = ResNet20(args.channels, mean, std)
    classifier.eval()
    classifier.requires_grad_(False)  # frozen: gradients flow through it to the images only
    return G, G_ema, D, classifier


def make_optimizers(G, D, options=Options(), fused=False):
    """Adam for G and D; `fused` (the tuned peers): PyTorch's fused kernel, CPU ones included."""
    extra = {"fused": True} if fused else {}
    G_optim = torch.optim.Adam(G.parameters(), lr=options.g_lr, betas=options.betas, eps=1e-8, **extra)
    D_optim = torch.optim.Adam(D.parameters(), lr=options.d_lr, betas=options.betas, eps=1e-8, **extra)
    return G_optim, D_optim


VARIANTS = ("plain", "tuned", "compiled")


def prepare(variant, nets, images):
    """The variant's networks, batch and step arguments: the plain peer as it is; the tuned one
    in channels-last with cached logits, fused Adam and the attention's faster product order; the compiled one the tuned one under
    torch.compile (inductor, the machine's C++ compiler on the CPU)."""
    G, G_ema, D, classifier = nets
    optimizers = make_optimizers(G, D, fused=variant != "plain")
    if variant == "plain":
        return nets, optimizers, images, {}
    for net in nets:
        net.to(memory_format=torch.channels_last)
        for module in net.modules():
            if isinstance(module, SelfAttention):
                module.row_major = True
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        cached = classifier(images)  # the logit cache: once, outside the step
    extra = {"cached_logits": cached}
    if variant == "compiled":
        G.forward = torch.compile(G.forward)
        D.forward = torch.compile(D.forward)
        extra["features"] = torch.compile(classifier.features)
    return nets, optimizers, images, extra


PREFIXES = ("G.", "G_ema.", "D.", "classifier.")


def combined_state(nets):
    state = {}
    for prefix, net in zip(PREFIXES, nets):
        state.update({prefix + name: t.detach().clone().contiguous() for name, t in net.state_dict().items()})
    return state


def load_combined(nets, path):
    weights = load_file(path)
    for prefix, net in zip(PREFIXES, nets):
        net.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})


def parameter_counts(nets):
    """Module.parameterCount: every registered parameter (weight_orig once; u, v, BN stats not)."""
    G, _, D, classifier = nets
    count = lambda m: sum(p.numel() for p in m.parameters())
    return {"g_params": count(G), "d_params": count(D), "classifier_params": count(classifier)}


def config_metadata(args, G):
    return json.dumps({"resolution": args.resolution, "channels": args.channels, "ch": args.ch,
                       "noise_size": G.noise_size, "embedding_size": 64, "attention": True,
                       "logit_count": CLASSES, "classifier": "resnet20 width 0.5", "seed": args.seed},
                      sort_keys=True)


def write_init(args):
    nets = build(args)
    G, _, _, classifier = nets
    save_file(combined_state(nets), args.write_init,
              metadata={"format": "afterimage-peer-init", "config": config_metadata(args, G)})
    B, C, R = args.batch_size, args.channels, args.resolution
    images = torch.randint(0, 256, (B, C, R, R)).float() / 255  # 8-bit pixels in [0, 1], as data sets hold them
    d_noise = torch.randn(B, G.noise_size)
    g_noise = torch.randn(B, G.noise_size)
    with torch.no_grad():
        logits = classifier(images)  # (B, K), eval mode
    # InverterTrainer.logitScale: the (unbiased) standard deviation of all the training set's
    # logits, one scalar; here the training set is this batch.
    logit_scale = torch.clamp(logits.std(), min=1e-6)
    mean, std = NORMALIZATION[C]
    save_file({"images": images, "d_noise": d_noise, "g_noise": g_noise, "logits": logits.contiguous(),
               "logit_scale": logit_scale, "classifier_mean": torch.tensor(mean),
               "classifier_std": torch.tensor(std)},
              args.write_batch, metadata={"format": "afterimage-peer-batch", "config": config_metadata(args, G)})
    print(json.dumps({"impl": "python", "weights": args.write_init, "batch": args.write_batch,
                      "noise_size": G.noise_size, "logit_scale": logit_scale.item(), **parameter_counts(nets)},
                     sort_keys=True))


def first_step(args):
    with safe_open(args.first_step, "pt") as f:  # the shape of the models, as --write-init recorded it
        config = json.loads((f.metadata() or {}).get("config", "{}"))
    for key in ("resolution", "channels", "ch"):
        setattr(args, key, config.get(key, getattr(args, key)))
    nets = build(args)
    load_combined(nets, args.first_step)
    batch = load_file(args.batch)
    classifier = nets[3]
    classifier.mean.copy_(batch["classifier_mean"].view(1, -1, 1, 1))
    classifier.std.copy_(batch["classifier_std"].view(1, -1, 1, 1))
    nets, optimizers, images, extra = prepare(args.variant, nets, batch["images"])
    log = training_step(nets, optimizers, images, batch["d_noise"], batch["g_noise"], batch["logit_scale"].item(), step=0, **extra)
    if args.write_after:
        save_file(combined_state(nets), args.write_after, metadata={"format": "afterimage-peer-after-step"})
    print(json.dumps({"impl": "python", **log, **parameter_counts(nets), **environment_fields()}, sort_keys=True))


# --- Timing ----------------------------------------------------------------------------------

def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


DEVICE = torch.device("cpu")  # --device; random draws stay on CPU generators and are moved, as ours


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed(step, steps, warmup):
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def on_device(nets):
    for net in nets:
        net.to(DEVICE)
    return nets


def trace_operations(step, path):
    """One untimed `step` under torch.profiler, its operator calls written to `path` as
    benchmarks/flops.py reads them (as afterimage-bench --op-trace writes ours)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profiler:
        step()
    events = [{"name": e.name, "start_ns": e.time_range.start * 1000, "duration_ns": e.time_range.elapsed_us() * 1000,
               "thread": e.thread, "shapes": [list(s) for s in e.input_shapes],
               "concrete": [None if c == "" else c for c in (e.concrete_inputs or [])]}
              for e in profiler.events() if e.name.startswith("aten::")]
    with open(path, "w") as file:
        json.dump(events, file)


def count_flops(step):
    """One untimed `step`'s FLOPs by PyTorch's FlopCounterMode. Its module tracker cannot follow
    torch.autograd.grad (PGD's input gradients); there the count comes from the step's
    operator calls under the profiler, counted by benchmarks/flops.py the same way."""
    from torch.utils.flop_counter import FlopCounterMode
    try:
        with FlopCounterMode(display=False) as counter:
            step()
        return {"flops_per_step": counter.get_total_flops(), "flops_by": "FlopCounterMode"}
    except RuntimeError:
        import os
        import tempfile
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        import flops
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "trace.json")
            trace_operations(step, path)
            return {"flops_per_step": flops.count(flops.read(path)), "flops_by": "benchmarks/flops.py"}


def measure_step(step, args, counts):
    """Times a training `step`: the first call on its own (the compiled peer compiles there), then
    `--flops` and the timed steps, then `--op-trace`; returns the times and `counts` with them."""
    start = time.perf_counter()
    step()
    synchronize()
    counts["first_step_s"] = time.perf_counter() - start
    if args.flops:
        counts.update(count_flops(step))
    times = timed(step, args.steps, max(0, args.warmup - 1))
    if args.op_trace:
        trace_operations(step, args.op_trace)
    return times, counts


def time_training(args):
    nets = on_device(build(args))
    G, _, D, classifier = nets
    images = torch.rand(args.batch_size, args.channels, args.resolution, args.resolution).to(DEVICE)  # one fixed batch
    with torch.no_grad():
        logit_scale = max(classifier(images).std().item(), 1e-6)
    nets, optimizers, images, extra = prepare(args.variant, nets, images)
    noise = torch.Generator().manual_seed(args.seed + 1)
    step_index = 0

    def step():
        nonlocal step_index
        d_noise = torch.randn(args.batch_size, G.noise_size, generator=noise).to(DEVICE)
        g_noise = torch.randn(args.batch_size, G.noise_size, generator=noise).to(DEVICE)
        training_step(nets, optimizers, images, d_noise, g_noise, logit_scale, step_index, **extra)
        step_index += 1

    return measure_step(step, args, parameter_counts(nets))


def time_reconstruction(args):
    nets = on_device(build(args))
    G_ema, classifier = nets[1], nets[3]
    G_ema.eval()
    images = torch.rand(args.batch_size, args.channels, args.resolution, args.resolution).to(DEVICE)
    with torch.no_grad():
        logits = classifier(images)
    z = torch.randn(args.batch_size, G_ema.noise_size, generator=torch.Generator().manual_seed(args.seed)).to(DEVICE)

    def step():
        with torch.no_grad():
            (G_ema(logits, z) + 1) / 2  # Inverter.reconstruct(representation:noise:)

    return timed(step, args.steps, args.warmup), parameter_counts(nets)


def augment(images, generator, padding=4):
    """Augmentation's random crop (zero padding) and horizontal flip, one draw per image."""
    with torch.no_grad():
        B, _, H, W = images.shape
        padded = F.pad(images, [padding] * 4)
        offsets = torch.randint(0, 2 * padding + 1, (B, 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy:dy + H, dx:dx + W] for i, (dy, dx) in enumerate(offsets)])
        flip = torch.rand(B, 1, 1, 1, generator=generator).to(images.device) < 0.5
        return torch.where(flip, x.flip(3), x)


def pgd_linf(net, images, labels, epsilon, steps, step_size, generator):
    """Attacks.perturb: PGD with a random start, in eval mode, input gradients only."""
    was_training = net.training
    net.eval()
    clean = images.detach()
    x = (clean + (torch.rand(clean.shape, generator=generator).to(clean.device) * 2 - 1) * epsilon).clamp(0, 1)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(net(x), labels, reduction="sum")
        grad, = torch.autograd.grad(loss, x)
        with torch.no_grad():
            delta = (x + grad.sign() * step_size - clean).clamp(-epsilon, epsilon)
            x = (clean + delta).clamp(0, 1)
    net.train(was_training)
    return x.detach()


def time_classifier_step(args):
    """ClassifierTrainer.trainingStep: augmentation, optional PGD-7, one SGD (Nesterov) step. The
    tuned peer runs channels-last with PyTorch's fused SGD; the compiled one under torch.compile."""
    torch.manual_seed(args.seed)
    mean, std = NORMALIZATION[args.channels]
    model = ResNet20(args.channels, mean, std).to(DEVICE)
    extra = {"fused": True} if args.variant != "plain" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, **extra)
    if args.variant != "plain":
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if args.variant == "compiled" else model
    images = torch.rand(args.batch_size, args.channels, args.resolution, args.resolution).to(DEVICE)
    if args.variant != "plain":
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (args.batch_size,)).to(DEVICE)
    augment_generator = torch.Generator().manual_seed(args.seed + 1)
    attack_generator = torch.Generator().manual_seed(args.seed + 2)
    epsilon = 8 / 255

    def step():
        x = augment(images, augment_generator)
        if args.classifier_step == "adversarial":
            x = pgd_linf(net, x, labels, epsilon, 7, epsilon / 4, attack_generator)
        net.train()
        logits = net(x)  # (B, K)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
        with torch.no_grad():
            (logits.argmax(1) == labels).float().sum().item()

    return measure_step(step, args, {"classifier_params": sum(p.numel() for p in model.parameters())})


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, choices=[32, 64, 128], default=32)
    parser.add_argument("--channels", type=int, choices=[1, 3], default=3)
    parser.add_argument("--batch-size", type=int, help="default 64; 128 for --classifier-step")
    parser.add_argument("--ch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-init", metavar="WEIGHTS")
    parser.add_argument("--write-batch", metavar="BATCH")
    parser.add_argument("--first-step", metavar="WEIGHTS")
    parser.add_argument("--batch", metavar="BATCH")
    parser.add_argument("--write-after", metavar="WEIGHTS", help="with --first-step: the state after the step")
    parser.add_argument("--time", action="store_true", help="time training steps")
    parser.add_argument("--reconstruct", action="store_true", help="time the EMA generator's forward")
    parser.add_argument("--classifier-step", choices=["standard", "adversarial"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N], for the timing modes")
    parser.add_argument("--variant", choices=VARIANTS, default="plain",
                        help="plain (BigGAN-PyTorch's step), tuned (cached logits, one classifier pass on the fakes, "
                             "channels-last, fused Adam) or compiled (tuned under torch.compile)")
    parser.add_argument("--op-trace", metavar="FILE", help="with --time or --classifier-step: one more step's operator calls "
                        "under torch.profiler, for benchmarks/flops.py")
    parser.add_argument("--flops", action="store_true", help="with --time or --classifier-step: count one step's FLOPs (FlopCounterMode)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch has no usable CUDA")
    if args.batch_size is None:
        args.batch_size = 128 if args.classifier_step else 64
    torch.set_num_threads(args.threads)

    if args.write_init or args.write_batch:
        if not (args.write_init and args.write_batch):
            parser.error("--write-init and --write-batch go together")
        return write_init(args)
    if args.first_step:
        if not args.batch:
            parser.error("--first-step needs --batch")
        return first_step(args)
    if args.classifier_step:
        mode, (times, counts) = f"classifier-{args.classifier_step}", time_classifier_step(args)
    elif args.reconstruct:
        mode, (times, counts) = "reconstruct", time_reconstruction(args)
    elif args.time:
        mode, (times, counts) = "train", time_training(args)
    else:
        parser.error("give one of --write-init, --first-step, --time, --reconstruct, --classifier-step")
    fields = {"impl": "python", "variant": args.variant, "mode": mode, "resolution": args.resolution, "channels": args.channels,
              "ch": args.ch, "batch_size": args.batch_size, "step_times_s": times, "peak_rss_mb": peak_rss_mb(),
              "device": str(DEVICE), **counts, **environment_fields()}
    if mode == "reconstruct":
        fields["images_per_s"] = args.batch_size / sorted(times)[len(times) // 2]
    print(json.dumps(fields, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
