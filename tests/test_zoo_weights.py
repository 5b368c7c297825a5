"""No pickle from outside the project: torchvision weights in the hub cache are hash-checked and read as tensors only.

A fake cache (TORCH_HOME) holds the files: genuine tensors under a name whose hash does not match, and a pickle
that would run code if unpickled. Neither is loaded; each gives a ModelUnavailable that says why; no code runs.
"""
from __future__ import annotations

import hashlib
import os
import pickle

import pytest
import torch

import models.zoo
from models import ModelUnavailable, load_model
from models.zoo import SPECS, hash_prefix, weights_file


class RunsCode:
    """Unpickling this calls os.system: it writes a marker file (a stand-in for whatever an attacker runs)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("a file in the cache must not be downloaded again")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    os.makedirs(os.path.dirname(weights_file(SPECS["resnet18"])))
    return tmp_path


def test_the_prefix_is_torchvisions():
    assert hash_prefix(SPECS["resnet18"]) == "f37072fd"  # resnet18-f37072fd.pth
    assert all(len(hash_prefix(spec)) >= 8 for spec in SPECS.values() if spec.source == "torchvision")


def test_a_file_with_the_wrong_hash_is_not_loaded(cache):
    import torchvision

    path = weights_file(SPECS["resnet18"])
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)  # real tensors, wrong digest
    with pytest.raises(ModelUnavailable, match="does not match the SHA-256") as err:
        models.zoo._build(SPECS["resnet18"], torch.device("cpu"))
    assert "f37072fd" in str(err.value) and "Delete it" in str(err.value)


@pytest.mark.parametrize("hash_matches", [False, True])
def test_a_planted_pickle_never_runs(cache, monkeypatch, hash_matches):
    marker = cache / "ran"
    path = weights_file(SPECS["resnet18"])
    torch.save({"fc.weight": RunsCode(marker)}, path)
    if hash_matches:  # even a file that passed the hash check is read as tensors only
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        monkeypatch.setattr(models.zoo, "hash_prefix", lambda spec: digest[:8])
    with open(path, "rb") as file:  # the file really is a code-running pickle
        assert b"system" in file.read()
    with pytest.raises(ModelUnavailable, match="SHA-256" if not hash_matches else "more than plain tensors"):
        models.zoo._build(SPECS["resnet18"], torch.device("cpu"))
    assert not marker.exists()


def test_the_planted_pickle_would_run_if_unpickled(cache):
    """The test's payload is real: plain pickle runs it (so the test above proves something)."""
    marker = cache / "ran"
    pickle.loads(pickle.dumps(RunsCode(marker)))
    assert marker.exists()


def test_offline_message_says_the_cache_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelUnavailable) as err:
        load_model("resnet18", device="cpu")
    assert "SHA-256 is checked" in str(err.value)
    why = {m.name: m for m in models.list_models()}["resnet18"].why_unavailable
    assert "SHA-256" in why
