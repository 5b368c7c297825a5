"""The project's security settings (20 MB uploads, XSRF, hidden error details) hold however the app is started.

From another folder (whose own .streamlit/config.toml says otherwise), with overriding flags, or under AppTest:
Streamlit's config resolution and app.py's `enforce_project_settings` must end with the project's values.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from models.image_io import MAX_UPLOAD_BYTES
from ui.settings import ENFORCED, enforce_project_settings, project_settings

HOSTILE_CONFIG = """
[server]
maxUploadSize = 200
enableXsrfProtection = false
[client]
showErrorDetails = "full"
"""
EXPECTED = {"server.maxUploadSize": MAX_UPLOAD_BYTES // 2**20, "server.enableXsrfProtection": True,
            "client.showErrorDetails": "none"}


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory with its own, permissive .streamlit/config.toml; no STREAMLIT_* variables."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    return tmp_path, env


def test_project_file_sets_what_is_enforced():
    assert project_settings() == EXPECTED and set(ENFORCED) == set(EXPECTED)


def test_config_resolution_from_another_folder_uses_the_projects_file(elsewhere):
    """What `streamlit run /abs/app.py` does before starting the server, in a fresh process elsewhere."""
    cwd, env = elsewhere
    probe = ("import json, sys\nfrom streamlit import config\nfrom streamlit.web import bootstrap\n"
             "config._main_script_path = sys.argv[1]  # as streamlit.web.cli does for `streamlit run FILE`\n"
             "bootstrap.load_config_options(flag_options={})\n"
             f"print(json.dumps({{k: config.get_option(k) for k in {list(ENFORCED)!r}}}))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "app.py")], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == EXPECTED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_started_from_another_folder_has_xsrf(elsewhere):
    """A real server: XSRF protection shows as the token cookie its health endpoint sets."""
    cwd, env = elsewhere
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                               str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, response = time.monotonic() + 120, None
        while time.monotonic() < deadline and response is None:
            try:
                response = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5)
            except OSError:
                assert server.poll() is None, "the server exited"
                time.sleep(0.5)
        assert response is not None and response.status == 200
        cookies = response.headers.get_all("Set-Cookie") or []
        assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_app_restores_the_settings_that_flags_or_other_files_changed(tiny_model):
    before = {key: config.get_option(key) for key in ENFORCED}
    try:
        config.set_option("server.maxUploadSize", 500)
        config.set_option("server.enableXsrfProtection", False)
        config.set_option("client.showErrorDetails", "full")
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.session_state["methods"] = ["grad_cam"]
        at.run()
        assert not at.exception
        assert {key: config.get_option(key) for key in ENFORCED} == EXPECTED
        assert at.sidebar.get("file_uploader")[0].proto.max_upload_size_mb == EXPECTED["server.maxUploadSize"]
    finally:
        for key, value in before.items():
            config.set_option(key, value)


def test_enforcement_changes_nothing_when_the_settings_already_hold():
    enforce_project_settings()
    sources = {key: config._config_options[key].where_defined for key in ENFORCED}
    enforce_project_settings()
    assert {key: config._config_options[key].where_defined for key in ENFORCED} == sources
    assert {key: config.get_option(key) for key in ENFORCED} == EXPECTED
