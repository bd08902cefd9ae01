"""Data sets (airfoil self-noise, Fashion-MNIST) and an in-memory minibatch iterator.

Every file is looked up, in this order, in

1. the directory named by ``$D2LKIT_DATA_MIRROR`` (a local mirror, e.g. for offline CI);
2. the system directories a package manager fills (Debian's ``dataset-fashion-mnist``);
3. the user cache, ``$D2LKIT_CACHE`` or ``~/.cache/d2lkit``;
4. its official URL, downloaded into the cache.

Whatever the source, the file's checksum is verified, on the content it is read as (decompressed
for a ``.gz``), before it is used. The modules: ``files`` (a file, its checksum, verification),
``sources`` (where it is looked for, what happens to a bad copy), ``downloads`` (atomic, verified
downloads with a total deadline), ``datasets`` (the data sets as tensors) and ``batches``
(``MinibatchIter``).
"""

from d2lkit.data.batches import MinibatchIter
from d2lkit.data.datasets import (
    AIRFOIL,
    FASHION_MNIST,
    FASHION_MNIST_LABELS,
    airfoil,
    airfoil_iter,
    fashion_mnist,
    parse_idx,
)
from d2lkit.data.downloads import download
from d2lkit.data.files import (
    DataError,
    DataFile,
    DataWarning,
    cache_dir,
    checksum,
    read_bytes,
    verify,
)
from d2lkit.data.sources import candidates, fetch, load

__all__ = [
    "AIRFOIL",
    "FASHION_MNIST",
    "FASHION_MNIST_LABELS",
    "DataError",
    "DataFile",
    "DataWarning",
    "MinibatchIter",
    "airfoil",
    "airfoil_iter",
    "cache_dir",
    "candidates",
    "checksum",
    "download",
    "fashion_mnist",
    "fetch",
    "load",
    "parse_idx",
    "read_bytes",
    "verify",
]
