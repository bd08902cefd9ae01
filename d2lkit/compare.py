"""Fair optimizer comparisons: train to a target with a from-scratch optimizer, random search.

The comparison chapter gives every optimizer the same tuning budget: the same number of trials
drawn by :func:`log_uniform_trials` (the same seeds), each trained by :func:`steps_to_target`
until a held-out metric reaches a target or a step budget runs out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from d2lkit import checks
from d2lkit.device import Timer
from d2lkit.optim import Optimizer


@dataclass
class TargetRun:
    """The outcome of :func:`steps_to_target`.

    ``steps`` is the step at which the target was first seen reached (or the steps run),
    ``seconds`` the training time up to then (evaluations excluded) and ``metric`` the last
    evaluation; ``curve`` holds the ``(step, metric)`` of every evaluation.
    """

    reached: bool
    steps: int
    seconds: float
    metric: float
    curve: list[tuple[int, float]]


def steps_to_target(
    net: nn.Module,
    opt: Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    evaluate: Callable[[nn.Module], float],
    target: float,
    max_steps: int,
    eval_every: int = 10,
    loss_fn: Callable[..., torch.Tensor] = nn.functional.cross_entropy,
    schedule: Callable[[int], float] | None = None,
) -> TargetRun:
    """Train ``net`` with the pure optimizer ``opt`` until ``evaluate(net) >= target``.

    ``batches`` is cycled as often as needed. Every ``eval_every`` steps (and after the last
    step) ``evaluate`` runs with the optimizer's evaluation parameters in place: for
    Schedule-Free optimizers the average $x$ (``d2lkit.optim.eval_params``), else the parameters
    themselves. ``schedule(t)``, when given, sets the learning rate of step ``t``. A run stops
    early, unreached, when the loss stops being finite.
    """
    from d2lkit.optim import ScheduleFreeState, eval_params

    max_steps = checks.integer("max_steps", max_steps, minimum=1)
    eval_every = checks.integer("eval_every", eval_every, minimum=1)
    target = checks.real("target", target)
    leaves = [p for p in net.parameters() if p.requires_grad]
    params = [p.detach().clone() for p in leaves]
    state = opt.init(params)
    timer, curve, steps, metric = Timer(), [], 0, float("nan")
    timer.stop()

    def measure() -> float:
        shown = eval_params(state) if isinstance(state, ScheduleFreeState) else params
        with torch.no_grad():
            for p, value in zip(leaves, shown, strict=True):
                p.copy_(value)
        return float(evaluate(net))

    while steps < max_steps:
        for X, y in batches:
            timer.start()
            with torch.no_grad():
                for p, value in zip(leaves, params, strict=True):
                    p.copy_(value)
            loss = loss_fn(net(X), y)
            grads = list(torch.autograd.grad(loss, leaves))
            hp = opt.hp if schedule is None else {**opt.hp, "lr": schedule(steps)}
            params, state = opt.update(grads, state, params, hp)
            timer.stop()
            steps += 1
            finite = math.isfinite(float(loss.detach()))
            if steps % eval_every == 0 or steps == max_steps or not finite:
                metric = measure() if finite else float("nan")
                curve.append((steps, metric))
                if metric >= target:
                    return TargetRun(True, steps, timer.sum(), metric, curve)
                if not finite:
                    return TargetRun(False, steps, timer.sum(), metric, curve)
            if steps >= max_steps:
                break
    return TargetRun(False, steps, timer.sum(), metric, curve)


def log_uniform_trials(
    space: Mapping[str, tuple[float, float]], n_trials: int, seed: int = 0
) -> list[dict[str, float]]:
    """Return ``n_trials`` points drawn log-uniformly from ``space`` (name -> (low, high)).

    The draw depends only on ``seed``, ``n_trials`` and the order of ``space``, so two
    optimizers given spaces with the same names and bounds get the same trials; a bound of
    0 is not allowed (log scale).
    """
    n_trials = checks.integer("n_trials", n_trials, minimum=1)
    for name, (low, high) in space.items():
        checks.positive(f"{name} low", low)
        if not high >= low:
            raise ValueError(f"Invalid {name} range: {(low, high)!r} (expected low <= high)")
    rng = random.Random(checks.integer("seed", seed))
    return [
        {name: math.exp(rng.uniform(math.log(low), math.log(high)))
         for name, (low, high) in space.items()}
        for _ in range(n_trials)
    ]


def best_so_far(values: Sequence[float]) -> list[float]:
    """Return the running minimum of ``values`` (``inf`` for a failed trial stays ``inf``)."""
    out, best = [], math.inf
    for v in values:
        best = min(best, v)
        out.append(best)
    return out


def teacher_task(
    n_train: int, n_test: int, dim: int = 32, classes: int = 10, hidden: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(X, y, X_test, y_test)`` of a generated classification task with a known answer.

    Inputs are standard normal in ``dim`` dimensions; the label is the argmax of a random
    teacher network ``Linear(dim, hidden) -> tanh -> Linear(hidden, classes)`` drawn from
    ``seed``. A student MLP can fit it perfectly, nothing needs downloading, and its hidden
    weights are matrices, the parameters Muon is meant for.
    """
    n_train = checks.integer("n_train", n_train, minimum=1)
    n_test = checks.integer("n_test", n_test, minimum=1)
    dim = checks.integer("dim", dim, minimum=1)
    classes = checks.integer("classes", classes, minimum=2)
    hidden = checks.integer("hidden", hidden, minimum=1)
    gen = torch.Generator().manual_seed(checks.integer("seed", seed))
    W1 = torch.randn(dim, hidden, generator=gen) / math.sqrt(dim)
    W2 = torch.randn(hidden, classes, generator=gen) * (3.0 / math.sqrt(hidden))
    X = torch.randn(n_train + n_test, dim, generator=gen)
    y = (torch.tanh(X @ W1) @ W2).argmax(dim=1)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def with_weight_decay(opt: Optimizer, weight_decay: float) -> Optimizer:
    r"""Return ``opt`` preceded by decoupled weight decay, $x \leftarrow (1 - \eta\lambda) x$.

    For the optimizers that have no ``weight_decay`` of their own (SGD, momentum, Nesterov), so
    that a search over learning rate and weight decay treats them like AdamW; for SGD this is the
    same as an L2 penalty $\frac{\lambda}{2}\|x\|^2$ in the loss.
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"Invalid opt: {opt!r} (expected a d2lkit.optim.Optimizer)")
    decay = checks.nonneg("weight_decay", weight_decay)

    def update(grads, state, params, hp):
        shrink = 1 - hp["lr"] * hp["weight_decay"]
        return opt.update(grads, state, [p * shrink for p in params], hp)

    return Optimizer(opt.name, opt.init, update, {**opt.hp, "weight_decay": decay})
