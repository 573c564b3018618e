"""Image data: folders of PNG/JPEG files (decoded with Pillow) and image arrays in .npz files.

Images become flat rows so that splitting and indexing code is the same as for tables:

    row = image[c, y, x] flattened in C, H, W order      (length D = C·H·W)

and the caller keeps ``image_shape = (C, H, W)`` to reshape them back to [N, C, H, W]. Feature
names are ``c{c}_y{y}_x{x}`` (e.g. ``c0_y0_x0``), one per entry of the row, in the same order.

Folders (`load_image_folder`):

- Labelled: one subfolder per class (class name = subfolder name, classes sorted), each holding
  .png / .jpg / .jpeg files (any case) directly inside; other files, nested folders and hidden
  entries (names starting with ".") are ignored. At predict time (``require_target=False``) a flat
  folder of images is accepted too, and class subfolders, if present, are read without labels.
- Pixels are scaled to [0, 1] (÷ 255). ``image_size`` (an int S for S×S, or (H, W)) resizes every
  image with Pillow's BILINEAR filter (antialiased when shrinking); None keeps the first image's
  size (in sorted order) and resizes the others to it.
- Channels: ``channels=1`` converts every image to gray ("L"), ``channels=3`` to "RGB"; None gives
  RGB if any image is colour (any mode other than the gray ones "1", "L", "LA", "I", "I;16*",
  "F"; palette "P" images count as colour) and gray otherwise, so folders mixing gray and colour
  files are converted, not refused. Conversion is Pillow's ``convert`` (ITU-R 601-2 luma for
  RGB → L; alpha is dropped, not composited), except 16-bit gray ("I;16"), which Pillow's
  ``convert("L")`` would clip at 255: it is scaled to 8 bits as round(v / 257) instead.
- A file Pillow cannot identify or decode (corrupt, truncated, not really an image) is a
  `UserError` naming its path, or with ``skip_bad_images=True`` is skipped and counted.

.npz arrays (`to_nchw`): X of shape [N, C, H, W] or [N, H, W, C], or [N, H, W] for one channel.
The channel axis is axis 3 (NHWC) when only axis 3 has size 1, 3 or 4; in every other case —
only axis 1 qualifies, both do, or neither does — the array is taken as NCHW (PyTorch's layout).
Values are kept as given (no ÷ 255): arrays may already be scaled.

Pillow does the decoding and resizing; only the folder walk and the error reporting are written
here, since neither torchvision (not a dependency) nor Pillow offers a labelled-folder reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrecipe.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")  # plus every "I;16..." variant
_SKIP_FIX = "remove or replace the file, or pass --skip-bad-images to skip unreadable images"
_LAYOUT_FIX = ("pass a folder with one subfolder of .png/.jpg images per class, "
               "e.g. data/cat/1.png and data/dog/1.png")


@dataclass(frozen=True, eq=False)
class FolderImages:
    X: np.ndarray  # float64 [N, C·H·W] in [0, 1]
    y: np.ndarray | None  # class names (str) [N]; None at predict time
    image_shape: tuple[int, int, int]  # (C, H, W)
    row_names: list[str]  # file paths relative to the folder, "/"-separated
    skipped: int  # unreadable files skipped (skip_bad_images=True)


def image_feature_names(image_shape: tuple[int, int, int]) -> list[str]:
    """``c{c}_y{y}_x{x}`` for every entry of a flat C, H, W row, in row order."""
    c, h, w = image_shape
    return [f"c{i}_y{j}_x{k}" for i in range(c) for j in range(h) for k in range(w)]


def to_nchw(X: np.ndarray, source: str) -> np.ndarray:
    """[N, H, W] → [N, 1, H, W]; [N, H, W, C] → [N, C, H, W] when detected (module docstring)."""
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4 and X.shape[3] in (1, 3, 4) and X.shape[1] not in (1, 3, 4):
        X = X.transpose(0, 3, 1, 2)
    elif X.ndim != 4:
        raise ValueError(f"expected a 3-D or 4-D array, got shape {X.shape}")
    if 0 in X.shape:
        raise UserError(f"array X has shape {X.shape} (as N×C×H×W); every axis needs at least "
                        "one entry", source, "save X as N×C×H×W, N×H×W×C or N×H×W images")
    return X


def _is_image(entry: os.DirEntry) -> bool:
    return (not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_SUFFIXES)
            and entry.is_file())


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    """Sorted (image file names, subfolder names) directly inside `folder`; hidden ones skipped."""
    with os.scandir(folder) as entries:
        entries = list(entries)
    files = sorted(e.name for e in entries if _is_image(e))
    dirs = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    return files, dirs


def image_hw(image_size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """image_size as (H, W), or None."""
    if image_size is None:
        return None
    square = isinstance(image_size, (int, np.integer))
    hw = (image_size, image_size) if square else tuple(image_size)
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in hw):
        raise ValueError(f"image_size must be a positive int or (H, W), got {image_size!r}")
    return int(hw[0]), int(hw[1])


def decode_image(path: Path, channels: int | None, size: tuple[int, int] | None):
    """The image as uint8 [H, W, 1 or 3]; channels None keeps gray gray and colour colour."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # decode now: Image.open only reads the header, corrupt data shows up here
        if im.mode.startswith("I;16"):  # convert("L") clips 16-bit values at 255; scale instead
            im = Image.fromarray(np.rint(np.asarray(im, dtype=np.float64) / 257).astype(np.uint8))
        gray = im.mode in _GRAY_MODES
        mode = {1: "L", 3: "RGB"}.get(channels, "L" if gray else "RGB")
        im = im.convert(mode) if im.mode != mode else im
        if size is not None and im.size != (size[1], size[0]):  # Pillow sizes are (W, H)
            im = im.resize((size[1], size[0]), Image.BILINEAR)
        pixels = np.asarray(im, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def bad_image_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    # UnidentifiedImageError: not an image Pillow knows; OSError: truncated/corrupt data;
    # ValueError/SyntaxError: malformed headers some plugins report that way; DecompressionBomb:
    # a file claiming more pixels than Pillow's safety limit.
    return (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class UnreadableImage(UserError):
    """A file Pillow cannot read; picklable (``__reduce__``) so that it crosses a DataLoader worker
    process whole (`nnrecipe.data.lazy_images`)."""

    def __reduce__(self):
        return type(self), (self.what, self.where, self.fix)


def unreadable_image(error: BaseException, rel: str, path: Path) -> UnreadableImage:
    """The error for a file that raised one of `bad_image_errors` when decoded."""
    reason = str(error).replace(str(path), "").strip(" '") or type(error).__name__
    return UnreadableImage(f"cannot read image '{rel}' ({type(error).__name__}: {reason})", str(path), _SKIP_FIX)


def list_image_folder(folder: Path, source: str, *,
                      require_target: bool) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(path relative to `folder`, class name or None) of every image to read, in reading order,
    and the class subfolders — the layout rules of the module docstring; nothing is decoded."""
    top_files, subdirs = _listing(folder)
    files: list[tuple[str, str | None]] = []
    if not require_target:
        files += [(name, None) for name in top_files]
    elif not subdirs:
        what = f"{len(top_files)} images but no class subfolders" if top_files else \
            "no class subfolders and no .png/.jpg images"
        raise UserError(f"folder '{source}' holds {what}", source, _LAYOUT_FIX)
    for cls in subdirs:
        names, _ = _listing(folder / cls)
        if not names and require_target:
            raise UserError(f"class folder '{cls}' holds no .png/.jpg/.jpeg images",
                            str(folder / cls), "add images to it or remove the folder")
        files += [(f"{cls}/{name}", cls) for name in names]
    if not files:
        raise UserError(f"folder '{source}' holds no .png/.jpg/.jpeg images", source,
                        _LAYOUT_FIX)
    return files, subdirs


def check_readable(folder: Path, source: str, subdirs: list[str], kept: list[tuple[str, str | None]], *,
                   n_files: int, skipped: int, require_target: bool) -> None:
    """After skipping unreadable files: every class keeps an image, and something was read."""
    if require_target:
        empty = sorted(set(subdirs) - {cls for _, cls in kept})
        if empty:
            raise UserError(f"class folder '{empty[0]}' has no readable images ({skipped} "
                            "unreadable images skipped in all)", str(folder / empty[0]),
                            "replace its images or remove the folder")
    if not kept:
        raise UserError(f"none of the {n_files} images in '{source}' could be read", source,
                        "check that the files are PNG or JPEG images")


def load_image_folder(folder: Path, source: str, *, require_target: bool,
                      image_size: int | tuple[int, int] | None = None,
                      skip_bad_images: bool = False, channels: int | None = None) -> FolderImages:
    """Read a folder of class subfolders (or, at predict time, of images) — see the docstring."""
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    size = image_hw(image_size)
    files, subdirs = list_image_folder(folder, source, require_target=require_target)
    bad_errors = bad_image_errors()
    arrays, kept, skipped = [], [], 0
    for rel, cls in files:
        path = folder / rel
        try:
            pixels = decode_image(path, channels, size)
        except bad_errors as e:
            if not skip_bad_images:
                raise unreadable_image(e, rel, path) from None
            skipped += 1
            continue
        if size is None:  # the first readable image sets the size for the rest
            size = pixels.shape[:2]
        arrays.append(pixels)
        kept.append((rel, cls))
    check_readable(folder, source, subdirs, kept, n_files=len(files), skipped=skipped,
                   require_target=require_target)
    n_channels = max(a.shape[2] for a in arrays)  # gray next to colour: Pillow's L→RGB repeats
    stack = np.empty((len(arrays), n_channels, *size), dtype=np.uint8)
    for i, a in enumerate(arrays):
        stack[i] = a.transpose(2, 0, 1)  # broadcasts a gray [1, H, W] to every channel
    X = stack.reshape(len(stack), -1).astype(np.float64) / 255.0
    y = np.asarray([cls for _, cls in kept], dtype=str) if require_target else None
    return FolderImages(X=X, y=y, image_shape=(n_channels, int(size[0]), int(size[1])),
                        row_names=[rel for rel, _ in kept], skipped=skipped)
