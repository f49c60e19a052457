"""Image sets: a folder, a glob, a list file or an ImageFolder-style tree, with the model's eval transform.

Every file is checked up front (a header read), so a bad image stops the run before any model work and
the error names the file. The image list is hashed into the provenance.
"""
from __future__ import annotations

import dataclasses
import functools
import glob as globlib
import hashlib
import random
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from freqlens.errors import FreqlensError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def sample_images_dir() -> Path:
    """The sample photographs shipped with freqlens (licences in their LICENSES.md)."""
    return Path(str(resources.files("freqlens") / "data" / "samples"))


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Image paths in a fixed order, with class labels when the source provides them (else -1)."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def has_labels(self) -> bool:
        return bool(self.classes)

    @functools.cached_property
    def list_sha256(self) -> str:
        """Hash of the image list (relative names, sizes, labels): which images, in which order
        (one stat per image, so computed once per set)."""
        digest = hashlib.sha256()
        root = Path(self.source) if Path(self.source).is_dir() else None
        for path, label in zip(self.paths, self.labels, strict=True):
            name = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
            digest.update(f"{name}\t{path.stat().st_size}\t{label}\n".encode())
        return digest.hexdigest()

    def provenance(self) -> dict:
        return {"source": self.source, "count": len(self), "list_sha256": self.list_sha256,
                "labelled": self.has_labels, "classes": list(self.classes)[:50]}


def find_images(source: str | Path, limit: int | None = None, seed: int = 0) -> ImageSet:
    """Resolve ``source`` (folder, ImageFolder tree, glob pattern or .txt list) to a checked ImageSet.

    With ``limit``, a seeded random subset of that size is taken (kept in sorted order), so a small run
    still covers every class of a tree.
    """
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    source = str(source)
    path = Path(source)
    if path.is_dir():
        paths, labels, classes = _from_folder(path)
    elif path.is_file() and path.suffix == ".txt":
        paths, labels, classes = _from_list(path)
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        paths, labels, classes = [path], [-1], []
    elif any(ch in source for ch in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(source, recursive=True) if p.lower().endswith(IMAGE_SUFFIXES))
        labels, classes = [-1] * len(paths), []
    else:
        raise UsageError(f"--images {source!r} is not a folder, a glob pattern, an image or a .txt list",
                         hint="pass a folder of images, a pattern such as 'val/*.JPEG', or a text file of paths")
    if not paths:
        raise FreqlensError(f"--images {source!r} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})",
                            hint="check the path, or the pattern's quoting in your shell")
    if limit is not None and limit < len(paths):
        keep = sorted(random.Random(seed).sample(range(len(paths)), limit))
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    for p in paths:
        _check_image(p)
    return ImageSet(tuple(paths), tuple(labels), tuple(classes), source)


def _from_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    direct = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if subdirs and not direct:  # ImageFolder tree: one sub-folder per class
        paths, labels = [], []
        for index, d in enumerate(subdirs):
            files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            paths += files
            labels += [index] * len(files)
        return paths, labels, [d.name for d in subdirs]
    return direct, [-1] * len(direct), []


def _from_list(list_file: Path) -> tuple[list[Path], list[int], list[str]]:
    """Lines ``path`` or ``path<TAB or space>label``; relative paths are relative to the list file."""
    paths, labels = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        name, label = (parts[0], int(parts[1])) if len(parts) == 2 and parts[1].lstrip("-").isdigit() else (line, -1)
        path = Path(name) if Path(name).is_absolute() else list_file.parent / name
        if not path.is_file():
            raise FreqlensError(f"{list_file}:{number}: image {name!r} does not exist", hint="fix or remove that line")
        paths.append(path)
        labels.append(label)
    has_labels = any(lbl >= 0 for lbl in labels)
    classes = [str(i) for i in range(max(labels) + 1)] if has_labels else []
    return paths, labels, classes


def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FreqlensError(f"image {str(path)!r} cannot be read ({type(exc).__name__}: {exc})",
                            hint="remove or replace the file, or point --images elsewhere") from exc


def as_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit greyscale images (PNG, TIFF) are scaled by 255/65535: PIL's own conversion clips
    them at 255, which turns most of such an image white."""
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        # a 32-bit "I" image is taken as 16-bit data only when its values say so (some exceed 8 bits)
        sixteen_bit = img.mode.startswith("I;16") or values.max(initial=0) > 255
        if sixteen_bit and values.min(initial=0) >= 0 and values.max(initial=0) <= 65535:
            img = Image.fromarray(np.round(values * (255 / 65535)).astype(np.uint8), "L")
    return img.convert("RGB")


class ImageDataset(torch.utils.data.Dataset):
    """(image tensor, label) pairs of an ImageSet through an eval transform."""

    def __init__(self, images: ImageSet, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.images.paths[index]
        try:
            with Image.open(path) as img:
                return self.transform(as_rgb(img)), self.images.labels[index]
        except OSError as exc:
            raise FreqlensError(f"image {str(path)!r} cannot be decoded ({exc})", hint="remove or replace the file") from exc
