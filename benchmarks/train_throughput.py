"""LeNet on Fashion-MNIST: d2lkit's training loop against the seeds' loop, side by side.

The seeds train with a ``torch.utils.data.DataLoader`` over torchvision's per-item Fashion-MNIST
data set, which turns every image from bytes into a PIL image and back into a float tensor with
``ToTensor`` (four worker processes, minibatches of 256, reshuffled each epoch); torchvision is
not a dependency of this book, so ``TorchvisionLikeDataset`` repeats that per-item work. They
copy each minibatch to the device, read
the loss and the number of correct predictions back to the host after every update, log a point
every 50 minibatches and evaluate on the test set through a second four-worker ``DataLoader``
after every epoch. d2lkit's ``train_classifier`` trains on tensors that already sit on the
device (``MinibatchIter``), keeps its running sums on the device, evaluates under
``torch.inference_mode`` and hands single-channel images to the network as a channels-last view.
All loops start from the same initial weights (same seed) and run the same number of epochs in
the same process, taking turns epoch by epoch.

Run from the repository root::

    python -m benchmarks.train_throughput            # CPU, or the GPU when there is one
    python -m benchmarks.train_throughput --epochs 1 --n-train 2560 --n-test 512   # smoke test
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import d2lkit
from benchmarks.machine import format_load, load_average, machine_info
from d2lkit import data, models
from d2lkit.device import matmul_gflops, synchronize
from d2lkit.plot import Animator
from d2lkit.report import format_table
from d2lkit.train import channels_last_view, train_classifier

INPUT_SHAPE = (1, 28, 28)
LOG_EVERY = 50  # the seeds log the running loss and accuracy every 50 minibatches


# ----------------------------------------------------------------------------- FLOPs


def layer_flops(net: nn.Module, input_shape: Sequence[int] = INPUT_SHAPE) -> list[tuple[str, int]]:
    """Return the forward FLOPs per example (2 per multiply-add) of each conv and linear layer."""
    counts: list[tuple[str, int]] = []

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kh * kw
            counts.append((name_of[module], 2 * output[0].numel() * per_output))
        else:
            counts.append((name_of[module], 2 * module.in_features * module.out_features))

    name_of = {m: n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    handles = [m.register_forward_hook(hook) for m in name_of]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return counts


def model_flops(net: nn.Module, input_shape: Sequence[int] = INPUT_SHAPE) -> tuple[int, int]:
    """Return the (forward, training) FLOPs per example of a feed-forward conv/linear network.

    A training step runs the forward pass, then for every layer the gradient with respect to its
    weights and the gradient with respect to its input, each as costly as the layer's forward
    pass; the first layer skips the input gradient, since the data need none.
    """
    layers = layer_flops(net, input_shape)
    forward = sum(f for _, f in layers)
    return forward, 3 * forward - layers[0][1]


# ----------------------------------------------------------------------------- the loops


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


def _unchanged(X: torch.Tensor) -> torch.Tensor:
    return X


# ----------------------------------------------------------------------------- profile


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


# ----------------------------------------------------------------------------- ablations


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


# ----------------------------------------------------------------------------- the benchmark


def measure(
    epochs: int = 3,
    n_train: int = 60_000,
    n_test: int = 10_000,
    device: torch.device | None = None,
    batch_size: int = 256,
    lr: float = 0.3,
    workers: int = 4,
    test_batch_size: int = 1_000,
    variants: bool = True,
    profile_batches: int = 40,
) -> dict[str, Any]:
    """Run the loops in turns, epoch by epoch, on the same data and seed; return the results.

    The loops: the seeds' loop, with torchvision's per-item PIL conversion as in the seeds;
    ``variants`` adds the same loop over a per-item data set of ready float tensors, the seeds'
    loop body over in-memory batches, and the per-step and evaluation variants of
    ``step_variants`` and ``eval_variants``. Then d2lkit's loop. ``speedup`` compares d2lkit's
    loop with the first, the seeds' loop.
    """
    device = device or d2lkit.try_gpu()
    load_before = load_average()
    date = time.strftime("%Y-%m-%d %H:%M")
    peak_before = _peak(device)
    X_train, y_train = data.fashion_mnist(True, n=n_train)
    X_test, y_test = data.fashion_mnist(False, n=n_test)
    on_device = [t.to(device) for t in (X_train, y_train, X_test, y_test)]

    def fresh(reference: bool = False) -> tuple[nn.Module, torch.optim.Optimizer]:
        net = seeded_lenet(device, reference)
        return net, torch.optim.SGD(net.parameters(), lr=lr)

    def loaders(dataset: type[PerItemDataset]) -> tuple[DataLoader, DataLoader]:
        return (DataLoader(dataset(X_train, y_train), batch_size, shuffle=True,
                           num_workers=workers),
                DataLoader(dataset(X_test, y_test), batch_size, shuffle=False,
                           num_workers=workers))

    def one_epoch(loop: Callable[..., LoopTiming], batches: tuple[Any, Any], name: str,
                  reference: bool = False) -> Callable[[], LoopTiming]:
        net, optimizer = fresh(reference)
        return lambda: loop(net, *batches, 1, optimizer, device, name=name)

    def d2lkit_batches() -> tuple[data.MinibatchIter, data.MinibatchIter]:
        return (data.MinibatchIter(*on_device[:2], batch_size=batch_size),
                data.MinibatchIter(*on_device[2:], batch_size=test_batch_size, shuffle=False))

    # The seeds' loops train the seeds' LeNet (ReLU before pooling), d2lkit's its own lenet().
    loops = {"seeds": one_epoch(seeds_loop, loaders(TorchvisionLikeDataset),
                                f"seeds' loop (torchvision-style items, {workers} workers)", True)}
    if variants:
        loops["tensor items"] = one_epoch(
            seeds_loop, loaders(PerItemDataset),
            f"seeds' loop, float-tensor items ({workers} workers)", True)
        loops["in-memory"] = one_epoch(seeds_loop, (
            data.MinibatchIter(*on_device[:2], batch_size=batch_size),
            data.MinibatchIter(*on_device[2:], batch_size=batch_size, shuffle=False)),
            "seeds' loop body, in-memory batches", True)
        loops["reference"] = one_epoch(d2lkit_loop, d2lkit_batches(),
                                       "d2lkit train_classifier, seeds' layer order", True)
    loops["d2lkit"] = one_epoch(d2lkit_loop, d2lkit_batches(), "d2lkit train_classifier")
    timings = interleave(loops, epochs)

    forward, training = model_flops(models.lenet())
    peak = max(peak_before, _peak(device))  # the better of two tries, in case of a busy spell
    ours = timings[-1]
    work = n_train * training + n_test * forward  # FLOPs of one epoch with its evaluation
    results: dict[str, Any] = {
        "date": date,
        "machine": machine_info(device),
        "setup": dict(epochs=epochs, n_train=n_train, n_test=n_test, batch_size=batch_size,
                      lr=lr, workers=workers, test_batch_size=test_batch_size),
        "loops": [asdict(t) for t in timings],
        "speedup": timings[0].epoch_s / ours.epoch_s,
        "speedups": {t.name: t.epoch_s / ours.epoch_s for t in timings},
        "flops_per_example": {"forward": forward, "training": training},
        "peak_gflops": peak,
        "achieved_gflops": {t.name: work / t.epoch_s / 1e9 for t in timings},
        "achieved_train_gflops": n_train * training / ours.train_s / 1e9,
        "floor_epoch_s": work / (peak * 1e9),
    }
    if variants:
        results["step_variants"] = step_variants(on_device[0], on_device[1], device,
                                                 batch_size)
        results["eval_variants"] = eval_variants(on_device[2], on_device[3], device)
    if profile_batches:
        n = min(n_train, profile_batches * batch_size)
        net, optimizer = fresh()
        sub_train = data.MinibatchIter(on_device[0][:n], on_device[1][:n], batch_size=batch_size)
        sub_test = data.MinibatchIter(on_device[2], on_device[3], batch_size=test_batch_size,
                                      shuffle=False)
        results["profile_setup"] = {"train_batches": n // batch_size, "test_examples": n_test}
        results["profile"] = profile_loop(
            lambda: train_classifier(net, sub_train, sub_test, 1, optimizer, animate=False,
                                     verbose=False), device)
    results["load_average"] = [load_before, load_average()]
    return results


def _peak(device: torch.device) -> float:
    return matmul_gflops(n=2048 if device.type == "cpu" else 8192, repeats=10, device=device)


def report(results: dict[str, Any]) -> str:
    """Return the results as plain-text tables."""
    peak, machine, setup = results["peak_gflops"], results["machine"], results["setup"]
    rows = [[t["name"], f"{t['epoch_s']:.2f}", f"{t['train_s']:.2f}", f"{t['eval_s']:.2f}",
             f"{results['speedups'][t['name']]:.2f}x",
             f"{results['achieved_gflops'][t['name']]:.1f}",
             f"{100 * results['achieved_gflops'][t['name']] / peak:.1f}%", f"{t['test_acc']:.3f}"]
            for t in results["loops"]]
    lines = [
        f"LeNet / Fashion-MNIST, {setup['epochs']} epochs of {setup['n_train']} examples, "
        f"{setup['n_test']} test examples, batch {setup['batch_size']}, on {machine['device']} "
        f"({machine['cpu']}, {machine['torch_threads']} torch threads"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
        + f"), {results['date']}, load average {format_load(results['load_average'])}",
        format_table(rows, ["loop", "s/epoch", "train s", "eval s", "d2lkit faster by",
                            "GFLOP/s", "of peak", "test acc"]),
        f"d2lkit's loop against the seeds' loop: {results['speedup']:.2f}x faster",
        f"matmul peak {peak:.1f} GFLOP/s; LeNet {results['flops_per_example']['training']:,} "
        f"training and {results['flops_per_example']['forward']:,} forward FLOPs per example; "
        f"an epoch at peak would take {results['floor_epoch_s']:.2f} s",
    ]
    if "step_variants" in results:
        rows = [[v["variant"], "-" if v["ms_per_step"] is None else f"{v['ms_per_step']:.2f}",
                 f"compilation {v['compile_s']:.1f} s" if "compile_s" in v else v.get("error", "")]
                for v in results["step_variants"]]
        lines += ["one training step (batch 256), best of several runs:",
                  format_table(rows, ["variant", "ms/step", ""])]
        rows = [[v["batch_size"], "channels-last" if v["channels_last"] else "NCHW",
                 f"{v['s']:.3f}"] for v in results["eval_variants"]]
        lines += ["one evaluation pass over the test set:",
                  format_table(rows, ["batch", "layout", "s"])]
    if "profile" in results:
        rows = [[p["op"], f"{p['self_s']:.3f}", f"{100 * p['share']:.1f}%"]
                for p in results["profile"]]
        lines += ["where d2lkit's loop spends its time (torch.profiler, self time):",
                  format_table(rows, ["operator", "self s", "share"])]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the command line, run the benchmark, print the table and return the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=60_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--test-batch-size", type=int, default=1_000)
    parser.add_argument("--no-variants", action="store_true",
                        help="time only the seeds' loop and d2lkit's loop")
    parser.add_argument("--profile-batches", type=int, default=40)
    args = parser.parse_args(argv)
    device = d2lkit.try_gpu() if args.device == "auto" else torch.device(args.device)
    results = measure(args.epochs, args.n_train, args.n_test, device, workers=args.workers,
                      test_batch_size=args.test_batch_size, variants=not args.no_variants,
                      profile_batches=args.profile_batches)
    print(report(results))
    return results


if __name__ == "__main__":
    main()
