"""IDX files (the MNIST format) and the Fashion-MNIST directory layout.

`read_idx` reads one file (plain or gzipped); `load_fashion_mnist_idx` reads the four files
of Fashion-MNIST (or any MNIST-format set) from a directory, as Debian's
``dataset-fashion-mnist`` installs them.
"""

from __future__ import annotations

import functools
import gzip
import math
import os

import numpy as np

from tfnas.data.specs import DEFAULT_FASHION_MNIST_DIR

# Fashion-MNIST IDX file names, as published and as the Debian package ships them.
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzipped when its name ends in ``.gz``) into a numpy array.

    Args:
      path: the file.

    Returns:
      The array, with the dtype (in native byte order) and shape of the file's header.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a valid IDX file (bad magic number, unknown type code,
        truncated, trailing bytes, bad gzip data); the message names the file.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read: {err}") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: expected 0x0000TTNN with type "
            f"TT in {{08, 09, 0b, 0c, 0d, 0e}} and NN >= 1 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"found {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        problem = "truncated" if found < expected else "trailing bytes"
        raise ValueError(f"{path}: {problem}: header shape {shape} of {dtype} needs "
                         f"{expected} data bytes, found {found}")
    array = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _find_idx_file(data_dir: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz"):  # plain first: no decompression
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def load_fashion_mnist_idx(data_dir: str | os.PathLike = DEFAULT_FASHION_MNIST_DIR) -> dict:
    """Loads Fashion-MNIST (or any MNIST-format data) from its four IDX files.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` in `data_dir`, each plain or
    with ``.gz``.

    Args:
      data_dir: the directory (default: where Debian's ``dataset-fashion-mnist`` puts them).

    Returns:
      ``dict(train=(x, y), test=(x, y))`` with ``x`` uint8 ``[N, H, W]`` and ``y`` uint8
      ``[N]`` (read-only arrays).

    Raises:
      FileNotFoundError: some files are missing (the message lists them).
      ValueError: a file is malformed, or images and labels do not match.
    """
    data_dir = os.fspath(data_dir)
    found, missing = {}, []
    for stems in FMNIST_FILES.values():
        for stem in stems:
            path = _find_idx_file(data_dir, stem)
            if path is None:
                missing.append(stem + "[.gz]")
            found[stem] = path
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing Fashion-MNIST IDX files: "
                                f"{', '.join(missing)}")
    return {split: _load_idx_pair(found[images], found[labels])
            for split, (images, labels) in FMNIST_FILES.items()}


@functools.lru_cache(maxsize=4)
def _load_idx_pair_cached(images_path: str, labels_path: str, _stamp: tuple) -> tuple:
    x = read_idx(images_path)
    y = read_idx(labels_path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], found {x.dtype} "
                         f"{list(x.shape)}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels [N], found {y.dtype} "
                         f"{list(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{images_path} has {x.shape[0]} images but {labels_path} has "
                         f"{y.shape[0]} labels")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _load_idx_pair(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    # Cached (several pipelines of one run read the same files) and keyed by mtime and size
    # so that a rewritten file is read again.
    stamp = tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size)
                  for p in (images_path, labels_path))
    return _load_idx_pair_cached(os.path.abspath(images_path), os.path.abspath(labels_path),
                                 stamp)


def idx_count(data_dir: str, stem: str) -> int | None:
    """Number of items in an IDX file from its header alone, or None when unreadable."""
    path = _find_idx_file(data_dir, stem)
    if path is None:
        return None
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(8)
    except (OSError, EOFError):
        return None
    if len(head) < 8 or head[:2] != b"\0\0":
        return None
    return int.from_bytes(head[4:8], "big")

