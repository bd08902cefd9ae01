"""Training loops: airfoil regression (from scratch and concise) and one classifier loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from d2lkit import checks
from d2lkit.device import Timer
from d2lkit.models import linreg, squared_loss
from d2lkit.optim import Optimizer
from d2lkit.plot import Animator
from d2lkit.report import fmt_sec

Batches = Iterable[tuple[torch.Tensor, ...]]


@dataclass
class History:
    """Loss curve of an airfoil run: at each evaluation, the epoch and training time so far."""

    epochs: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        """Return the loss at the last evaluation."""
        return self.losses[-1]

    def loss_at(self, epoch: float) -> float:
        """Return the loss at the first evaluation at or after ``epoch``."""
        return next(loss for e, loss in zip(self.epochs, self.losses) if e >= epoch)

    def first_reaching(self, target: float) -> tuple[float, float] | None:
        """Return ``(epoch, time)`` of the first evaluation with loss <= ``target``, else None."""
        points = zip(self.epochs, self.times, self.losses)
        return next(((e, t) for e, t, loss in points if loss <= target), None)


def evaluate_loss(
    net: Callable[[torch.Tensor], torch.Tensor],
    data_iter: Batches,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """Return the mean of ``loss_fn`` (elementwise) over all examples of ``data_iter``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for X, y in data_iter:
            total += float(loss_fn(net(X), y).sum())
            count += y.numel()
    return total / count


def _run_airfoil(
    step: Callable[[torch.Tensor, torch.Tensor], None],
    evaluate: Callable[[], float],
    data_iter: Batches,
    num_epochs: int,
    eval_every: int,
    animate: bool,
) -> History:
    """Run ``step`` over ``num_epochs`` passes, evaluating every ``eval_every`` examples."""
    num_epochs = checks.integer("num_epochs", num_epochs, minimum=1)
    eval_every = checks.integer("eval_every", eval_every, minimum=1)
    batches_per_epoch = len(data_iter)  # type: ignore[arg-type]
    history, timer = History(), Timer()
    animator = Animator(xlabel="epoch", ylabel="loss", xlim=[0, num_epochs],
                        ylim=[0.22, 0.35]) if animate else None

    def record(epoch: float) -> None:  # evaluation time is not training time: the timer is off
        history.epochs.append(epoch)
        history.times.append(timer.sum())
        history.losses.append(evaluate())
        if animator:
            animator.add(epoch, history.losses[-1])

    seen = batches = 0
    for _ in range(num_epochs):
        for X, y in data_iter:
            step(X, y)
            batches += 1
            before, seen = seen, seen + len(y)
            if seen // eval_every > before // eval_every:
                timer.stop()
                record(batches / batches_per_epoch)
                timer.start()
    timer.stop()
    if not history.epochs or history.epochs[-1] != num_epochs:
        record(float(num_epochs))
    if animator:
        animator.show()
    print(f"loss: {history.final_loss:.3f}, {fmt_sec(timer.sum() / num_epochs)}/epoch")
    return history


def train_airfoil_scratch(
    opt: Optimizer,
    data_iter: Batches,
    feature_dim: int,
    num_epochs: int = 2,
    eval_every: int = 200,
    animate: bool = True,
) -> History:
    """Train linear regression on the airfoil data with a from-scratch ``d2lkit.optim`` optimizer.

    Weights start from N(0, 0.01^2) and the bias at zero; the loss is the mean squared loss.
    Prints the final loss and the training time per epoch (evaluation time excluded).
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"Invalid opt: {opt!r} (expected a d2lkit.optim.Optimizer)")
    feature_dim = checks.integer("feature_dim", feature_dim, minimum=1)
    params = [torch.normal(0.0, 0.01, size=(feature_dim, 1)), torch.zeros(1)]
    state = opt.init(params)

    def step(X: torch.Tensor, y: torch.Tensor) -> None:
        nonlocal params, state
        leaves = [p.requires_grad_() for p in params]
        loss = squared_loss(linreg(X, *leaves), y).mean()
        grads = list(torch.autograd.grad(loss, leaves))
        params, state = opt.update(grads, state, [p.detach() for p in leaves], opt.hp)

    def evaluate() -> float:
        return evaluate_loss(lambda X: linreg(X, *params), data_iter, squared_loss)

    return _run_airfoil(step, evaluate, data_iter, num_epochs, eval_every, animate)


def train_airfoil_concise(
    opt_cls: type[torch.optim.Optimizer],
    hp: Mapping[str, Any],
    data_iter: Batches,
    num_epochs: int = 4,
    eval_every: int = 200,
    animate: bool = True,
) -> History:
    """Train ``nn.Linear`` on the airfoil data with a ``torch.optim`` class and hyperparameters.

    Same model, initialization and loss as ``train_airfoil_scratch``, written with ``torch.nn``.
    """
    if not (isinstance(opt_cls, type) and issubclass(opt_cls, torch.optim.Optimizer)):
        raise TypeError(f"Invalid opt_cls: {opt_cls!r} (expected a torch.optim.Optimizer class)")
    if not isinstance(hp, Mapping):
        raise TypeError(f"Invalid hp: {hp!r} (expected a dict of keyword arguments)")
    X0, _ = next(iter(data_iter))
    net = nn.Linear(X0.shape[1], 1)
    nn.init.normal_(net.weight, std=0.01)
    nn.init.zeros_(net.bias)
    optimizer = opt_cls(net.parameters(), **hp)
    mse = nn.MSELoss()

    def step(X: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss = mse(net(X), y.reshape(-1, 1)) / 2  # MSELoss has no factor 1/2
        loss.backward()
        optimizer.step()

    def evaluate() -> float:
        return evaluate_loss(net, data_iter, squared_loss)

    return _run_airfoil(step, evaluate, data_iter, num_epochs, eval_every, animate)


@dataclass
class ClassifierHistory:
    """Per-epoch metrics of a classifier run, and the learning rate of every step."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)


