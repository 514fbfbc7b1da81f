"""File modes and whole writes: what distbench creates gets the permissions the user's umask gives
any new file, and a file that others read while it is written appears whole or not at all.

`tempfile.mkstemp` and `mkdtemp` create 0600 files and 0700 folders whatever the umask says; a
file or folder staged with them and then moved into place keeps that mode unless it is set
again with `umask_mode`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def umask() -> int:
    """This process's umask, read without changing it (Linux reports it in /proc)."""
    try:
        found = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        found = None
    if found:
        return int(found[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def umask_mode(executable: bool = False) -> int:
    """The mode a new file gets under the umask; with `executable`, a new folder or script."""
    return (0o777 if executable else 0o666) & ~umask()


def write_whole(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` beside `path` and move it into place (`os.replace` is atomic on one file
    system), so a reader never sees it half-written; the temporary name carries this process's
    PID, so two writers do not share one. `mode`, when given, replaces the umask's."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)
