"""Check that ``train_classifier`` trains each epoch and step at the rate the schedule gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from d2lkit import sched
from d2lkit.data import MinibatchIter
from d2lkit.train import train_classifier

EPOCHS, BATCH, N = 4, 8, 40
STEPS_PER_EPOCH = N // BATCH


class RecordingSGD(torch.optim.SGD):
    """SGD that records the learning rate in force at every ``step()``."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.used: list[float] = []

    def step(self, closure=None):
        self.used.append(self.param_groups[0]["lr"])
        return super().step(closure)


def make_run(initial_lr: float = 1.0, frozen: bool = False):
    """Return ``(net, optimizer, train_iter, test_iter)``: a tiny linear classifier, an SGD that
    records its rates, and 40 random examples in minibatches of 8."""
    torch.manual_seed(0)
    X, y = torch.randn(N, 4), torch.randint(0, 3, (N,))
    net = nn.Linear(4, 3)
    # a frozen net keeps its loss constant: the optimizer then updates a parameter it never uses
    params = [torch.zeros(1, requires_grad=True)] if frozen else net.parameters()
    opt = RecordingSGD(params, lr=initial_lr)
    train_iter = MinibatchIter(X, y, batch_size=BATCH, seed=0)
    test_iter = MinibatchIter(X, y, batch_size=BATCH, shuffle=False)
    return net, opt, train_iter, test_iter


def train(run, **kwargs):
    net, opt, train_iter, test_iter = run
    return train_classifier(net, train_iter, test_iter, EPOCHS, opt,
                            animate=False, verbose=False, **kwargs)


def test_epoch_schedule_sets_rate_before_each_epoch():
    schedule = sched.cosine(0.3, 3, final_lr=0.01, warmup_steps=1)
    run = make_run()
    history = train(run, schedule=schedule)
    drawn = [schedule(epoch) for epoch in range(EPOCHS)]
    assert run[1].used == [lr for lr in drawn for _ in range(STEPS_PER_EPOCH)]
    assert history.lr == drawn
    assert history.step_lr == run[1].used
    assert drawn[0] == 0.0  # the warmup starts at 0, not at the optimizer's initial rate


def test_step_schedule_sets_rate_before_each_step():
    total = EPOCHS * STEPS_PER_EPOCH
    schedule = sched.one_cycle(0.5, total, pct_start=0.3)
    run = make_run()
    history = train(run, schedule=schedule, schedule_unit="step")
    drawn = [schedule(t) for t in range(total)]
    assert run[1].used == drawn
    assert history.step_lr == drawn
    # per epoch, the history reports the rate of the epoch's first step
    assert history.lr == drawn[::STEPS_PER_EPOCH]


def test_torch_scheduler_stepped_per_epoch():
    run = make_run(initial_lr=0.5)
    torch_sched = lr_scheduler.MultiStepLR(run[1], milestones=[1, 3], gamma=0.5)
    history = train(run, schedule=torch_sched)
    drawn = [sched.multistep(0.5, [1, 3], gamma=0.5)(epoch) for epoch in range(EPOCHS)]
    assert run[1].used == [lr for lr in drawn for _ in range(STEPS_PER_EPOCH)]
    assert history.lr == drawn


def test_torch_scheduler_stepped_per_step():
    total = EPOCHS * STEPS_PER_EPOCH
    run = make_run()
    torch_sched = lr_scheduler.OneCycleLR(run[1], max_lr=0.5, total_steps=total,
                                          cycle_momentum=False)
    train(run, schedule=torch_sched, schedule_unit="step")
    expected = [sched.one_cycle(0.5, total)(t) for t in range(total)]
    assert run[1].used == pytest.approx(expected, rel=1e-9)


def test_plateau_scheduler_stepped_once_per_epoch_with_a_loss():
    # the test loss never changes, so with patience 0 every epoch after the first is a plateau
    run = make_run(initial_lr=0.1, frozen=True)
    plateau = lr_scheduler.ReduceLROnPlateau(run[1], factor=0.5, patience=0)
    history = train(run, schedule=plateau)
    assert history.lr == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert len(set(history.test_loss)) == 1
