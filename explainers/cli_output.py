"""What the CLI writes: result files into an output folder, and a progress line on the terminal.

The output folder is checked before the model loads, written only inside, never through a link.

Every file is written whole under a temporary name in the folder and renamed over its final name
(`os.replace`), through a descriptor of the folder opened once: a reader (or a crash, or Ctrl-C) sees the old
file or the new one, never half of one, so `summary.json` is always valid JSON. A symbolic link (or anything
that is not a regular file) already at a result's name is refused, not followed; and a rename replaces a link
planted at the last moment rather than writing through it, so nothing outside the folder is ever written.
"""
from __future__ import annotations

import dataclasses
import html
import io
import json
import math
import os
import secrets
import stat
import sys

import numpy as np
from PIL import Image

from presentation.overlay import overlay

from .cli_inputs import kind_of, printable

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")  # virtual file systems: writing there is never a result folder


class OutputError(Exception):
    """The output folder (or one file in it) cannot be written; the message says why."""


class OutputFolder:
    def __init__(self, path: str):
        self.fd: int | None = None
        shown = printable(path)
        if not path:
            raise OutputError("--out is empty: name a folder")
        real = os.path.realpath(path)
        for root in SYSTEM_FOLDERS:
            if real == root or real.startswith(root + "/"):
                raise OutputError(f"--out {shown} is under {root}, a system folder; choose an ordinary folder")
        try:
            os.makedirs(real, exist_ok=True)
        except FileExistsError:
            mode = os.stat(real).st_mode if os.path.exists(real) else 0
            what = "a file" if stat.S_ISREG(mode) else kind_of(mode)
            raise OutputError(f"--out {shown} is {what}, not a folder") from None
        except OSError as err:
            raise OutputError(f"--out {shown} cannot be created ({err.strerror or type(err).__name__})") from None
        try:
            self.fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise OutputError(f"--out {shown} cannot be opened as a folder ({err.strerror})") from None
        self.shown = shown
        try:
            self.write(f".write-test-{secrets.token_hex(4)}", b"", keep=False)
        except OSError as err:
            self.close()
            raise OutputError(f"--out {shown} is not writable ({err.strerror or type(err).__name__})") from None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def write(self, name: str, data: bytes, *, keep: bool = True) -> None:
        """Write `data` as `name` in the folder, atomically; OutputError if a link or non-file sits there."""
        if "/" in name or name in ("", ".", ".."):
            raise OutputError(f"not a file name: {printable(name)}")
        self.refuse_non_file(name)
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if keep:
                os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        finally:
            try:
                os.unlink(temporary, dir_fd=self.fd)
            except FileNotFoundError:
                pass

    def refuse_non_file(self, name: str) -> None:
        try:
            mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise OutputError(f"{printable(name)} in the output folder is a symbolic link: not written through it "
                              "(remove the link)")
        if not stat.S_ISREG(mode):
            raise OutputError(f"{printable(name)} in the output folder exists and is not a regular file")

    def write_json(self, name: str, value) -> None:
        self.write(name, json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def json_safe(value):
    """`value` with what strict JSON cannot hold replaced: NaN/inf → None, numpy scalars → Python, strings
    made printable (no lone surrogates from undecodable file names)."""
    if isinstance(value, dict):
        return {printable(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return printable(str(value))


def write_results(out: OutputFolder, stem: str, bundle, x, exp, title: str) -> dict:
    """Write one explanation's files (none if any of their names is taken by a link); returns what the summary
    records of it."""
    for suffix in (".npy", ".png", ".html"):
        out.refuse_non_file(stem + suffix)
    out.write(f"{stem}.npy", encoded_npy(exp.attribution))
    out.write(f"{stem}.png", encoded_png(render_overlay(bundle, x, exp)))
    record = dict(seconds=round(exp.seconds, 4), overlay=f"{stem}.png", attribution=f"{stem}.npy",
                  attribution_shape=list(exp.attribution.shape), **completeness(exp))
    if exp.trace is not None:
        out.write(f"{stem}.html", convergence_html(exp.trace, title))
        record["convergence"] = f"{stem}.html"
        record["steps_error"] = {str(k): v for k, v in sorted(exp.trace.steps_error.items())}
    if "evaluations" in exp.extras:  # the adaptive rule: what it spent and whether it met the tolerance
        record.update(evaluations=exp.extras["evaluations"], converged=exp.extras["converged"])
    return record


def render_overlay(bundle, x, exp) -> np.ndarray:
    """The explanation over the image as uint8 RGB: signed colours for pixel-space maps, a heat scale for CAMs."""
    signed = exp.attribution.ndim == 3
    return overlay(bundle.to_image(x), exp.heatmap, signed=signed, alpha=0.6)


def convergence_html(trace, title: str) -> bytes:
    """IG's convergence figures (the app's own) in one self-contained HTML page; `title` is escaped here."""
    from presentation.figures import ig_convergence_figure, steps_error_figure

    title = html.escape(title)
    parts = [ig_convergence_figure(trace, title=title).to_html(full_html=False, include_plotlyjs=True)]
    if trace.steps_error:
        parts.append(steps_error_figure(trace.steps_error, chosen=len(trace.alphas)).to_html(
            full_html=False, include_plotlyjs=False))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            + "".join(parts) + "</body></html>").encode("utf-8")


def completeness(exp) -> dict:
    """delta = Σ attribution − ΔF as reported by the method, and the error relative to ΔF."""
    check = exp.completeness()
    return {} if check is None else dataclasses.asdict(check)


def encoded_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def encoded_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class ProgressLine:
    """A one-line progress bar on stderr (rewritten in place on a terminal, one line per step otherwise)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = max(total, 1), 0, stream or sys.stderr
        self.tty = getattr(stream, "isatty", lambda: False)()

    def show(self, label: str) -> None:
        width = 24
        filled = int(width * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label}"
        self.stream.write(("\r" + line[:120].ljust(120)) if self.tty else line + "\n")
        self.stream.flush()

    def step(self, label: str) -> None:
        self.done += 1
        self.show(label)

    def skip(self, count: int, label: str) -> None:
        self.done += count
        self.show(label)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
