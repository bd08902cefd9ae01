import os

import pytest
import torch

from d2lkit.memory import peak_memory

MB = 1_000_000


def test_peak_counts_buffers_alive_together():
    def work():
        a = torch.empty(MB // 4)  # 1 MB of float32
        b = torch.empty(MB // 2)  # 2 MB, alive with a
        del a
        c = torch.empty(MB // 8)  # 0.5 MB, alive with b only
        return b, c

    assert peak_memory(work) == 3 * MB


def test_released_buffer_does_not_count_twice():
    def work():
        a = torch.empty(MB)  # 4 MB
        del a
        b = torch.empty(MB)  # 4 MB again, after a was released
        return b

    assert peak_memory(work) == 4 * MB


def test_matmul_output_is_counted():
    x = torch.randn(300, 400, dtype=torch.float64)
    w = torch.randn(400, 200, dtype=torch.float64)
    assert peak_memory(lambda: x @ w) >= 300 * 200 * 8


def test_activation_memory_grows_with_batch():
    net = torch.nn.Sequential(torch.nn.Linear(100, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 1))

    def step(batch):
        def work():
            net(torch.randn(batch, 100)).sum().backward()
        return work

    small, big = peak_memory(step(64)), peak_memory(step(512))
    # the hidden layer alone keeps batch * 1000 float32 values alive until the backward pass
    assert big - small >= (512 - 64) * 1000 * 4


def test_invalid_device():
    with pytest.raises(ValueError, match="Invalid device: meta"):
        peak_memory(lambda: None, "meta")


def test_standard_error_is_restored(capfd):
    peak_memory(lambda: torch.empty(10))
    os.write(2, b"still here")
    assert capfd.readouterr().err == "still here"