def channels_last_view(X: torch.Tensor) -> torch.Tensor:
    """Return a batch of single-channel CPU images as a channels-last view (same memory, no copy).

    For one channel, NCHW and NHWC hold the elements in the same order; only the strides say
    which layout it is. With channels-last strides, oneDNN runs the first convolution in NHWC
    and the following pooling, ReLU and convolutions stay in that layout, which on the CPU makes
    a training step of ``d2lkit.models.lenet`` faster and its inference about twice as fast (see
    the page *How fast is this book?*). Any other tensor is returned unchanged.
    """
    if X.dim() == 4 and X.shape[1] == 1 and X.device.type == "cpu" and X.is_contiguous():
        _, _, h, w = X.shape
        return X.as_strided(X.shape, (h * w, 1, w, 1), X.storage_offset())
    return X


def evaluate(
    net: nn.Module, data_iter: Batches, loss_fn: Callable[..., torch.Tensor] | None = None
) -> tuple[float, float]:
    """Return the mean loss and the accuracy of classifier ``net`` over ``data_iter``."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    was_training = net.training
    net.eval()
    loss_sum = correct = torch.zeros(())
    count = 0
    with torch.inference_mode():
        for X, y in data_iter:
            logits = net(channels_last_view(X))
            loss_sum = loss_sum + loss_fn(logits, y, reduction="sum").float()
            correct = correct + (logits.argmax(dim=1) == y).sum()
            count += len(y)
    net.train(was_training)
    return float(loss_sum) / count, float(correct) / count


def evaluate_accuracy(net: nn.Module, data_iter: Batches) -> float:
    """Return the accuracy of classifier ``net`` over ``data_iter``."""
    return evaluate(net, data_iter)[1]


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_classifier(
    net: nn.Module,
    train_iter: Batches,
    test_iter: Batches,
    num_epochs: int,
    optimizer: torch.optim.Optimizer,
    *,
    schedule: Callable[[int], float] | Any = None,
    schedule_unit: str = "epoch",
    loss_fn: Callable[..., torch.Tensor] | None = None,
    on_batch: Callable[[int, torch.Tensor], None] | None = None,
    animate: bool = True,
    verbose: bool = True,
) -> ClassifierHistory:
    """Train a classifier with minibatch updates, evaluating on ``test_iter`` after each epoch.

    ``schedule`` is either a function from the epoch (``schedule_unit="epoch"``) or step
    (``"step"``) index to a learning rate, set *before* that epoch or step runs so that the rate
    used is the rate drawn; or a ``torch.optim.lr_scheduler`` object, stepped after each epoch or
    step (``ReduceLROnPlateau`` after each epoch, with the test loss). ``on_batch(step, loss)`` is
    called after every update with the minibatch loss (a tensor, to avoid a device sync).
    Single-channel image batches on the CPU reach ``net`` as a ``channels_last_view``.
    """
    num_epochs = checks.integer("num_epochs", num_epochs, minimum=1)
    schedule_unit = checks.choice("schedule_unit", schedule_unit, ("epoch", "step"))
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"Invalid optimizer: {optimizer!r} (expected a torch.optim.Optimizer)")
    loss_fn = loss_fn or nn.functional.cross_entropy
    plateau = isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau)
    torch_sched = isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)
    rate_fn = schedule if callable(schedule) and not (plateau or torch_sched) else None
    history = ClassifierHistory()
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs], ylim=[0, 1],
                        legend=["train loss", "train acc", "test acc"]) if animate else None
    step = 0
    for epoch in range(num_epochs):
        if rate_fn is not None and schedule_unit == "epoch":
            _set_lr(optimizer, rate_fn(epoch))
        first_step = len(history.step_lr)
        net.train()
        timer = Timer()
        loss_sum = correct = torch.zeros(())
        count = 0
        for X, y in train_iter:
            if rate_fn is not None and schedule_unit == "step":
                _set_lr(optimizer, rate_fn(step))
            history.step_lr.append(optimizer.param_groups[0]["lr"])
            logits = net(channels_last_view(X))
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if torch_sched and schedule_unit == "step":
                schedule.step()
            with torch.no_grad():
                loss_sum = loss_sum + loss.detach() * len(y)
                correct = correct + (logits.argmax(dim=1) == y).sum()
            count += len(y)
            if on_batch is not None:
                on_batch(step, loss.detach())
            step += 1
        history.lr.append(history.step_lr[first_step])  # the rate the epoch started with
        train_loss, train_acc = float(loss_sum) / count, float(correct) / count
        history.epoch_time.append(timer.stop())
        test_loss, test_acc = evaluate(net, test_iter, loss_fn)
        if plateau:
            schedule.step(test_loss)
        elif torch_sched and schedule_unit == "epoch":
            schedule.step()
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        history.test_loss.append(test_loss)
        history.test_acc.append(test_acc)
        if animator:
            animator.add(epoch + 1, (train_loss, train_acc, test_acc))
    if animator:
        animator.show()
    if verbose:
        per_epoch = sum(history.epoch_time) / num_epochs
        print(f"epoch {num_epochs}: train loss {history.train_loss[-1]:.3f}, "
              f"train acc {history.train_acc[-1]:.3f}, test acc {history.test_acc[-1]:.3f}, "
              f"{fmt_sec(per_epoch)}/epoch")
    return history
