"""Tests of d2lkit.distributed on real processes (gloo on 127.0.0.1): tiny data, tiny models."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from d2lkit import distributed as D

K = 3          # an odd number of workers, so that the sampler pads the shards
N = 50         # examples: 17 per worker after padding, so 4 batches of 4 and one example left
BATCH = 4
EPOCHS = 2
LR = 0.5


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(N, 5, generator=gen)
    y = (X[:, :3] + 0.5 * torch.randn(N, 3, generator=gen)).argmax(dim=1)
    return X, y


def _model() -> nn.Module:
    torch.manual_seed(2)
    return nn.Linear(5, 3)


def _configs() -> list[D.LocalSGDConfig]:
    common = {"lr": LR, "batch_size": BATCH, "epochs": EPOCHS, "eval_every": 1}
    return [
        D.LocalSGDConfig(local_steps=1, **common),
        D.LocalSGDConfig(synchronous=True, **common),
        D.LocalSGDConfig(local_steps=2, warmup_steps=3, momentum=0.5, **common),
        D.LocalSGDConfig(local_steps=2, warmup_steps=3, momentum=0.5, engine="torch", **common),
        D.LocalSGDConfig(local_steps=3, outer_lr=0.7, outer_momentum=0.9, nesterov=True, **common),
    ]


def _gathered_equal(flat: torch.Tensor) -> bool:
    copies = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(copies, flat)
    return all(torch.equal(copies[0], c) for c in copies[1:])


def _round_checks(rank: int) -> list[tuple[int, bool, bool]]:
    """Run LocalSGD with outer Nesterov momentum; after each step, are all ranks' models equal?"""
    model = _model()
    X, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    local = D.LocalSGD(model.parameters(), 3, warmup_steps=2, outer_lr=0.7, outer_momentum=0.9,
                       nesterov=True)
    checks = []
    for step in range(10):
        rows = torch.arange(rank * 4 + step, N, 7)[:4]    # different data on every rank
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
        local.synchronize_gradients()
        opt.step()
        averaged = local.step()
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        checks.append((step + 1, averaged, _gathered_equal(flat)))
    return checks


def _fixture_worker(rank: int, world_size: int, task: D.LocalSGDTask) -> dict:
    return {
        "runs": D.local_sgd_worker(rank, world_size, task),
        "rounds": _round_checks(rank),
        "comm": Path("/proc/self/comm").read_text().strip(),
        "threads": torch.get_num_threads(),
    }


def _failing_worker(rank: int, world_size: int) -> None:
    if rank == 1:
        raise ValueError("deliberate failure on rank 1")
    dist.all_reduce(torch.ones(3))      # waits for rank 1, which never comes


def _dying_worker(rank: int, world_size: int) -> None:
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(torch.ones(3))


