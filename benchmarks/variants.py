"""What one LeNet step could be, and where the loop spends its time.

``step_variants`` times a training step with other layouts, optimizer kernels, thread counts and
``torch.compile``; ``eval_variants`` times an evaluation pass per batch size and layout;
``profile_loop`` lists the operators that take the time (``torch.profiler``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from benchmarks.loops import seeded_lenet
from d2lkit.device import synchronize
from d2lkit.train import channels_last_view


def _unchanged(X: torch.Tensor) -> torch.Tensor:
    return X


def profile_loop(
    run: Callable[[], Any], device: torch.device, top: int = 10
) -> list[dict[str, float | str]]:
    """Return the ``top`` operators by self time while ``run()`` executes, and the rest summed.

    Each row has the operator, its self time in seconds (device time on a GPU) and its share of
    the total.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        run()
        synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [(e.key, getattr(e, attr) / 1e6) for e in prof.key_averages()]
    events = sorted((e for e in events if e[1] > 0), key=lambda e: -e[1])
    total = sum(t for _, t in events)
    rows = [{"op": k, "self_s": t, "share": t / total} for k, t in events[:top]]
    rest = sum(t for _, t in events[top:])
    rows.append({"op": "(all other operators)", "self_s": rest, "share": rest / total})
    return rows


def _step_fn(
    net: nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
    batch_size: int, prepare: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[int], None]:
    def step(i: int) -> None:
        i %= len(X) // batch_size
        Xb, yb = X[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]
        loss = nn.functional.cross_entropy(net(prepare(Xb)), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def step_variants(
    X: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    batch_size: int = 256,
    steps: int = 20,
    reps: int = 10,
    compile_model: bool = True,
) -> list[dict[str, Any]]:
    """Return the milliseconds per LeNet training step of the variants the loop could use.

    Each variant runs ``steps`` updates ``reps`` times, the variants taking turns, and keeps its
    best time, so a burst of load from elsewhere hurts every variant alike. ``torch.compile``
    also reports its compilation time.
    """

    def make(prepare: Callable[[torch.Tensor], torch.Tensor] = _unchanged, compiled: bool = False,
             reference: bool = False, **sgd: Any) -> Callable[[int], None]:
        net = seeded_lenet(device, reference)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, **sgd)
        model = torch.compile(net) if compiled else net
        return _step_fn(model, optimizer, X, y, batch_size, prepare)

    threads = torch.get_num_threads()
    ours = "d2lkit's step (lenet, channels-last view)"
    variants: dict[str, tuple[Callable[[int], None], dict[str, Any]]] = {
        "seeds' LeNet, NCHW batches": (make(reference=True), {}),
        "seeds' LeNet, channels-last view": (make(channels_last_view, reference=True), {}),
        "d2lkit lenet, NCHW batches": (make(), {}),
        ours: (make(channels_last_view), {}),
        "d2lkit's step, SGD foreach": (make(channels_last_view, foreach=True), {}),
        "d2lkit's step, deterministic algorithms off": (make(channels_last_view),
                                                        {"deterministic": False}),
    }
    if device.type == "cpu":
        variants["d2lkit's step, SGD fused"] = (make(channels_last_view, fused=True), {})
        if threads > 1:
            variants["d2lkit's step, 1 thread"] = (make(channels_last_view), {"threads": 1})
    notes: dict[str, dict[str, Any]] = {}
    if compile_model:
        # Compile from scratch, as a reader's first build would: no kernels cached on disk.
        cache = tempfile.TemporaryDirectory(prefix="d2lkit-inductor-")
        cache_env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
        step = make(channels_last_view, compiled=True)
        tik = time.perf_counter()
        try:
            step(0)
            synchronize(device)
            notes["d2lkit's step, torch.compile"] = {"compile_s": time.perf_counter() - tik}
            variants["d2lkit's step, torch.compile"] = (step, {})
        except Exception as err:  # no C++ compiler, unsupported platform, ...
            notes["d2lkit's step, torch.compile"] = {"error": f"{type(err).__name__}: {err}"[:200]}
    best = dict.fromkeys(variants, float("inf"))
    try:
        for _ in range(reps):
            for name, (step, settings) in variants.items():
                torch.set_num_threads(settings.get("threads", threads))
                torch.use_deterministic_algorithms(settings.get("deterministic", True),
                                                   warn_only=True)
                step(0)
                synchronize(device)
                tik = time.perf_counter()
                for i in range(1, steps + 1):
                    step(i)
                synchronize(device)
                best[name] = min(best[name], (time.perf_counter() - tik) / steps)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if compile_model:
            cache.cleanup()
            if cache_env is None:
                del os.environ["TORCHINDUCTOR_CACHE_DIR"]
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_env
    rows = [{"variant": name, "ms_per_step": 1e3 * t, **notes.get(name, {})}
            for name, t in best.items()]
    for name in notes.keys() - best.keys():  # a variant that failed to compile
        rows.append({"variant": name, "ms_per_step": None, **notes[name]})
    return rows


def eval_variants(
    X: torch.Tensor, y: torch.Tensor, device: torch.device,
    batch_sizes: Sequence[int] = (256, 1000, 2000, 10_000), reps: int = 3,
) -> list[dict[str, Any]]:
    """Return the seconds of one pass over the test set per batch size, NCHW and channels-last."""
    net = seeded_lenet(device).eval()
    cases = [(b, view) for b in batch_sizes for view in (False, True)]
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(reps):
        for b, view in cases:
            synchronize(device)
            tik = time.perf_counter()
            with torch.inference_mode():
                correct = torch.zeros((), dtype=torch.long, device=device)
                for i in range(0, len(X), b):
                    Xb = channels_last_view(X[i:i + b]) if view else X[i:i + b]
                    correct += (net(Xb).argmax(dim=1) == y[i:i + b]).sum()
                int(correct)
            best[(b, view)] = min(best[(b, view)], time.perf_counter() - tik)
    return [{"batch_size": b, "channels_last": view, "s": t} for (b, view), t in best.items()]
