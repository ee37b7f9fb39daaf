"""PSNR and SSIM of fixed image pairs by scikit-image, the reference for Afterimage's metrics.
Usage: skimage_metrics.py OUT.safetensors"""
import sys

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from safetensors_io import save

rng = np.random.default_rng(0)
a = rng.random((4, 3, 24, 20))
b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
b[1] = rng.random((3, 24, 20))  # an unrelated image
psnr = [peak_signal_noise_ratio(a[i], b[i], data_range=1) for i in range(4)]
ssim = [structural_similarity(a[i], b[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1, channel_axis=0) for i in range(4)]
save({"a": torch.from_numpy(a), "b": torch.from_numpy(b), "psnr": torch.tensor(psnr), "ssim": torch.tensor(ssim)}, sys.argv[1])
