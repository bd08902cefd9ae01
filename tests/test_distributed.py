"""Tests of d2lkit.distributed on real processes (gloo on 127.0.0.1): tiny data, tiny models."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from d2lkit import distributed as D
from d2lkit.distributed.launch import _alive

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


def _hung_worker(rank: int, world_size: int) -> None:
    if rank == 1:
        time.sleep(120)                 # never enters the all-reduce that rank 0 waits in
    dist.all_reduce(torch.ones(3))


def _descendants(root: int) -> list[int]:
    """Return the pids of the living (not zombie) descendants of process ``root``, from /proc."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parent[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, ppid in parent.items() if ppid == pid]
        found += children
        frontier += children
    return found


def _worker_processes() -> list[int]:
    """Return the pids of this process's descendants that are d2lkit workers (by their name)."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("d2lkit-rank"):
                found.append(pid)
        except OSError:
            pass
    return found


def _listening(pid: int | str) -> list[tuple[str, int]]:
    """Return the (address, port) of every TCP socket that process ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:          # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                if table == "tcp":
                    shown = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:
                    words = b"".join(raw[i: i + 4][::-1] for i in range(0, 16, 4))
                    shown = socket.inet_ntop(socket.AF_INET6, words)
                found.append((shown, int(port, 16)))
    return found


def _network_worker(rank: int, world_size: int, launcher: int, outside: str) -> dict:
    """Where this worker and the launcher listen, and whether the store answers from outside."""
    port = int(os.environ["MASTER_PORT"])
    outcome = {}
    for name, host in [("loopback", "127.0.0.1"), ("outside", outside)]:
        try:
            socket.create_connection((host, port), timeout=2).close()
            outcome[name] = "connected"
        except OSError as err:
            outcome[name] = type(err).__name__
    dist.barrier()
    return {"ours": _listening("self"), "launcher": _listening(launcher), "port": port, **outcome}


def _non_loopback_address() -> str | None:
    """Return an IPv4 address of this machine other than 127.x, or None."""
    candidates = set()
    for target in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))       # UDP: no packet is sent, a route is chosen
                candidates.add(probe.getsockname()[0])
            except OSError:
                pass
    with contextlib.suppress(OSError):
        candidates.update(socket.gethostbyname_ex(socket.gethostname())[2])
    outside = sorted(a for a in candidates if not a.startswith("127.") and a != "0.0.0.0")
    return outside[0] if outside else None


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
    handler = signal.getsignal(signal.SIGINT)
    tik = time.monotonic()
    with pytest.raises(D.WorkerError) as info:
        D.launch(_failing_worker, 2)
    assert time.monotonic() - tik < 30
    assert info.value.rank == 1
    assert "ValueError: deliberate failure on rank 1" in str(info.value)
    assert "in _failing_worker" in str(info.value)       # its traceback
    assert _worker_processes() == []
    # torch's agent installs signal handlers and sets a variable: both are undone.
    assert signal.getsignal(signal.SIGINT) is handler
    assert "TORCHELASTIC_SIGNALS_TO_HANDLE" not in os.environ


def test_dying_worker_is_reported_and_leaves_no_process():
    tik = time.monotonic()
    with pytest.raises(D.WorkerError, match=r"^rank 1 (was killed by SIGKILL|died)") as info:
        D.launch(_dying_worker, 2)
    assert time.monotonic() - tik < 30
    assert info.value.rank == 1
    assert _worker_processes() == []


def test_hung_rank_is_named_within_the_progress_timeout():
    tik = time.monotonic()
    with pytest.raises(D.WorkerError, match=r"^rank 1 made no progress for 2 sec") as info:
        D.launch(_hung_worker, 2, progress_timeout=2)
    assert time.monotonic() - tik < 20
    assert info.value.rank == 1
    assert "had entered 0 collective calls while rank(s) [0] had gone further" in str(info.value)
    assert "in _hung_worker" in str(info.value)          # its stack when it was stopped
    assert _worker_processes() == []


def test_store_and_workers_listen_on_loopback_only():
    outside = _non_loopback_address()
    if outside is None:
        pytest.skip("this machine has no IPv4 address other than loopback to try the store on")
    results = D.launch(_network_worker, 2, os.getpid(), outside)
    port = results[0]["port"]
    assert (D.HOST, port) in results[0]["launcher"]       # the store lives in the launcher
    assert results[0]["loopback"] == "connected"
    assert results[0]["outside"] == "ConnectionRefusedError", outside
    for result in results:
        assert result["ours"], "gloo listens for its peers"
        for address, _ in result["ours"] + result["launcher"]:
            assert address.startswith("127.") or address == "::ffff:127.0.0.1", address
    assert _worker_processes() == []


