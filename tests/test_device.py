import random

import numpy as np
import pytest
import torch

from d2lkit import device


def test_set_seed_reproduces_all_generators():
    device.set_seed(3)
    first = (random.random(), np.random.rand(), torch.rand(3))
    device.set_seed(3)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_synchronize_waits_only_for_cuda_devices(monkeypatch):
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    device.synchronize(torch.device("cpu"))
    assert waited == []
    device.synchronize(torch.device("cuda", 1))
    assert waited == [torch.device("cuda", 1)]


def test_set_seed_rejects_negative():
    with pytest.raises(ValueError, match="seed"):
        device.set_seed(-1)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("D2LKIT_PROFILE", "full")
    assert device.profile() == "full"
    assert device.by_profile(quick=1, full=2) == 2
    monkeypatch.setenv("D2LKIT_PROFILE", "quick")
    assert device.by_profile(quick=1, full=2) == 1


def test_profile_default_follows_device(monkeypatch):
    monkeypatch.delenv("D2LKIT_PROFILE", raising=False)
    assert device.profile() == ("full" if torch.cuda.is_available() else "quick")


def test_profile_rejects_unknown(monkeypatch):
    monkeypatch.setenv("D2LKIT_PROFILE", "fast")
    with pytest.raises(ValueError, match="fast"):
        device.profile()


def test_try_gpu_falls_back_to_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.try_gpu().type == expected
    assert device.try_gpu(10_000).type == "cpu"


def test_timer_records_intervals(monkeypatch):
    ticks = iter([1.0, 3.5, 10.0, 11.0])
    monkeypatch.setattr(device.time, "perf_counter", lambda: next(ticks))
    timer = device.Timer()
    assert timer.stop() == 2.5
    timer.start()
    assert timer.stop() == 1.0
    assert timer.times == [2.5, 1.0]
    assert timer.sum() == 3.5 and timer.avg() == 1.75 and timer.cumsum() == [2.5, 3.5]


def test_timer_stop_without_start():
    timer = device.Timer()
    timer.stop()
    with pytest.raises(RuntimeError):
        timer.stop()


def test_matmul_gflops_is_positive():
    assert device.matmul_gflops(64, repeats=2, device=torch.device("cpu")) > 0
