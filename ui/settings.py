"""The project's security settings hold however the app is started.

`streamlit run /abs/path/app.py` reads `.streamlit/config.toml` next to the script (Streamlit ≥ 1.5x), but a global
`~/.streamlit/config.toml`, `STREAMLIT_*` environment variables or command-line flags override it. The options
below protect users (upload size, XSRF, tracebacks with paths and code), so app.py applies them again from the
project's file on every run; Streamlit reads all three per request or per error, so they take effect at once.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config

PROJECT_CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"
ENFORCED = ("server.maxUploadSize", "server.enableXsrfProtection", "client.showErrorDetails")


def project_settings() -> dict:
    """The enforced options as the project's config.toml sets them."""
    settings = tomllib.loads(PROJECT_CONFIG.read_text())
    return {key: settings[key.split(".")[0]][key.split(".")[1]] for key in ENFORCED}


def enforce_project_settings() -> None:
    for key, value in project_settings().items():
        if config.get_option(key) != value:
            config.set_option(key, value, where_defined=str(PROJECT_CONFIG))
