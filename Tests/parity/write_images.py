"""Writes JPEG files with PIL for the image-folder tests. Usage: write_images.py DIR
Creates DIR/rgb.jpg (24x16 RGB) and DIR/gray.jpg (16x16 grayscale) from simple gradients."""
import os
import sys

from PIL import Image

folder = sys.argv[1]
rgb = Image.new("RGB", (24, 16))
rgb.putdata([(x * 10, y * 15, 128) for y in range(16) for x in range(24)])
rgb.save(os.path.join(folder, "rgb.jpg"), quality=95)
gray = Image.new("L", (16, 16))
gray.putdata([x * 16 for y in range(16) for x in range(16)])
gray.save(os.path.join(folder, "gray.jpg"), quality=95)
