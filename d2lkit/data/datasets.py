"""The book's data sets: airfoil self-noise and Fashion-MNIST, as tensors."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import torch

from d2lkit import checks
from d2lkit.data.batches import MinibatchIter
from d2lkit.data.files import DataError, DataFile
from d2lkit.data.sources import load

AIRFOIL = DataFile(
    "airfoil_self_noise.dat",
    "http://d2l-data.s3-accelerate.amazonaws.com/airfoil_self_noise.dat",
    "sha1",
    "76e5be1548fd8222e5074cf0faae75edff8cf93f",
)

_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FMNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


def _fashion_mnist_file(name: str, sha256: str) -> DataFile:
    """One of the four Fashion-MNIST files, from the authors' server or Debian's package."""
    return DataFile(name, _FMNIST_URL + name, "sha256", sha256, _FMNIST_DIRS)


FASHION_MNIST = {
    "train-images": _fashion_mnist_file(
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels": _fashion_mnist_file(
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test-images": _fashion_mnist_file(
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test-labels": _fashion_mnist_file(
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
FASHION_MNIST_LABELS = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)


def airfoil(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the first ``n`` airfoil examples: features ``[n, 5]`` and target ``[n]``.

    Every column is standardized with the mean and (population) standard deviation of all 1503
    rows, as the book this follows does, before the first ``n`` rows are taken.
    """
    n = checks.integer("n", n, minimum=1)
    if n > 1503:
        raise ValueError(f"Invalid n: {n!r} (expected 1 <= n <= 1503, the rows of the data set)")
    data = np.genfromtxt(io.BytesIO(load(AIRFOIL)), dtype=np.float32, delimiter="\t")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    tensor = torch.from_numpy(data[:n])
    return tensor[:, :-1].contiguous(), tensor[:, -1].contiguous()


def airfoil_iter(
    batch_size: int, n: int = 1500, seed: int = 0, device: torch.device | None = None
) -> tuple[MinibatchIter, int]:
    """Return a shuffling minibatch iterator over the airfoil data and the number of features."""
    X, y = airfoil(n)
    device = device or torch.device("cpu")
    return MinibatchIter(X.to(device), y.to(device), batch_size=batch_size, seed=seed), X.shape[1]


def parse_idx(raw: bytes) -> np.ndarray:
    """Return the array stored in an IDX file (the format of MNIST and Fashion-MNIST)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError("Not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"IDX payload has {data.size} bytes, header says shape {shape}")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _fashion_mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(load(FASHION_MNIST[f"{split}-images"]))
    labels = parse_idx(load(FASHION_MNIST[f"{split}-labels"]))
    return images, labels


def fashion_mnist(
    train: bool = True, n: int | None = None, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return Fashion-MNIST images ``[N, 1, 28, 28]`` (float32 in [0, 1]) and labels ``[N]``.

    ``n`` keeps the first ``n`` examples (a fixed, class-balanced-enough subset for quick runs).
    """
    images, labels = _fashion_mnist_arrays("train" if train else "test")
    if n is not None:
        n = checks.integer("n", n, minimum=1)
        if n > len(labels):
            raise ValueError(f"Invalid n: {n!r} (expected 1 <= n <= {len(labels)})")
        images, labels = images[:n], labels[:n]
    X = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    device = device or torch.device("cpu")
    return X.to(device), y.to(device)
