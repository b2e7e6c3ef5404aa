"""The output directory of a command (``--out``), checked and prepared before any work (pure Python).

Policy: ``--out`` must be a directory we can write, or one we can create (not an existing file, not on a read-only
or special file system); it is checked without being created.  If it already holds files of the kind the command
writes (its *own names*: e.g. ``summary.json``, ``steps.csv``, ``fields.pvd`` and the frames in ``fields/``), the
command refuses to run unless ``--overwrite`` is given, and then removes exactly those files before writing its
first output, so that no stale file of an earlier run (a ``fields_12.vtu`` beyond the new run's last frame) stays
beside the new ones.  Other files in ``--out`` are never touched.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

from icesheet.errors import InputError

__all__ = ["check_output_directory", "check_writable_directory", "clear_earlier_outputs"]


def _ours(out: Path, names) -> list[Path]:
    """The entries of ``out`` matching ``names`` (file names or glob patterns, a pattern ``dir/*`` one level down)."""
    found = []
    for name in names:
        folder, _, pattern = name.rpartition("/")
        where = out / folder if folder else out
        if where.is_dir():
            found += [where / entry for entry in sorted(os.listdir(where)) if fnmatch.fnmatchcase(entry, pattern)]
    return found


def check_output_directory(out: Path, names, overwrite: bool, field: str = "out") -> None:
    """Check ``out`` (see the module docstring) without changing anything; raises InputError naming ``field``, the
    path and what to do."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{field} = {str(out)!r}: is a file, not a directory; give a directory for the outputs")
    earlier = _ours(out, names) if out.is_dir() else []
    if earlier and not overwrite:
        shown = ", ".join(str(p.relative_to(out)) for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise InputError(f"{field} = {str(out)!r}: holds the output of an earlier run ({shown}); give --overwrite "
                         "to replace it, or another directory")
    check_writable_directory(out, field)


def check_writable_directory(path: Path, field: str) -> None:
    """InputError naming ``field`` unless ``path`` is a directory we can write, or can be created as one; nothing
    is created (a probe directory is made and removed in the nearest existing parent)."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, f"{str(existing)!r} is a file, not a directory")
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
    except OSError as err:
        raise InputError(f"{field} = {str(path)!r}: not a writable directory ({err.strerror or err}); give a "
                         "directory you can write") from None


def clear_earlier_outputs(out: Path, names) -> None:
    """Remove the files and directories of ``out`` matching ``names`` (our outputs of an earlier run), and create
    ``out``: called by a writer before its first write (rank 0), after :func:`check_output_directory`."""
    out = Path(out)
    for path in _ours(out, names) if out.is_dir() else []:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
