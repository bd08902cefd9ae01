"""Checks of the benchmark helpers (no timing here: the benchmarks themselves run on demand)."""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import pytest
import torch
from conftest import myst_notebook
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks are scripts of the repository, not installed

from benchmarks import build, flops, full_profile, loops, run  # noqa: E402
from d2lkit import data, models, train  # noqa: E402


def _counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("make", [models.lenet, lambda: nn.Sequential(
    nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))])
def test_model_flops_match_torch_flop_counter(make):
    net = make()
    X, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    forward, training = flops.model_flops(net)
    assert forward * 4 == _counted(lambda: net(X))
    assert training * 4 == _counted(
        lambda: nn.functional.cross_entropy(net(X), y).backward())


def test_lenet_flops_by_hand():
    # 2 x multiply-adds: conv 6x28x28 outputs of 1x5x5, conv 16x10x10 of 6x5x5, then 400-120-84-10
    conv = 2 * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150)
    linear = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    forward, training = flops.model_flops(models.lenet())
    assert forward == conv + linear
    assert training == 3 * forward - 2 * 6 * 28 * 28 * 25


def test_per_item_dataset_batches_are_the_tensor_slices():
    X, y = torch.randn(10, 1, 28, 28), torch.arange(10)
    loader = DataLoader(loops.PerItemDataset(X, y), batch_size=4, shuffle=False)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(batches[1][0], X[4:8]) and torch.equal(batches[1][1], y[4:8])
    assert batches[0][1].dtype == torch.int64


def test_torchvision_like_items_equal_the_tensors():
    X, y = data.fashion_mnist(True, n=5)
    dataset = loops.TorchvisionLikeDataset(X, y)
    for i in range(5):
        image, label = dataset[i]
        assert torch.equal(image, X[i]) and label == int(y[i])


def test_channels_last_view_is_the_same_batch_in_nhwc_strides():
    X = torch.rand(6, 1, 28, 28)
    batch = X[2:5]
    view = train.channels_last_view(batch)
    assert view.data_ptr() == batch.data_ptr() and torch.equal(view, batch)
    assert view.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(view.reshape(3, -1), batch.reshape(3, -1))
    net = models.lenet()
    with torch.no_grad():
        torch.testing.assert_close(net(view), net(batch))
    for other in (torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8).transpose(2, 3),
                  torch.rand(4, 784)):
        assert train.channels_last_view(other) is other


def test_seeds_loop_computes_what_train_classifier_computes():
    """Fed the same minibatches from the same weights, both loops end with the same network."""
    X, y = data.fashion_mnist(True, n=96)
    Xt, yt = data.fashion_mnist(False, n=40)
    cpu = torch.device("cpu")
    nets = []
    for loop in (loops.seeds_loop, loops.d2lkit_loop):
        torch.manual_seed(0)
        net = models.lenet()
        if loop is loops.seeds_loop:
            net = models.reference_order(net)
        timing = loop(net, data.MinibatchIter(X, y, batch_size=32, seed=3),
                      data.MinibatchIter(Xt, yt, batch_size=16, shuffle=False), 2,
                      torch.optim.SGD(net.parameters(), lr=0.1), cpu)
        assert timing.epochs == 2 and timing.epoch_s == pytest.approx(
            timing.train_s + timing.eval_s)
        nets.append((net, timing.test_acc))
    # d2lkit hands the images over in channels-last strides: other kernels, other rounding
    for p, q in zip(nets[0][0].parameters(), nets[1][0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)
    with torch.no_grad():
        for net, acc in nets:
            assert acc == int((net(Xt).argmax(1) == yt).sum()) / len(yt)


def test_interleave_takes_turns_and_averages():
    calls = []

    def loop(name, seconds):
        def one_epoch():
            calls.append(name)
            t = seconds[len([c for c in calls if c == name]) - 1]
            return loops.LoopTiming(name, 1, t, t - 0.5, 0.5, len(calls) / 10)
        return one_epoch

    a, b = loops.interleave({"a": loop("a", [1.0, 3.0]), "b": loop("b", [2.0, 2.5])}, 2)
    assert calls == ["a", "b", "a", "b"]
    assert (a.epoch_s, a.train_s, a.eval_s, a.test_acc) == (2.0, 1.5, 0.5, 0.3)
    assert (b.epochs, b.epoch_s, b.epoch_times, b.test_acc) == (2, 2.25, [2.0, 2.5], 0.4)


def test_edit_last_code_cell_changes_only_that_cell(tmp_path):
    chapter = tmp_path / "c.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n"
        "\n# C\n\n```{code-cell} ipython3\nx = 1\n```\n\nText with ``` inline.\n\n"
        "```{code-cell} ipython3\n:tags: [hide-input]\nprint(x)\n```\n\nEnd.\n")
    before = jupytext.read(chapter)
    build.edit_last_code_cell(chapter, "# touched")
    after = jupytext.read(chapter)
    assert [c.source for c in after.cells[:-2]] == [c.source for c in before.cells[:-2]]
    code = [c for c in after.cells if c.cell_type == "code"]
    assert code[0].source == "x = 1"
    assert code[1].source == "print(x)\n# touched"
    assert code[1].metadata == {"tags": ["hide-input"]}