def test_stray_launcher_variables_do_not_reach_the_workers(monkeypatch):
    for name, value in [("RANK", "5"), ("WORLD_SIZE", "9"), ("LOCAL_RANK", "5"),
                        ("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "1")]:
        monkeypatch.setenv(name, value)
    assert D.launch(_rank_and_size, 2) == [(0, 2), (1, 2)]


def _rank_and_size(rank: int, world_size: int) -> tuple[int, int]:
    return dist.get_rank(), dist.get_world_size()


TORCHRUN_ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "x"}


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    [
        ({"RANK": "1", "WORLD_SIZE": "4"}, [],
         ["RANK='1'", "WORLD_SIZE='4'", "TORCHELASTIC_RUN_ID"]),
        ({"MASTER_PORT": "29500"}, ["--nproc", "2"], ["MASTER_PORT='29500'", "torchrun"]),
        ({"TORCHELASTIC_RESTART_COUNT": "0"}, [], ["TORCHELASTIC_RESTART_COUNT='0'"]),
        (TORCHRUN_ENV, ["--nproc", "3"], ["--nproc 3", "LOCAL_WORLD_SIZE='2'"]),
        ({k: v for k, v in TORCHRUN_ENV.items() if k != "MASTER_PORT"}, [],
         ["MASTER_PORT missing"]),
        ({}, ["--json", "/nonexistent-d2lkit-dir/runs.json"], ["--json", "does not exist"]),
        ({}, ["--json", "."], ["is a directory"]),
        ({}, ["--nproc", "0"], ["--nproc 0"]),
    ],
)
def test_command_line_refuses_conflicts_before_training(monkeypatch, capsys, env, argv, named):
    for name in list(os.environ):
        if name in TORCHRUN_ENV or name.startswith("TORCHELASTIC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tik = time.monotonic()
    with pytest.raises(SystemExit) as info:
        D.main(argv)
    assert info.value.code == 2
    assert time.monotonic() - tik < 5                 # before any data is loaded
    err = capsys.readouterr().err
    for text in named:
        assert text in err


def test_command_line_under_torchrun(tmp_path):
    out = tmp_path / "runs.json"
    env = {k: v for k, v in os.environ.items()
           if k not in TORCHRUN_ENV and not k.startswith("TORCHELASTIC_")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "d2lkit.distributed", "--local-steps", "1", "2",
               "--epochs", "1", "--n-train", "256", "--n-test", "100", "--batch-size", "16",
               "--json", str(out)]
    # A session of its own: if it hangs, torchrun and its workers are killed together.
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, start_new_session=True)
    try:
        stdout, stderr = run.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == 0, stderr[-3000:]
    assert "2 workers, gloo" in stdout
    assert [r["config"]["local_steps"] for r in json.loads(out.read_text())] == [1, 2]


LAUNCHER = """
import sys, time
sys.path.insert(0, {directory!r})
from d2lkit.distributed import launch
import sleeper
launch(sleeper.sleep, 2, {directory!r})
"""

SLEEPER = """
import os, time
from pathlib import Path

def sleep(rank, world_size, directory):
    Path(directory, f"{rank}.pid").write_text(str(os.getpid()))
    time.sleep(120)
"""


def test_no_worker_outlives_a_killed_launcher(tmp_path):
    (tmp_path / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    script = LAUNCHER.format(directory=str(tmp_path))
    kernel = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("*.pid"))) < 2:
            assert kernel.poll() is None, "the launcher exited early"
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        workers = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        others = _descendants(kernel.pid)              # the workers and the forkserver
        assert set(workers) <= set(others)
    finally:
        kernel.kill()
        kernel.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in others) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in others if _alive(pid)]


def test_notebook_functions_are_rejected(monkeypatch):
    with pytest.raises(ValueError, match="cannot import"):
        D.launch(lambda rank, world_size: rank, 2)

    def defined_in_a_notebook(rank: int, world_size: int) -> int:
        return rank

    defined_in_a_notebook.__module__ = "__main__"
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))   # no __file__
    with pytest.raises(ValueError, match="defined in this notebook or shell"):
        D.launch(defined_in_a_notebook, 2)


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"world_size": 0}, "Invalid world_size: 0"),
        ({"world_size": 2.0}, "Invalid world_size: 2.0"),
        ({"threads_per_worker": 0}, "Invalid threads_per_worker: 0"),
        ({"progress_timeout": 0}, "Invalid progress_timeout: 0"),
        ({"collective_timeout": float("inf")}, "Invalid collective_timeout: inf"),
        ({"init_timeout": "30"}, "Invalid init_timeout: '30'"),
        ({"start_method": "fork"}, "Invalid start_method: 'fork'"),
    ],
)
def test_launch_validation(kwargs, message):
    kwargs = {"world_size": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        D.launch(_failing_worker, **kwargs)


def test_fit_ring_recovers_the_model():
    alpha, beta, k = 3e-5, 2e9, 4
    sizes = [4**i * 1024 for i in range(8)]
    seconds = [2 * (k - 1) * alpha + D.ring_allreduce_bytes(s, k) / beta for s in sizes]
    fitted = D.fit_ring(sizes, seconds, k)
    assert fitted == pytest.approx((alpha, beta), rel=1e-9)


@pytest.mark.parametrize(("sizes", "seconds", "k", "message"), [
    ([1024, 2048], [1e-3, 5e-4], 2, "do not follow the ring model"),  # more bytes, less time
    ([1024], [1e-3], 2, "Invalid sizes"),
    ([1024, 2048], [1e-3], 2, "Invalid seconds"),
    ([1024, 2048], [1e-3, 2e-3], 1, "Invalid world_size"),
])
def test_fit_ring_refuses_what_is_not_a_ring(sizes, seconds, k, message):
    with pytest.raises(ValueError, match=message):
        D.fit_ring(sizes, seconds, k)


def test_time_allreduce_under_launch():
    sizes = [1024, 4 * 2**20]
    per_rank = D.launch(D.time_allreduce, 2, sizes, 10)
    assert len(per_rank) == 2 and all(len(times) == 2 for times in per_rank)
    assert all(0 < t < 10 for times in per_rank for t in times)
    assert all(small < big for small, big in per_rank)   # 4 MiB takes longer than 1 KiB


def test_time_allreduce_needs_a_process_group():
    with pytest.raises(RuntimeError, match="use launch"):
        D.time_allreduce(0, 1, [1024])


def test_ring_allreduce_bytes():
    assert D.ring_allreduce_bytes(1000, 1) == 0
    assert D.ring_allreduce_bytes(1000, 4) == 1500
    assert D.ring_allreduce_bytes(1000, 2) == 1000
