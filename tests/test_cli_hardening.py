"""The CLI under hostile inputs and output folders: clear errors, nothing lost, nothing written outside --out.

`main()` runs in-process with a tiny CNN in place of the bundled model (the CLI's logic is what is tested);
the crash and Ctrl-C cases run it in a subprocess with the same stand-in.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import models
from conftest import ROOT, SAMPLES, TinyImageNetCNN
from explainers.cli import main
from explainers.cli_inputs import output_stems, printable, safe_stem
from explainers.cli_output import json_safe


@pytest.fixture
def loads(monkeypatch):
    """Every model name loads a tiny CNN; the list records each load (refusals must come before any)."""
    calls = []
    torch.manual_seed(0)
    net = TinyImageNetCNN()
    bundle = models.wrap(net, target_layer=net.features, classifier=net.fc, input_size=(48, 48), name="tiny",
                         device="cpu")

    def load(name, device=None):
        calls.append((name, device))
        return bundle
    monkeypatch.setattr(models, "load_model", load)
    return calls


def copy_sample(path, name="cat.jpg"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((SAMPLES / name).read_bytes())
    return path


def summary_of(out):
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def run_main(*argv):
    return main([str(a) for a in argv])


def test_a_non_utf8_file_name_is_reported_and_later_images_still_run(tmp_path, loads, capsys):
    folder = tmp_path / "in"
    copy_sample(folder / "a.jpg")
    odd = os.path.join(os.fsencode(folder), b"caf\xe9\x1b[31m.jpg")  # not UTF-8, and a terminal escape
    with open(odd, "wb") as f:
        f.write((SAMPLES / "coffee.jpg").read_bytes())
    with open(os.path.join(os.fsencode(folder), b"b\xff.jpg"), "wb") as f:
        f.write(b"not an image")
    copy_sample(folder / "zzz.jpg", "coffee.jpg")
    assert run_main(folder, "--method", "saliency", "--out", tmp_path / "out") == 0
    summary = summary_of(tmp_path / "out")
    files = [e["file"] for e in summary["images"]]
    assert files[1].endswith("b\\xff.jpg") and files[2].endswith("caf\\xe9\\x1b[31m.jpg")
    assert [("error" in e) for e in summary["images"]] == [False, True, False, False]  # later ones still ran
    assert summary["explanations_written"] == 3 and summary["complete"]
    for entry in summary["images"][:1] + summary["images"][2:]:
        assert (tmp_path / "out" / entry["methods"]["saliency"]["overlay"]).is_file()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "\x1b" not in captured.err + captured.out and "b\\xff" in captured.err


@pytest.mark.parametrize("case", ["a file", "under /proc", "parent is a file", "under /sys", "a FIFO", "empty"])
def test_a_bad_out_is_refused_before_the_model_loads(case, tmp_path, loads, capsys):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    out = {"a file": tmp_path / "file", "under /proc": "/proc/self/results", "under /sys": "/sys/kernel/x",
           "parent is a file": tmp_path / "file" / "out", "a FIFO": tmp_path / "fifo", "empty": ""}[case]
    assert run_main(SAMPLES / "cat.jpg", "--method", "saliency", "--out", out) == 1
    err = capsys.readouterr().err
    assert loads == [] and "Traceback" not in err
    assert {"a file": "is a file, not a folder", "under /proc": "system folder", "under /sys": "system folder",
            "parent is a file": "cannot be created", "a FIFO": "is a named pipe (FIFO), not a folder",
            "empty": "--out is empty"}[case] in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder; the other --out cases still run")
def test_an_unwritable_out_is_refused_before_the_model_loads(tmp_path, loads, capsys):
    out = tmp_path / "locked"
    out.mkdir(mode=0o500)
    assert run_main(SAMPLES / "cat.jpg", "--out", out) == 1
    assert loads == [] and "not writable" in capsys.readouterr().err


@pytest.mark.parametrize("device, phrase", [("meta", "cannot run on a 'meta' device"), ("gpu!", "not a device name"),
                                            ("cuda:99", "CUDA")])
def test_an_unusable_device_is_refused_before_the_model_loads(device, phrase, tmp_path, loads, capsys):
    assert run_main(SAMPLES / "cat.jpg", "--device", device, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert loads == [] and phrase in err and "Traceback" not in err


@pytest.mark.parametrize("flags, phrase", [(["--steps", "0"], "steps"), (["--rule", "simpson"], "rule"),
                                           (["--baseline", "grey"], "baseline"),
                                           (["--method", "grad_cam", "--steps", "8"], "no chosen method takes it")])
def test_bad_options_are_refused_before_the_model_loads(flags, phrase, tmp_path, loads, capsys):
    assert run_main(SAMPLES / "cat.jpg", *flags, "--out", tmp_path / "out") == 2
    assert loads == [] and phrase in capsys.readouterr().err


def test_fifos_and_devices_are_named_for_what_they_are_and_never_opened(tmp_path, loads, capsys):
    fifo = tmp_path / "in" / "pipe.jpg"
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    copy_sample(tmp_path / "in" / "real.jpg")
    start = time.perf_counter()
    assert run_main(fifo.parent, "/dev/null", fifo, "--method", "saliency", "--out", tmp_path / "out") == 0
    assert time.perf_counter() - start < 60
    problems = {p["file"]: p["error"] for p in summary_of(tmp_path / "out")["problems"]}
    assert problems == {str(fifo): "not a regular file: a named pipe (FIFO)",
                        "/dev/null": "not a regular file: a character device"}
    assert "named pipe (FIFO)" in capsys.readouterr().err


def test_a_huge_file_is_refused_without_being_read(tmp_path, loads):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GB long, no disk used
    copy_sample(tmp_path / "ok.jpg")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run_main(huge, tmp_path / "ok.jpg", "--method", "saliency", "--out", tmp_path / "out") == 0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: far below 3 GB
    entry = summary_of(tmp_path / "out")["images"][0]
    assert entry["error"] == "cannot read image: the file is 3072.0 MB; the limit is 20 MB (not read)"


def test_outputs_of_files_with_the_same_name_do_not_collide(tmp_path, loads):
    copy_sample(tmp_path / "a" / "photo.jpg")
    copy_sample(tmp_path / "a" / "photo.png", "coffee.jpg")  # content decides, not the suffix
    copy_sample(tmp_path / "b" / "photo.jpg", "cat_and_espresso.jpg")
    out = tmp_path / "out"
    assert run_main(tmp_path / "a", tmp_path / "b", "--method", "saliency", "--out", out) == 0
    summary = summary_of(out)
    overlays = [e["methods"]["saliency"]["attribution"] for e in summary["images"]]
    assert summary["explanations_written"] == 3 and len(set(overlays)) == 3
    maps = [np.load(out / name) for name in overlays]
    assert not np.array_equal(maps[0], maps[1]) and not np.array_equal(maps[0], maps[2])
    assert len(list(out.glob("*.npy"))) == 3


def test_output_names_are_safe_and_distinct():
    assert safe_stem("/x/<script>alert(1)<script>.jpg") == "_script_alert_1__script_"
    assert safe_stem("/x/..hidden.jpg") == "hidden" and safe_stem("/x/-rf.png") == "rf"
    assert safe_stem("/x/...") == "image" and safe_stem("/x/" + "é" * 300 + ".jpg") == "é" * 75
    assert len(safe_stem("/x/" + "猫" * 100 + ".jpg").encode()) <= 150  # bytes, not characters, fill a name
    stems = output_stems(["/a/Photo.jpg", "/b/photo.jpg", "/c/other.jpg"])
    assert len({s.casefold() for s in stems}) == 3 and stems[2] == "other"  # case-insensitive file systems too


def test_links_inside_out_are_never_written_through(tmp_path, loads, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "cat_saliency.png").symlink_to(victim)
    (out / "cat_grad_cam.npy").symlink_to(tmp_path / "would-be-created")
    assert run_main(SAMPLES / "cat.jpg", "--method", "saliency", "--method", "grad_cam", "--out", out) == 1
    assert victim.read_text() == "precious" and not (tmp_path / "would-be-created").exists()
    methods = summary_of(out)["images"][0]["methods"]
    assert "symbolic link" in methods["saliency"]["error"] and "symbolic link" in methods["grad_cam"]["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "victim.txt"]  # nothing else outside --out
    assert "Traceback" not in capsys.readouterr().err


def test_a_linked_summary_is_refused_and_the_target_left_alone(tmp_path, loads, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    (out / "summary.json").symlink_to(victim)
    assert run_main(SAMPLES / "cat.jpg", "--method", "saliency", "--out", out) == 1
    assert victim.read_text() == "{}" and "summary.json" in capsys.readouterr().err and loads == []


def test_summary_json_is_strict_json():
    cleaned = json_safe({"delta": float("nan"), "inf": float("inf"), "n": np.int64(3), "x": np.float32(0.5),
                         "name": "caf\udce9", "ok": np.bool_(True)})
    assert cleaned == {"delta": None, "inf": None, "n": 3, "x": 0.5, "name": "caf\\xe9", "ok": True}
    json.loads(json.dumps(cleaned, allow_nan=False))
    assert printable("a\nb\x1b[0m\u202e") == "a\\nb\\x1b[0m\\u202e"


STAND_IN = """
import sys, time, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import models, explainers.cli as cli
from conftest import TinyImageNetCNN
torch.manual_seed(0); net = TinyImageNetCNN()
bundle = models.wrap(net, target_layer=net.features, classifier=net.fc, input_size=(48, 48), device="cpu")
models.load_model = lambda name, device=None: bundle
slow = cli.explain_image
def explain_image(*args, **kwargs):
    time.sleep(0.3)
    return slow(*args, **kwargs)
cli.explain_image = explain_image
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_summary_is_valid_json_after_each_image_even_when_killed(how, tmp_path):
    for i in range(40):
        copy_sample(tmp_path / "in" / f"img{i:02d}.jpg")
    out = tmp_path / "out"
    script = STAND_IN.format(root=str(ROOT), tests=str(ROOT / "tests"))
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "in"), "--method", "saliency",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "summary.json").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    summary = summary_of(out)  # parses: never half-written
    done = summary["images"]
    assert 1 <= len(done) < 40 and not summary["complete"]
    assert all((out / e["methods"]["saliency"]["overlay"]).is_file() for e in done)  # flushed as each finished
    if how == "SIGINT":
        assert proc.returncode == 130 and summary["interrupted"] and "Traceback" not in err
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")] or how == "SIGKILL"
