"""The chunk-size learner (explainers.batching): its rules on hand-made profiles, and what it learns from a
fake clock that plays a machine with a known cost curve (deterministic: no real timing in these tests)."""
import types

import torch

from explainers import batching
from explainers.batching import Profile, next_chunk, run_in_chunks


def test_chunk_sizes_explore_upwards_without_a_small_tail():
    p = Profile()
    assert next_chunk(p, 50, 1024) == 4
    p.per_sample = {4: 1.0, 8: 0.5, 16: 0.3, 22: 0.2}  # still getting faster: explore, and take the rest
    assert next_chunk(p, 50, 1024) == 50
    assert next_chunk(p, 50, 30) == 30  # memory cap wins
    p.per_sample = {4: 1.0, 8: 0.5, 16: 0.3}  # 32 next, but 22 remain under a cap of 20: not 20 + 2, 11 + 11
    assert next_chunk(p, 22, 20) == 11 and next_chunk(p, 50, 20) == 20
    p.per_sample = {4: 1.0, 8: 0.5, 16: 0.6}  # 8 is best: spread evenly, no tiny last chunk
    p.times_measured = dict.fromkeys(p.per_sample, 2)
    assert next_chunk(p, 50, 1024) == 8 and next_chunk(p, 17, 1024) == 6


def test_near_ties_go_to_the_larger_chunk_on_accelerators_only():
    gpu = Profile(per_sample={4: 1.00, 8: 0.80, 16: 0.85, 32: 1.20}, tie_tolerance=batching.ACCELERATOR_TIE_TOLERANCE)
    assert gpu.best() == 16  # within 10 % of the fastest: fewer chunks, same speed
    gpu.per_sample[16] = 0.95
    assert gpu.best() == 8
    cpu = Profile(per_sample={4: 1.00, 8: 0.80, 16: 0.85, 32: 1.20})
    assert cpu.best() == 8  # on a CPU the curve rises past the cache-friendly size: take the fastest
    assert batching.profile_for(torch.nn.Linear(1, 1), torch.zeros(1, 1)).tie_tolerance == 0.0


def test_retiming_until_every_close_size_was_timed_twice():
    p = Profile()
    for size, t in {2: 2.5, 4: 2.0, 8: 1.5, 13: 1.0, 16: 1.1, 26: 1.3}.items():
        p.record(size, t)
    # smaller sizes within 2x (2 is not), larger ones within 1.25x (26 is not); the smallest first
    assert next_chunk(p, 50, 26) == 4
    p.record(4, 1.9)
    assert next_chunk(p, 50, 26) == 8
    p.record(8, 1.4)
    assert next_chunk(p, 50, 6) == 6  # 16 does not fit under a memory cap of 6: the cap
    assert next_chunk(p, 50, 26) == 16
    p.record(16, 1.05)
    assert next_chunk(p, 50, 26) == 13  # nothing left worth re-timing
    assert p.per_sample[4] == 1.9 and p.times_measured[4] == 2


def test_sizes_compared_on_equal_numbers_of_recent_timings():
    p = Profile()
    p.record(8, 0.90)  # one lucky chunk long ago...
    for _ in range(10):
        p.record(8, 1.20)  # ...then the machine is what it is
    p.record(4, 1.10), p.record(4, 1.15)
    assert p.per_sample[8] == 1.20 and p.per_sample[4] == 1.10
    assert p.best() == 4  # a minimum over 11 timings would have kept 8 for good


class FakeMachine:
    """Per-sample cost by chunk size; the first chunks of a fresh process run `warmup[i]` times slower (as on a
    real CPU: allocator growth, kernel selection)."""

    def __init__(self, cost, warmup=(3.0, 2.0)):
        self.cost, self.warmup, self.now, self.chunks = cost, warmup, 0.0, 0

    def work(self, start, stop):
        slow = self.warmup[self.chunks] if self.chunks < len(self.warmup) else 1.0
        self.now += (stop - start) * self.cost(stop - start) * slow
        self.chunks += 1


def learn_on(machine, monkeypatch, calls=8):
    monkeypatch.setattr(batching, "time", types.SimpleNamespace(perf_counter=lambda: machine.now))
    model, x = torch.nn.Identity(), torch.zeros(1, 3, 8, 8)
    return [run_in_chunks(model, x, 50, machine.work) for _ in range(calls)]


def cpu_like(b):  # U-shaped like a real CPU: 5–6 best, larger chunks fall out of cache
    return 40.0 * (1 + 0.02 * max(0, 5 - b) + 0.03 * max(0, b - 6))


def test_a_cold_start_does_not_brand_good_sizes_bad_for_good(monkeypatch):
    machine = FakeMachine(cpu_like)  # the chunks of 4 and 8 run cold: 16 looks best at first
    calls = learn_on(machine, monkeypatch)
    assert calls[-1] == calls[-2] and max(calls[-1]) - min(calls[-1]) <= 1  # settled: no more re-timing
    cost = sum(b * cpu_like(b) for b in calls[-1])
    assert cost <= 1.02 * 50 * cpu_like(5), calls

    monkeypatch.setattr(batching, "RETIME_UNTIL", 0)  # without re-timing the same machine stays on 10 or more
    stuck = learn_on(FakeMachine(cpu_like), monkeypatch)[-1]
    assert sum(b * cpu_like(b) for b in stuck) >= 1.1 * 50 * cpu_like(5), stuck


def test_one_noisy_chunk_does_not_hide_the_best_size(monkeypatch):
    def curve(b):  # 8 is best
        return {4: 44.0, 8: 40.0}.get(b, 40.0 + abs(b - 8))

    machine = FakeMachine(curve, warmup=(1.0, 1.15))  # the first chunk of 8 is timed 15 % slow: 4 looks best
    calls = learn_on(machine, monkeypatch, calls=8)
    assert calls[0][:3] == [4, 8, 8], calls  # 8 looked worse than 4: timed again at once
    assert calls[-1] == calls[-2] and min(calls[-1]) >= 7, calls  # and kept (spread over 50: 7–8)
    assert sum(b * curve(b) for b in calls[-1]) <= 1.03 * 50 * curve(8)
