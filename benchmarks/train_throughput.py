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
the same process, taking turns epoch by epoch. The loops are in ``benchmarks.loops``, the FLOP
count in ``benchmarks.flops``, the per-step variants and the profile in ``benchmarks.variants``.

Run from the repository root::

    python -m benchmarks.train_throughput            # CPU, or the GPU when there is one
    python -m benchmarks.train_throughput --epochs 1 --n-train 2560 --n-test 512   # smoke test
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

import d2lkit
from benchmarks.flops import model_flops
from benchmarks.loops import (
    LoopTiming,
    PerItemDataset,
    TorchvisionLikeDataset,
    d2lkit_loop,
    interleave,
    seeded_lenet,
    seeds_loop,
)
from benchmarks.machine import format_load, load_average, machine_info
from benchmarks.variants import eval_variants, profile_loop, step_variants
from d2lkit import data, models
from d2lkit.device import matmul_gflops
from d2lkit.report import format_table
from d2lkit.train import train_classifier


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