def test_edit_needs_a_code_cell(tmp_path):
    chapter = tmp_path / "c.md"
    chapter.write_text("# No code\n")
    with pytest.raises(ValueError, match="No code cell"):
        build.edit_last_code_cell(chapter)


def test_executed_between_sees_new_and_re_run_pages():
    before = {"a": {"mtime": 1.0}, "b": {"mtime": 2.0}}
    after = {"a": {"mtime": 1.0}, "b": {"mtime": 5.0}, "c": {"mtime": 6.0}}
    assert build.executed_between(before, after) == ["b", "c"]
    assert build.executed_between(after, after) == []
    assert build.median_chapter({"a": {"runtime": 3.0}, "b": {"runtime": 1.0},
                                 "c": {"runtime": 2.0}}) == "c"


def test_targets_compare_with_the_limits():
    results = {
        "build": {"cold_s": 359.0, "noop_s": 31.0, "execution_s": 100.0,
                  "nbval": {"s": 110.0}},
        "train": {"speedup": 2.4},
    }
    met = {t["what"]: t["met"] for t in run.targets(results)}
    assert met == {
        "cold build, quick profile": True,
        "rebuild with no change": False,
        "nbval / build execution time": True,
        "LeNet epoch, d2lkit vs seeds' loop (CPU)": False,
        "cold build, full profile (2-core CPU)": None,
        "cold build, full profile (GPU)": None,
    }
    results["train"]["speedup"] = 2.5
    assert all(t["met"] for t in run.targets(results) if t["unit"] == "x")


def test_a_full_build_counts_for_the_target_of_its_device():
    for device, cold_s, met in (("cpu", 1199.0, (True, None)), ("cuda", 599.0, (None, True)),
                                ("cuda", 601.0, (None, False))):
        results = {"build_full": {"date": "2026-11-23 04:30", "cold_s": cold_s,
                                  "machine": {"device": device}}}
        cpu, gpu = run.targets(results)
        assert (cpu["what"], gpu["what"]) == ("cold build, full profile (2-core CPU)",
                                              "cold build, full profile (GPU)")
        assert (cpu["met"], gpu["met"]) == met
    assert "not measured" in run.format_targets(run.targets({}))


def test_the_latest_full_build_counts_whichever_command_made_it():
    results = {"build_full": {"date": "2026-11-23 04:30", "cold_s": 900.0,
                              "machine": {"device": "cpu"}},
               "publish_full": {"date": "2026-11-30 12:21", "steps": {"build": 1250.0},
                                "machine": {"device": "cpu"}}}
    assert run.latest_full_build(results, "cpu") == 1250.0
    results["build_full"]["date"] = "2026-12-01 09:00"
    assert run.latest_full_build(results, "cpu") == 900.0
    assert run.latest_full_build(results, "cuda") is None


GLUING_CODE = """\
from myst_nb import glue
import d2lkit
glue("profile", d2lkit.profile(), display=False)
glue("acc", {"constant": 0.882, "cosine": [0.5, 0.9]}, display=False)
glue("shown", 3)"""


def test_full_profile_records_what_the_chapter_glued_in_that_profile(tmp_path):
    page = tmp_path / "chapter.md"
    page.write_text(myst_notebook("Glue", GLUING_CODE))
    result = full_profile.record(page)
    assert result["chapter"] == "chapter" and result["profile"] == "full"
    assert result["values"] == {"profile": "full", "shown": 3,
                                "acc": {"constant": 0.882, "cosine": [0.5, 0.9]}}
