"""The two training loops the throughput benchmark compares: the seeds' and d2lkit's.

The seeds train with a ``torch.utils.data.DataLoader`` over torchvision's per-item Fashion-MNIST
data set (``TorchvisionLikeDataset`` repeats that per-item work, since torchvision is not a
dependency of this book) and read the loss back to the host after every update;
``d2lkit_loop`` runs ``d2lkit.train.train_classifier`` on minibatches already on the device.
``interleave`` runs the loops epoch by epoch in turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

import d2lkit
from d2lkit import data, models
from d2lkit.device import synchronize
from d2lkit.plot import Animator
from d2lkit.train import train_classifier

LOG_EVERY = 50  # the seeds log the running loss and accuracy every 50 minibatches


def seeded_lenet(device: torch.device, reference: bool = False) -> nn.Sequential:
    """Return d2lkit's LeNet from seed 0 on ``device``, in the seeds' order if ``reference``.

    Every loop and variant starts from these weights.
    """
    d2lkit.set_seed(0)
    net = models.lenet().to(device)
    return models.reference_order(net) if reference else net


@dataclass
class LoopTiming:
    """Wall-clock seconds per epoch of one training loop, split into training and evaluation."""

    name: str
    epochs: int
    epoch_s: float
    train_s: float
    eval_s: float
    test_acc: float
    epoch_times: list[float] = field(default_factory=list)


def interleave(loops: Mapping[str, Callable[[], LoopTiming]], epochs: int) -> list[LoopTiming]:
    """Run one epoch of each loop in turn, ``epochs`` times; return each loop's mean epoch.

    Taking turns spreads a slow spell of a shared or throttled machine over all loops alike,
    where running the loops one after the other would charge it to one of them.
    """
    runs: dict[str, list[LoopTiming]] = {name: [] for name in loops}
    for _ in range(epochs):
        for name, one_epoch in loops.items():
            runs[name].append(one_epoch())
    return [LoopTiming(done[-1].name, epochs, *(sum(getattr(t, key) for t in done) / epochs
                                               for key in ("epoch_s", "train_s", "eval_s")),
                       done[-1].test_acc, [t.epoch_s for t in done])
            for done in runs.values()]


class PerItemDataset(Dataset):
    """A map-style data set that hands out one (image, label) pair at a time, as torchvision's."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.X[i], int(self.y[i])


class TorchvisionLikeDataset(PerItemDataset):
    """Per-item data set that converts each image as torchvision's Fashion-MNIST does.

    torchvision stores the images as bytes and, for every item, wraps one in a PIL image and
    converts it back with ``ToTensor`` (a float copy divided by 255). The values are the same
    as those of ``d2lkit.data.fashion_mnist``; only the per-item work differs.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__((X * 255).round().to(torch.uint8).squeeze(1), y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import numpy as np
        from PIL import Image

        image = Image.fromarray(self.X[i].numpy(), mode="L")
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
        return pixels.unsqueeze(0).float().div(255), int(self.y[i])


def seeds_loop(
    net: nn.Module,
    train_batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_epochs: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    name: str = "seeds' loop",
) -> LoopTiming:
    """Train and evaluate with the seeds' per-batch habits; return the timing per epoch.

    Per minibatch: copy to the device, update, then read the loss and the number of correct
    predictions back as Python numbers (a host sync); log a point every 50 minibatches. After
    each epoch, evaluate the test accuracy batch by batch the same way.
    """
    animator = Animator(xlabel="epoch", legend=["train loss", "train acc", "test acc"])
    train_time = eval_time = 0.0
    test_acc = 0.0
    for epoch in range(num_epochs):
        synchronize(device)
        tik = time.perf_counter()
        loss_sum = correct = count = 0.0
        num_batches = len(train_batches)  # type: ignore[arg-type]
        for i, (X, y) in enumerate(train_batches):
            net.train()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            logits = net(X)
            loss = nn.functional.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * len(y)
                correct += float((logits.argmax(dim=1) == y).sum())
                count += len(y)
            if (i + 1) % LOG_EVERY == 0:
                animator.add(epoch + i / num_batches, (loss_sum / count, correct / count, None))
        synchronize(device)
        tok = time.perf_counter()
        net.eval()
        hits = seen = 0.0
        with torch.no_grad():
            for X, y in test_batches:
                X, y = X.to(device), y.to(device)
                hits += float((net(X).argmax(dim=1) == y).sum())
                seen += y.numel()
        test_acc = hits / seen
        animator.add(epoch + 1, (None, None, test_acc))
        synchronize(device)
        train_time += tok - tik
        eval_time += time.perf_counter() - tok
    return LoopTiming(name, num_epochs, (train_time + eval_time) / num_epochs,
                      train_time / num_epochs, eval_time / num_epochs, test_acc)


def d2lkit_loop(
    net: nn.Module,
    train_iter: data.MinibatchIter,
    test_iter: data.MinibatchIter,
    num_epochs: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    name: str = "d2lkit train_classifier",
) -> LoopTiming:
    """Train with ``d2lkit.train.train_classifier``; return the timing per epoch."""
    synchronize(device)
    tik = time.perf_counter()
    history = train_classifier(net, train_iter, test_iter, num_epochs, optimizer,
                               animate=False, verbose=False)
    synchronize(device)
    total = time.perf_counter() - tik
    train_time = sum(history.epoch_time)
    return LoopTiming(name, num_epochs, total / num_epochs, train_time / num_epochs,
                      (total - train_time) / num_epochs, history.test_acc[-1])
