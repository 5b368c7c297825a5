"""models.host_memory.release_freed_memory: runs glibc's malloc_trim where there is one, a no-op elsewhere, and the app
calls it after each explanation it computes (not after a cache hit)."""
from __future__ import annotations

import platform
import sys
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from models import host_memory as memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trims_on_glibc():
    blocks = [bytearray(256 * 1024) for _ in range(64)]  # some heap to give back
    del blocks
    assert memory.release_freed_memory() is True


def test_is_a_quiet_no_op_where_unavailable(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


def test_never_raises_when_the_call_fails(monkeypatch):
    def broken(_pad):
        raise OSError("no")
    monkeypatch.setattr(memory, "_malloc_trim", lambda: broken)
    assert memory.release_freed_memory() is False


def test_run_explain_trims_after_computing_not_after_a_cache_hit(monkeypatch):
    import explainers
    from explainers import Explanation
    from ui import common

    trims, calls = [], []

    def fake_explain(bundle, x, target, method, progress=None, **options):
        calls.append(method)
        assert trims == []  # the trim comes after the computation, not before it
        return Explanation(method, target, np.zeros((2, 2), np.float32), np.zeros((4, 4), np.float32))

    monkeypatch.setattr(explainers, "explain", fake_explain)
    def fake_trim():  # records whether the result was already stored when the trim ran
        trims.append(common.explanation_store().get(key) is None)
        return True

    monkeypatch.setattr(common, "release_freed_memory", fake_trim)
    bundle = SimpleNamespace(name="stub", device="cpu")
    image_id = f"trim-test-{uuid.uuid4()}"
    key = (image_id, "stub", "cpu", "grad_cam", 3, common.options_key({}))
    first = common.run_explain(bundle, image_id, None, 3, "grad_cam", {})
    assert first is not None and calls == ["grad_cam"] and trims == [False]  # once, after the result was stored
    again = common.run_explain(bundle, image_id, None, 3, "grad_cam", {})
    assert again is first and calls == ["grad_cam"] and trims == [False]  # cache hit: nothing computed, no trim
