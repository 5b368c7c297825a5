"""Chunking (explainers.batching): a fixed size per kind of device, capped by the measured memory footprint."""
import threading

import pytest
import torch

from explainers import batching
from explainers.batching import chunk_size, run_in_chunks


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


def fwd_bwd(model, x, seen):
    def work(start, stop):
        points = x.expand(stop - start, -1, -1, -1).clone().requires_grad_(True)
        torch.autograd.grad(model(points)[:, 0].sum(), points)
        seen.append((start, stop))
    return work


def test_first_chunk_measures_one_sample_then_chunks_take_the_fixed_size():
    model, x, seen = Net(), torch.randn(1, 3, 16, 16), []
    sizes = run_in_chunks(model, x, 30, fwd_bwd(model, x, seen))
    assert sizes == [1, 8, 8, 8, 5] and sum(sizes) == 30
    assert seen == [(0, 1), (1, 9), (9, 17), (17, 25), (25, 30)]  # every index once, in order
    footprint = batching.known_bytes_per_sample(model, x)
    # the convolution saves its 3×16×16 input and the ReLU its 4×16×16 output, float32, per sample
    assert footprint is not None and footprint >= (3 + 4) * 16 * 16 * 4
    assert run_in_chunks(model, x, 30, fwd_bwd(model, x, [])) == [8, 8, 8, 6]  # known now: no probe
    assert batching.known_bytes_per_sample(model, torch.randn(1, 3, 8, 8)) is None  # per input shape


def test_memory_budget_caps_every_chunk(monkeypatch):
    monkeypatch.setattr(batching, "memory_budget", lambda device: 2.5 * 1000)
    assert chunk_size(torch.device("cpu"), 1000.0) == 2
    assert chunk_size(torch.device("cpu"), 1e9) == 1  # even a sample over budget runs, alone
    assert chunk_size(torch.device("cpu"), None) == 1  # unknown footprint: one sample, measured
    monkeypatch.setattr(batching, "memory_budget", lambda device: 1e12)
    assert chunk_size(torch.device("cpu"), 1000.0) == batching.CPU_CHUNK
    assert chunk_size(torch.device("meta"), 1000.0) == batching.ACCELERATOR_CHUNK


def test_fixed_batch_size_is_validated_and_obeyed_within_the_budget(monkeypatch):
    model, x = Net(), torch.randn(1, 3, 8, 8)
    assert run_in_chunks(model, x, 10, fwd_bwd(model, x, []), batch_size=4) == [1, 4, 4, 1]  # measured first
    assert run_in_chunks(model, x, 10, fwd_bwd(model, x, []), batch_size=4) == [4, 4, 2]
    footprint = batching.known_bytes_per_sample(model, x)
    monkeypatch.setattr(batching, "memory_budget", lambda device: 3.5 * footprint)
    assert run_in_chunks(model, x, 10, fwd_bwd(model, x, []), batch_size=8) == [3, 3, 3, 1]  # the budget wins
    for bad in (0, True, "4", 2.5, batching.MAX_CHUNK + 1):
        with pytest.raises(ValueError, match="batch_size"):
            run_in_chunks(model, x, 10, fwd_bwd(model, x, []), batch_size=bad)


def test_progress_after_every_chunk():
    model, x, reports = Net(), torch.randn(1, 3, 8, 8), []
    run_in_chunks(model, x, 20, fwd_bwd(model, x, []), progress=lambda f, stage: reports.append((f, stage)),
                  stage="testing")
    assert [f for f, _ in reports] == pytest.approx([1 / 20, 9 / 20, 17 / 20, 1.0])
    assert [stage for _, stage in reports] == [f"testing {round(f * 20)} / 20" for f, _ in reports]


def test_the_footprint_counter_sees_only_its_own_thread():
    model, x = Net(), torch.randn(1, 3, 16, 16)
    other, stop = Net(), threading.Event()
    big = torch.randn(64, 3, 16, 16)

    def busy():  # another thread saving activations all the while must not inflate this thread's count
        while not stop.is_set():
            points = big.clone().requires_grad_(True)
            torch.autograd.grad(other(points)[:, 0].sum(), points)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        run_in_chunks(model, x, 1, fwd_bwd(model, x, []))
    finally:
        stop.set()
        thread.join()
    alone = Net()
    run_in_chunks(alone, x, 1, fwd_bwd(alone, x, []))
    assert batching.known_bytes_per_sample(model, x) == batching.known_bytes_per_sample(alone, x)
