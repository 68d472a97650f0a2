"""Writes the PIL reference for the Swift Resize: a 100x100 RGB PNG (RAF-DB's aligned-face size)
and Pillow's BILINEAR resize of it to 224x224 (torchvision's Resize((224, 224)) on PIL images
calls exactly this) and to 40x36 (a downscale, where Pillow's antialiasing matters), as uint8 .npy.

Run with the torch venv (Pillow + numpy):  /work/venvs/torch/bin/python tools/pil_resize_fixture.py
Prints the MANIFEST lines for the files it wrote.
"""
import hashlib
import os
import sys

import numpy as np
import PIL
from PIL import Image

SEED = 20240607
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data")


def make_input():
    # Smooth colour gradients and a few hard edges (stress the filter) plus mild noise, so the
    # PNG stays small while every pixel differs.
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:100, 0:100].astype(np.float64)
    r = 128 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)
    g = 2.4 * x + 0.2 * y
    b = 255 * ((x - 50) ** 2 + (y - 45) ** 2 < 30 ** 2)
    image = np.stack([r, g, b], axis=-1)
    image[40:60, 10:90, :] = [250, 20, 30]
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    pixels = make_input()
    source = Image.fromarray(pixels, "RGB")
    files = {"resize_input.png": None, "resize_224x224.npy": (224, 224), "resize_40x36.npy": (40, 36)}
    source.save(os.path.join(OUT, "resize_input.png"), optimize=True)
    # Decode the PNG back, as the Swift side does, so both start from the same bytes.
    decoded = Image.open(os.path.join(OUT, "resize_input.png")).convert("RGB")
    assert np.array_equal(np.asarray(decoded), pixels)
    for name, size in files.items():
        if size is not None:
            np.save(os.path.join(OUT, name), np.asarray(decoded.resize(size, Image.BILINEAR)))
    versions = f"Pillow={PIL.__version__} numpy={np.__version__} python={sys.version.split()[0]}"
    notes = {
        "resize_input.png": "100x100 RGB input (gradients, edges, noise)",
        "resize_224x224.npy": "PIL Image.resize((224, 224), BILINEAR) of resize_input.png, uint8 HWC (= torchvision Resize((224,224)))",
        "resize_40x36.npy": "PIL Image.resize((40, 36), BILINEAR) of resize_input.png, uint8 HWC (antialiased downscale)",
    }
    for name in files:
        with open(os.path.join(OUT, name), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        print(f"data/{name}\t{digest}\ttools/pil_resize_fixture.py:main\t{versions}\tseed={SEED}\t{notes[name]}")


if __name__ == "__main__":
    main()
