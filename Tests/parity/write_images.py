"""Writes JPEG files with PIL for the image-folder tests. Usage: write_images.py DIR
Creates DIR/rgb.jpg (24x16 RGB), DIR/gray.jpg (16x16 grayscale) and DIR/cmyk.jpg (24x16 CMYK)
from simple gradients."""
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
# A CMYK file (print workflows; PIL writes Adobe's inverted convention) and PIL's own RGB reading
# of it, 24x16x3 bytes row-major, for the decoder to match.
cmyk = Image.new("CMYK", (24, 16))
cmyk.putdata([(x * 10, y * 15, 40, (x + y) * 4) for y in range(16) for x in range(24)])
cmyk.save(os.path.join(folder, "cmyk.jpg"), quality=95)
with open(os.path.join(folder, "cmyk-as-rgb.bin"), "wb") as out:
    out.write(Image.open(os.path.join(folder, "cmyk.jpg")).convert("RGB").tobytes())
