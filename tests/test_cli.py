"""`python -m explainers`: a folder of samples end to end, then bad files, class names and refusals in-process."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SAMPLES
from explainers.cli import main, resolve_target
from models import IMAGENET_CATEGORIES


def test_samples_folder_end_to_end(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "explainers", str(SAMPLES), "--method", "grad_cam", "--method",
                          "integrated_gradients", "--steps", "2", "--baseline", "blur", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    images = sorted(p.stem for p in SAMPLES.glob("*.jpg"))
    assert sorted(e["file"].rsplit("/", 1)[-1][:-4] for e in summary["images"]) == images
    assert summary["explanations_written"] == 2 * len(images) and summary["model"] == "efficientnet_lite0"
    assert "10/10" in run.stderr  # the progress bar reached the end
    for entry in summary["images"]:
        stem = entry["file"].rsplit("/", 1)[-1][:-4]
        probabilities = [p["probability"] for p in entry["predictions"]]
        assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
        assert entry["target"] == entry["predictions"][0]["index"]
        ig = entry["methods"]["integrated_gradients"]
        assert ig["options"] == {"steps": 2, "baseline": "blur"}
        assert ig["delta"] == pytest.approx(ig["sum_attribution"] - ig["output_change"])
        assert ig["relative_error"] == pytest.approx(abs(ig["delta"]) / abs(ig["output_change"]))
        assert ig["steps_error"]["2"] == pytest.approx(ig["relative_error"], rel=1e-3)
        assert np.load(out / ig["attribution"]).shape == (3, 224, 224)
        html = (out / ig["convergence"]).read_text()
        assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # plotly.js embedded: works offline
        cam = entry["methods"]["grad_cam"]
        assert cam["seconds"] > 0 and "delta" not in cam and np.load(out / cam["attribution"]).ndim == 2
        with Image.open(out / f"{stem}_grad_cam.png") as png:
            assert png.size == (224, 224) and png.mode == "RGB"


def test_bad_files_are_reported_and_skipped(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_cat.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())
    (folder / "broken.jpg").write_text("not an image at all")
    code = main([str(folder), str(tmp_path / "missing.png"), "--method", "saliency", "--method", "cam",
                 "--target", "espresso", "--out", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    good, bad = summary["images"]
    assert good["target_name"] == "espresso" and "error" not in good["methods"]["saliency"]
    assert "cannot read image" in bad["error"] and summary["problems"][0]["error"] == "no such file or folder"
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "missing.png" in err and "Traceback" not in err


def test_exit_code_is_nonzero_only_when_nothing_was_done(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    assert main([str(tmp_path / "broken.png"), "--method", "saliency", "--out", str(tmp_path / "o1")]) == 1
    assert main([str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o2")]) == 1
    assert main([str(SAMPLES / "cat.jpg"), "--method", "nope", "--out", str(tmp_path / "o3")]) == 2
    assert main([str(SAMPLES / "cat.jpg"), "--model", "no_such_model", "--out", str(tmp_path / "o4")]) == 1
    assert main([str(SAMPLES / "cat.jpg"), "--target", "cat", "--method", "saliency",
                 "--out", str(tmp_path / "o5")]) == 1  # "cat" names several classes: refused, nothing done
    err = capsys.readouterr().err
    assert "Unknown model 'no_such_model'" in err and "unknown method(s) nope" in err
    assert "give the index or a longer name" in err and "Traceback" not in err


def test_resolve_target_by_index_and_name():
    cats = IMAGENET_CATEGORIES
    assert resolve_target(None, cats, 7) == 7 and resolve_target("281", cats, 0) == 281
    assert cats[resolve_target("Tabby", cats, 0)] == "tabby"
    with pytest.raises(ValueError, match="out of range"):
        resolve_target("1000", cats, 0)
    with pytest.raises(ValueError, match="no class is called"):
        resolve_target("unicorn", cats, 0)
