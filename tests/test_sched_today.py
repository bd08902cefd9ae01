"""Check d2lkit.sched.wsd and linear_to_zero against torch.optim.lr_scheduler compositions."""

from __future__ import annotations

import pytest
from test_sched import torch_lrs
from torch.optim import lr_scheduler

from d2lkit import sched


def sequential_wsd(opt, total, decay, warmup, final_factor, begin_factor):
    """SequentialLR of LinearLR (warmup), ConstantLR(factor=1) and LinearLR (cooldown)."""
    parts, milestones = [], []
    if warmup:
        parts.append(lr_scheduler.LinearLR(opt, begin_factor, 1.0, total_iters=warmup))
        milestones.append(warmup)
    parts.append(lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
    milestones.append(total - decay)
    parts.append(lr_scheduler.LinearLR(opt, 1.0, final_factor, total_iters=decay))
    return lr_scheduler.SequentialLR(opt, parts, milestones)


@pytest.mark.parametrize(
    ("total", "decay", "warmup", "final", "begin"),
    [(100, 20, 10, 0.01, 0.05), (60, 30, 5, 0.0, 0.2), (50, 10, 0, 0.1, 0.0),
     (40, 35, 5, 0.0, 0.1)],
)
def test_wsd_matches_sequential_lr(total, decay, warmup, final, begin):
    base = 0.5
    ours = [sched.wsd(base, total, decay, warmup, final, begin)(t) for t in range(total + 10)]
    # torch's LinearLR needs a start factor > 0; a warmup from 0 is compared with LambdaLR below
    ref = torch_lrs(lambda o: sequential_wsd(o, total, decay, warmup, final / base, begin / base),
                    base, total + 10)
    assert ours[:total + 1] == pytest.approx(ref[:total + 1], rel=1e-12, abs=1e-15)
    assert ours[total:] == pytest.approx([final] * 10)  # it stays at final_lr afterwards


@pytest.mark.parametrize(("total", "decay", "warmup"), [(100, 20, 10), (30, 30, 0), (20, 1, 19)])
def test_wsd_matches_lambda_lr(total, decay, warmup):
    base = 0.3
    start = total - decay

    def factor(t):
        if t < warmup:
            return t / warmup
        return 1.0 if t < start else 1.0 - min(t - start, decay) / decay

    ours = [sched.wsd(base, total, decay, warmup)(t) for t in range(total + 5)]
    ref = torch_lrs(lambda o: lr_scheduler.LambdaLR(o, factor), base, total + 5)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert max(ours) == base and ours[-1] == 0.0


def test_linear_to_zero_is_polynomial_without_warmup():
    ours = [sched.linear_to_zero(0.4, 50)(t) for t in range(60)]
    ref = torch_lrs(lambda o: lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=50), 0.4, 60)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert ours == pytest.approx([sched.polynomial(0.4, 50)(t) for t in range(60)])


def test_linear_to_zero_with_warmup():
    s = sched.linear_to_zero(1.0, 20, warmup_steps=5)
    assert [s(t) for t in (0, 5, 10, 20, 25)] == pytest.approx([0.0, 1.0, 2 / 3, 0.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"decay_steps": 0}, ValueError, "decay_steps"),
        ({"decay_steps": 90, "warmup_steps": 20}, ValueError, "decay_steps"),
        ({"decay_steps": 2.0}, TypeError, "decay_steps"),
        ({"decay_steps": 10, "final_lr": 2.0}, ValueError, "final_lr"),
        ({"decay_steps": 10, "warmup_begin_lr": -0.1}, ValueError, "warmup_begin_lr"),
        ({"decay_steps": 10, "base_lr": float("inf")}, ValueError, "base_lr"),
    ],
)
def test_wsd_bad_arguments(kwargs, error, name):
    args = {"base_lr": 1.0, "total_steps": 100, **kwargs}
    with pytest.raises(error, match=f"Invalid {name}"):
        sched.wsd(**args)


def test_wsd_bad_step_and_linear_to_zero_warmup():
    with pytest.raises(ValueError, match="Invalid t"):
        sched.wsd(1.0, 10, 5)(-1)
    with pytest.raises(ValueError, match="Invalid warmup_steps"):
        sched.linear_to_zero(1.0, 10, warmup_steps=10)
