"""The CLI's inputs: which files to explain, reading each one safely, and a distinct output name for each.

File names come from the file system, not from us: they may hold bytes that are not UTF-8 (Python carries them
as surrogate escapes), control characters or markup. `printable` is the one form they are shown or reported in.
Each file is stat-ed before it is opened: only regular files up to the upload limit are read (a FIFO or a
device is named for what it is and never opened, a file over the limit is refused without reading it).
"""
from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from dataclasses import dataclass

from models.image_io import MAX_UPLOAD_BYTES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MAX_STEM = 80  # characters of a file's stem kept in its output names (the method id and suffix come after)
MAX_STEM_BYTES = 150  # and UTF-8 bytes: a name, with hash, method, suffix and temporary ending, stays < 255
KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class InputError(Exception):
    """A file that cannot be explained; the message says why, for the summary and the terminal."""


@dataclass(frozen=True)
class InputFile:
    path: str    # as found (may carry surrogate escapes: pass it to os functions as is)
    shown: str   # printable(path): what reports and messages show
    stem: str    # the distinct, file-system-safe prefix of its output names


def printable(text: str) -> str:
    """`text` safe to print, log or put in JSON: undecodable bytes as `\\xNN`, control characters escaped."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        raw = text.encode("utf-8", "backslashreplace")
    clean = raw.decode("utf-8", "backslashreplace")
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") else
                   c.encode("unicode_escape").decode("ascii") for c in clean)


def kind_of(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def find_images(paths: list[str]) -> tuple[list[InputFile], list[dict]]:
    """The image files named, or inside the named folders (sorted, not recursive), each once; and a problem entry
    for each path that cannot be one (missing, a FIFO, a device, a broken link, an unreadable folder)."""
    found: list[str] = []
    problems: list[dict] = []

    def problem(path: str, error: str) -> None:
        problems.append({"file": printable(path), "error": error})

    for raw in paths:
        mode = file_mode(raw, problem)
        if mode is None:
            continue
        if stat.S_ISREG(mode):
            found.append(raw)
        elif stat.S_ISDIR(mode):
            found += folder_images(raw, problem)
        else:
            problem(raw, f"not a regular file: {kind_of(mode)}")
    unique = list(dict.fromkeys(found, None))  # a file named twice (or by name and by folder) is explained once
    seen_real: set[str] = set()
    files = []
    for path in unique:
        real = os.path.realpath(path)
        if real not in seen_real:
            seen_real.add(real)
            files.append(path)
    return [InputFile(p, printable(p), s) for p, s in zip(files, output_stems(files))], problems


def file_mode(path: str, problem) -> int | None:
    """`stat`'s mode of `path` (links followed), or None after reporting why it cannot be had."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        problem(path, "broken link" if os.path.islink(path) else "no such file or folder")
    except OSError as err:
        problem(path, f"cannot be read ({err.strerror or type(err).__name__})")
    return None


def folder_images(folder: str, problem) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
    except OSError as err:
        problem(folder, f"folder cannot be listed ({err.strerror or type(err).__name__})")
        return []
    images = []
    for name in names:
        path = os.path.join(folder, name)
        mode = file_mode(path, problem)
        if mode is None:
            continue
        if stat.S_ISREG(mode):
            images.append(path)
        elif not stat.S_ISDIR(mode):
            problem(path, f"not a regular file: {kind_of(mode)}")
    if not names:
        problem(folder, "folder holds no image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    return images


def safe_stem(path: str) -> str:
    """The file's stem with only letters, digits, '-', '_' and '.' kept (others, and undecodable bytes, → '_')."""
    stem = os.path.splitext(os.path.basename(path))[0]
    kept = "".join(c if (c.isalnum() and c.isprintable()) or c in "-_." else "_" for c in stem)
    kept = kept.lstrip(".-")[:MAX_STEM]
    while len(kept.encode("utf-8")) > MAX_STEM_BYTES:
        kept = kept[:-1]
    return kept or "image"


def output_stems(paths: list[str]) -> list[str]:
    """One distinct output prefix per file: its safe stem, plus a short hash of its path where stems clash
    (a/photo.jpg, a/photo.png and b/photo.jpg must not overwrite each other's results; case-insensitive
    file systems too)."""
    stems = [safe_stem(p) for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s.casefold()] = counts.get(s.casefold(), 0) + 1
    out, taken = [], set()
    for path, stem in zip(paths, stems):
        if counts[stem.casefold()] > 1:
            digest = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()
            stem = f"{stem}-{digest[:8]}"
        while stem.casefold() in taken:  # a real file already named like a hashed one
            stem += "_"
        taken.add(stem.casefold())
        out.append(stem)
    return out


def read_input(path: str, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The file's bytes, or InputError: stat first (never opens a FIFO or a device, never reads past `limit`)."""
    try:
        check_regular(os.stat(path), limit)
        # O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            check_regular(os.fstat(f.fileno()), limit)
            data = f.read(limit + 1)
    except OSError as err:
        raise InputError(f"cannot be read ({err.strerror or type(err).__name__})") from None
    if len(data) > limit:
        raise InputError(f"the file grew past the {limit / 2**20:.0f} MB limit while being read")
    return data


def check_regular(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file: {kind_of(st.st_mode)}")
    if st.st_size > limit:
        raise InputError(f"the file is {st.st_size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB "
                         "(not read)")
