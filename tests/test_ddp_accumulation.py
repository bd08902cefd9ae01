"""no_sync accumulation under DDP (gloo, 2 processes) against one process on the whole batch."""

import pytest
import torch
from torch import nn

from d2lkit.ddp_accumulation import NoSyncTask, big_batch_reference, micro_batches, no_sync_worker
from d2lkit.distributed import launch

WORLD, ACCUM, MICRO, STEPS = 2, 3, 4, 4


def _task():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 2)).double()
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(WORLD * ACCUM * MICRO * STEPS, 6, generator=gen, dtype=torch.float64)
    y = torch.randn(len(X), 2, generator=gen, dtype=torch.float64)
    return NoSyncTask(model, X, y, micro_batch=MICRO, accum_steps=ACCUM, steps=STEPS, lr=0.3)


def test_no_sync_equals_big_batch_with_fewer_allreduces():
    task = _task()
    per_rank = launch(no_sync_worker, WORLD, task)
    reference = big_batch_reference(task, WORLD)
    param_bytes = sum(p.numel() * p.element_size() for p in task.model.parameters())
    for runs in per_rank:
        sync, no_sync = runs
        assert sync.sync_every_micro_batch and not no_sync.sync_every_micro_batch
        for run in runs:
            torch.testing.assert_close(run.params, reference, rtol=0, atol=1e-12)
        assert not torch.equal(reference, torch.cat(
            [p.detach().flatten() for p in task.model.parameters()]))
        assert (sync.comm.allreduces, no_sync.comm.allreduces) == (STEPS * ACCUM, STEPS)
        assert sync.comm.bytes == STEPS * ACCUM * param_bytes
        assert no_sync.comm.bytes == STEPS * param_bytes
    assert torch.equal(per_rank[0][1].params, per_rank[1][1].params)


def test_micro_batches_partition_the_data():
    task = _task()
    rows = [x for step in range(STEPS) for rank in range(WORLD)
            for x, _ in micro_batches(task, step, rank, WORLD)]
    torch.testing.assert_close(torch.cat(rows), task.X)
    with pytest.raises(ValueError, match="steps"):
        micro_batches(task, STEPS, 0, WORLD)


@pytest.mark.parametrize(("field", "value"), [("micro_batch", 0), ("accum_steps", 0),
                                              ("steps", 0), ("lr", -1.0)])
def test_bad_task_raises(field, value):
    kwargs = {"micro_batch": 2, "accum_steps": 2, "steps": 1, "lr": 0.1, field: value}
    with pytest.raises(ValueError, match=field):
        NoSyncTask(nn.Linear(1, 1), torch.zeros(8, 1), torch.zeros(8, 1), **kwargs)