def _worker_processes() -> list[int]:
    """Return the pids of this process's descendants that are d2lkit workers (by their name)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid:
                frontier.append(child)
                try:
                    if (Path("/proc") / str(child) / "comm").read_text().startswith("d2lkit-rank"):
                        found.append(child)
                except OSError:
                    pass
    return found


@pytest.fixture(scope="module")
def results() -> list[dict]:
    X, y = _data()
    task = D.LocalSGDTask(_model(), (X, y), (X, y), _configs())
    return D.launch(_fixture_worker, K, task)


def _union_batch_sgd() -> torch.Tensor:
    """Single-process SGD whose every step uses the union of the K workers' minibatches."""
    X, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    samplers = [DistributedSampler(range(N), K, r, shuffle=True, seed=0) for r in range(K)]
    for epoch in range(EPOCHS):
        shards = []
        for s in samplers:
            s.set_epoch(epoch)
            shards.append(torch.tensor(list(s)))
        for i in range(len(shards[0]) // BATCH):
            rows = torch.cat([shard[i * BATCH: (i + 1) * BATCH] for shard in shards])
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
            opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_local_sgd_h1_equals_synchronous_sgd_on_the_union_batch(results):
    reference = _union_batch_sgd()
    local_h1, synchronous = results[0]["runs"][0], results[0]["runs"][1]
    assert local_h1.steps[-1] == synchronous.steps[-1] == EPOCHS * 4
    torch.testing.assert_close(local_h1.final_params, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(synchronous.final_params, reference, rtol=0, atol=1e-6)
    assert not torch.equal(reference, torch.cat([p.reshape(-1) for p in _model().parameters()]))


def test_post_local_sgd_matches_torch_implementation(results):
    ours, theirs = results[0]["runs"][2], results[0]["runs"][3]
    torch.testing.assert_close(ours.final_params, theirs.final_params, rtol=0, atol=1e-6)
    assert ours.rounds == theirs.rounds


def test_parameters_identical_across_ranks_after_each_averaging(results):
    for rank_result in results[1:]:
        for ours, theirs in zip(results[0]["runs"], rank_result["runs"]):
            assert torch.equal(ours.final_params, theirs.final_params), ours.config.label
            assert ours.test_acc == theirs.test_acc
    checks = results[0]["rounds"]
    # Warm-up (steps 1-2) keeps the models equal; then they differ until every third step.
    assert [averaged for _, averaged, _ in checks] == [s > 2 and (s - 2) % 3 == 0 for s in
                                                       range(1, 11)]
    assert [equal for _, _, equal in checks] == [s <= 2 or (s - 2) % 3 == 0 for s in range(1, 11)]


def test_rounds_and_bytes_follow_the_schedule(results):
    num_bytes = 4 * (5 * 3 + 3)
    # 8 steps: H=1 and synchronous SGD communicate at every step; post-local SGD 3 warm-up steps,
    # then after steps 5 and 7 and a last partial round; H=3 after steps 3 and 6 and at the end.
    for run, rounds in zip(results[0]["runs"], [8, 8, 6, 6, 3]):
        assert run.rounds[-1] == rounds, run.config.label
        assert run.payload_bytes[-1] == rounds * num_bytes
        assert run.sent_bytes[-1] == pytest.approx(rounds * num_bytes * 2 * (K - 1) / K)
        assert run.examples[-1] == 8 * BATCH * K


def test_evaluations_happen_on_synchronized_models(results):
    run = results[0]["runs"][4]       # H=3: synchronized after steps 3, 6 and 8 (the end)
    assert run.steps == [0, 3, 6, 8]
    assert run.rounds == [0, 1, 2, 3]
    assert all(0.0 <= a <= 1.0 for a in run.test_acc)
    assert run.train_time == sorted(run.train_time)


def test_workers_are_named_and_single_threaded(results):
    assert [r["comm"] for r in results] == [f"d2lkit-rank{r}" for r in range(K)]
    assert [r["threads"] for r in results] == [1] * K


def test_failing_worker_raises_with_its_rank_and_error_and_leaves_no_process():
    tik = time.monotonic()
    with pytest.raises(D.WorkerError) as info:
        D.launch(_failing_worker, 2)
    assert time.monotonic() - tik < 30
    assert info.value.rank == 1
    assert "ValueError: deliberate failure on rank 1" in str(info.value)
    assert _worker_processes() == []


def test_dying_worker_is_reported_and_leaves_no_process():
    with pytest.raises(D.WorkerError, match="rank 1 was killed by SIGKILL") as info:
        D.launch(_dying_worker, 2)
    assert info.value.rank == 1
    assert _worker_processes() == []


def test_busy_port_fails_fast():
    with socket.socket() as busy:
        busy.bind((D.HOST, 0))
        busy.listen()
        tik = time.monotonic()
        with pytest.raises(RuntimeError, match="in use"):
            D.launch(_failing_worker, 2, port=busy.getsockname()[1])
        assert time.monotonic() - tik < 10
    assert _worker_processes() == []


def test_notebook_functions_are_rejected():
    with pytest.raises(ValueError, match="cannot import"):
        D.launch(lambda rank, world_size: rank, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, "Invalid learning rate: -0.1"),
        ({"local_steps": 0}, "Invalid number of local steps: 0"),
        ({"warmup_steps": -1}, "Invalid number of warm-up steps: -1"),
        ({"outer_momentum": 1.0}, "Invalid outer momentum: 1.0"),
        ({"outer_lr": 0.0}, "Invalid outer learning rate: 0.0"),
        ({"nesterov": True}, "Nesterov outer momentum needs"),
        ({"synchronous": True, "local_steps": 4}, "Synchronous SGD needs"),
        ({"synchronous": True, "outer_momentum": 0.5}, "Synchronous SGD needs"),
        ({"engine": "torch", "outer_momentum": 0.9}, "torch engine needs"),
        ({"engine": "jax"}, "Invalid engine: 'jax'"),
        ({"batch_size": 0}, "Invalid batch size: 0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        D.LocalSGDConfig(**kwargs)


def test_local_sgd_validation():
    with pytest.raises(ValueError, match="Invalid number of local steps: 0"):
        D.LocalSGD([torch.zeros(2)], 0)
    with pytest.raises(ValueError, match=re.escape("Invalid outer momentum: -0.5")):
        D.LocalSGD([torch.zeros(2)], 4, outer_momentum=-0.5)


def test_launch_validation():
    with pytest.raises(ValueError, match="Invalid world size: 0"):
        D.launch(_failing_worker, 0)
    with pytest.raises(ValueError, match="Invalid start method"):
        D.launch(_failing_worker, 2, start_method="fork")


def test_ring_allreduce_bytes():
    assert D.ring_allreduce_bytes(1000, 1) == 0
    assert D.ring_allreduce_bytes(1000, 4) == 1500
    assert D.ring_allreduce_bytes(1000, 2) == 1000
