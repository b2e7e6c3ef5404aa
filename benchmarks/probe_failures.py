"""Issue 14's failure probes, re-run: every way a user can make ``icesheet`` or ``checkpointing`` fail, as a
subprocess, each outcome classified.

    python -m benchmarks.probe_failures                 # all probes (about 10 min on 2 quiet cores)
    python -m benchmarks.probe_failures --fast          # only those that fail before Firedrake is imported
    python -m benchmarks.probe_failures --only corrupt  # the probes whose name contains a word

Each probe is one command line (both CLIs; under ``mpiexec -n 2`` where it says so) with its set-up (files, a small
tmpfs, a user's own files in ``--out`` or ``--disk-dir``) and what is right for it: a documented non-zero exit
status (checkpointing/exits.py) or success.  The outcome is classified as

* ``one-line``: the documented status, exactly one ``PROG: error: ...`` line on stderr and no traceback;
* ``traceback``: a Python traceback on stderr (whatever the status);
* ``accepted``: exit status 0;
* ``killed``: ended by the SIGKILL the probe sent (nothing can be printed then);
* ``other``: anything else (a signal, an undocumented status, several error lines).

A probe passes when its class and status are the expected ones, the user's files it set up are byte-identical
afterwards, no checkpoint run directory (``checkpoints-*``) is left in its disk directories once the *next* run has
started (the kill probes run a second command, which must report and remove the orphan), and, for runs that are
accepted, the numbers are sane (finite volume, J and gradient norm; no step clamped more than 0.1 % of the volume):
an accepted run with wrong numbers counts as ``silently wrong``.

Full disks.  When this process may mount file systems (root in a container with CAP_SYS_ADMIN), a full disk is a
small tmpfs: filled up before the run, or filled by the probe's fault injector right after the first checkpoint
file is written (another process filling the disk mid-run), and a read-only one is a tmpfs remounted ``ro``;
otherwise those probes are skipped and listed as such.  Corrupted checkpoints and kills in the backward phase
use the fault injector of this module (``--inject``), which runs the real ``icesheet`` command line in-process
after patching the disk tier (checkpointing/adjoint/tiers.py) to corrupt the first file it writes (six ways: a
flipped byte, truncation, deletion, two files swapped, bytes appended, one MPI rank only) or the checkpoint manager
to hold at a backward step until a signal arrives.

Results: benchmarks/results/probe_failures.csv (one row per probe) and a summary line per class.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTED_STATUSES = {2, 3, 4, 5, 6, 130, 143}
ERROR_LINE = re.compile(r"^(icesheet|checkpointing)( [\w-]+)?: error: ")
#: a small shallow-stream run: 40 km cells of the marine ice stream, Picard tolerances of the CLI tests
SMALL = "[mesh]\ncell_size = 40000.0\n[solver]\ntolerance = 1e-2\nresidual_tolerance = 1e-2\n"
GRADIENT = ["gradient", "--config", "{small}", "--functional", "vaf", "--control", "friction", "--steps", "6",
            "--no-progress"]
DISK_GRADIENT = GRADIENT + ["--schedule", "disk-revolve", "--ram-slots", "1"]
#: user files planted in directories a probe writes to, which must stay byte-identical
USER_FILES = {"notes.txt": b"my notes\n", "checkpoints.txt": b"not ours\n", "checkpoints-mine.csv": b"1,2\n"}


@dataclass
class Probe:
    """One command line and what is right for it (``status`` 0: success; else that documented exit status)."""

    name: str
    argv: list[str]                    # after the program: icesheet ... or checkpointing ...
    status: int
    words: tuple[str, ...] = ()        # the error line must hold these
    program: str = "icesheet"
    firedrake: bool = False            # needs Firedrake (slow) rather than failing before its import
    setup: tuple[str, ...] = ()        # set-up steps (see Workspace.prepare)
    inject: str | None = None          # fault injector spec (see inject())
    kill: str | None = None            # "KILL" / "TERM" / "INT": signal once the injector holds the run
    then: list[str] | None = None      # a next run (icesheet argv) after a kill: must succeed and clean up
    ranks: int = 1
    user_dirs: tuple[str, ...] = ()    # directories (keys of Workspace.paths) planted with USER_FILES
    check: str | None = None           # "run" / "gradient": sanity of an accepted run's summary (--out)
    mount: bool = False                # needs a tmpfs


def probes() -> list[Probe]:
    p = []
    run = ["run", "--no-progress"]
    # ----------------------------------------------------------------------------------- icesheet run, bad input
    for value, words in [("1e-3", ("mesh.cell_size = 0.001",)), ("-5", ("mesh.cell_size",)),
                         ("nan", ("mesh.cell_size",)), ("inf", ("mesh.cell_size",)), ("1e12", ("mesh.cell_size",))]:
        p.append(Probe(f"run mesh-size {value}", run + ["--mesh-size", value, "--out", "{out}"], 2, words))
    p.append(Probe("run halfar mesh-size 1e9", run + ["--scenario", "halfar_dome", "--mesh-size", "1e9", "--out",
                                                      "{out}"], 2, ("mesh.cell_size = 1e+09",)))
    for value in ("1e12", "-1", "0", "nan", "inf", "1e400"):
        p.append(Probe(f"run dt {value}", run + ["--dt", value, "--out", "{out}"], 2, ("dt",)))
    for value in ("10000000", "-1", "1e7", "2.5"):
        p.append(Probe(f"run steps {value}", run + ["--steps", value, "--out", "{out}"], 2, ("steps",)))
    p.append(Probe("run scenario nope", run + ["--scenario", "nope", "--out", "{out}"], 2, ("scenario = 'nope'",)))
    for name, words in [("config_latin1", ("not UTF-8",)), ("config_bad_toml", ("not valid TOML",)),
                        ("config_speed", ("inflow_speed = -50",)), ("config_unknown_key", ("colour",)),
                        ("config_dt_text", ("dt",)), ("config_speed_inf", ("inflow_speed",)),
                        ("config_accumulation_nan", ("accumulation",)), ("config_cells_1e400", ("cell_size",)),
                        ("config_solver_zero", ("max_iterations",))]:
        p.append(Probe(f"run {name}", run + ["--config", "{" + name + "}", "--out", "{out}"], 2, words))
    p.append(Probe("run config missing", run + ["--config", "{missing}", "--out", "{out}"], 2, ("config",)))
    p.append(Probe("run config is a directory", run + ["--config", "{tmp}", "--out", "{out}"], 2, ("config",)))
    p.append(Probe("run initial-state garbage", run + ["--initial-state", "{garbage}", "--out", "{out}"], 2,
                   ("initial_state",)))
    p.append(Probe("run initial-state missing", run + ["--initial-state", "{missing}", "--out", "{out}"], 2,
                   ("initial_state",)))
    p.append(Probe("run out is a file", run + ["--out", "{a_file}"], 2, ("is a file",)))
    p.append(Probe("run out in /proc", run + ["--out", "/proc/icesheet-probe"], 2, ("not a writable directory",)))
    p.append(Probe("run out read-only", run + ["--out", "{ro}/out"], 2, ("out",), setup=("ro",), mount=True))
    p.append(Probe("run out holds user summary.json", run + ["--out", "{user_out}"], 2, ("--overwrite",),
                   setup=("user_out",), user_dirs=("user_out",)))
    p.append(Probe("run dt text", run + ["--dt", "ten", "--out", "{out}"], 2, ("--dt",)))
    p.append(Probe("run unknown option", run + ["--colour", "red", "--out", "{out}"], 2, ("--colour",)))
    # ------------------------------------------------------------------------------ icesheet gradient, bad input
    g = GRADIENT + ["--out", "{out}"]
    for value in ("inf", "nan", "0", "-1"):
        p.append(Probe(f"gradient sigma {value}", g + ["--functional", "misfit", "--sigma", value], 2, ("sigma",)))
    p.append(Probe("gradient steps 1e7", g + ["--steps", "10000000"], 2, ("steps = 10000000",)))
    p.append(Probe("gradient steps 0", g + ["--steps", "0"], 2, ("steps",)))
    p.append(Probe("gradient dt 1e12", g + ["--dt", "1e12"], 2, ("dt",)))
    for option, value in [("--functional", "nope"), ("--control", "nope"), ("--schedule", "nope"),
                          ("--riesz", "nope"), ("--when", "nope"), ("--adjoint-mode", "nope"),
                          ("--friction", "nope")]:
        p.append(Probe(f"gradient {option} {value}", g + [option, value], 2, (value,)))
    for name, words in [("platform_name", ("name = 42",)), ("platform_1e400", ("capacity",)),
                        ("platform_latin1", ("not UTF-8",)), ("platform_bad_toml", ("TOML",)),
                        ("platform_negative_cost", ("cost",)), ("missing", ("no such file",))]:
        p.append(Probe(f"gradient platform {name}", g + ["--platform", "{" + name + "}"], 2, words))
    for value in ("-1", "0"):
        p.append(Probe(f"gradient ram-slots {value}", g + ["--ram-slots", value], 2, ("ram_slots",)))
    p.append(Probe("gradient store-all does not fit", g + ["--ram-slots", "2", "--schedule", "store-all"], 2,
                   ("does not fit",)))
    p.append(Probe("gradient disk-dir is a file", g + ["--disk-dir", "{a_file}"], 2, ("disk_dir",)))
    p.append(Probe("gradient disk-dir in /proc", g + ["--disk-dir", "/proc/ckpt"], 2, ("disk_dir",)))
    p.append(Probe("gradient disk-dir read-only", g + ["--schedule", "disk-revolve", "--ram-slots", "1",
                                                       "--disk-dir", "{ro}/ckpt"], 2, ("disk_dir",),
                   setup=("ro",), mount=True))
    p.append(Probe("gradient out is a file", GRADIENT + ["--out", "{a_file}"], 2, ("is a file",)))
    p.append(Probe("gradient out holds user summary.json", GRADIENT + ["--out", "{user_out}"], 2, ("--overwrite",),
                   setup=("user_out",), user_dirs=("user_out",)))
    p.append(Probe("gradient halfar (no friction)", g + ["--scenario", "halfar_dome"], 2, ("halfar_dome",)))
    p.append(Probe("gradient log friction on a shelf", g + ["--scenario", "ice_shelf_ramp", "--friction", "log"], 2,
                   ("log",)))
    # -------------------------------------------------------------------------------- icesheet invert, bad input
    inv = ["invert", "--no-progress", "--out", "{out}"]
    p.append(Probe("invert observations missing", inv + ["--observations", "{missing}"], 2, ("observations",)))
    p.append(Probe("invert observations garbage", inv + ["--observations", "{garbage_nc}"], 2, ("observations",)))
    p.append(Probe("invert observations csv without columns", inv + ["--observations", "{bad_csv}"], 2,
                   ("observations",)))
    p.append(Probe("invert alpha -1", inv + ["--observations", "{points_csv}", "--alpha", "-1"], 2, ("alpha",)))
    p.append(Probe("invert max-iterations 0", inv + ["--observations", "{points_csv}", "--max-iterations", "0"], 2,
                   ("iterations",)))
    p.append(Probe("invert control nope", inv + ["--observations", "{points_csv}", "--control", "nope"], 2,
                   ("nope",)))
    p.append(Probe("invert time not a multiple of dt", inv + ["--observations", "{points_csv}@7", "--dt", "5"], 2,
                   ("multiple of dt",)))
    # ------------------------------------------------------------------------------------- checkpointing, bad input
    ck = "checkpointing"
    for argv, status, words in [
        (["plan", "--steps", "10000001", "--levels", "4:0:0", "--algorithm", "revolve"], 2, ("1000000",)),
        (["plan", "--steps", "-1", "--levels", "4:0:0", "--algorithm", "revolve"], 2, ("steps",)),
        (["plan", "--steps", "1e3", "--levels", "4:0:0", "--algorithm", "revolve"], 2, ("steps",)),
        (["plan", "--steps", "10", "--levels", "garbage", "--algorithm", "revolve"], 2, ("levels",)),
        (["plan", "--steps", "10", "--levels", "1e400:0:0", "--algorithm", "revolve"], 2, ("1e400",)),
        (["compare", "--steps", "10", "--levels", "4:0:0,1e400:1:1"], 2, ("1e400",)),
        (["plan", "--steps", "10", "--levels", "4:0:0", "--uf", "-1", "--algorithm", "revolve"], 2, ("uf",)),
        (["plan", "--steps", "10", "--levels", "4:0:0", "--uf", "nan", "--algorithm", "revolve"], 2, ("uf",)),
        (["plan", "--steps", "10", "--levels", "4:0:0", "--algorithm", "nope"], 2, ("nope",)),
        (["plan", "--steps", "10", "--levels", "1:0:0", "--algorithm", "store-all"], 3, ("store-all",)),
        (["plan", "--steps", "10", "--platform", "{platform_name}", "--algorithm", "revolve"], 2, ("name = 42",)),
        (["plan", "--steps", "10", "--platform", "{platform_1e400}", "--algorithm", "revolve"], 2, ("capacity",)),
        (["plan", "--steps", "10", "--platform", "{platform_latin1}", "--algorithm", "revolve"], 2, ("UTF-8",)),
        (["plan", "--steps", "10", "--platform", "{missing}", "--algorithm", "revolve"], 2, ("no such file",)),
        (["compare", "--steps", "10000001", "--levels", "4:0:0"], 2, ("1000000",)),
        (["join", "--teeth", "a,b", "--levels", "4:0:0"], 2, ("teeth",)),
        (["join", "--teeth", "10,-3", "--levels", "4:0:0"], 2, ("teeth",)),
        (["clean-checkpoints", "{missing}"], 2, ("not a directory",)),
        (["clean-checkpoints", "{a_file}"], 2, ("not a directory",)),
    ]:
        p.append(Probe(f"checkpointing {' '.join(a for a in argv if not a.startswith('{'))}", argv, status, words,
                       program=ck))
    # ------------------------------------------------------------------- with Firedrake: storage, faults, kills
    fd = dict(firedrake=True)
    p.append(Probe("run on a garbage mesh file", run + ["--mesh", "{garbage_msh}", "--out", "{out}"], 2,
                   ("mesh.file",), **fd))
    p.append(Probe("run accepted (40 km, 3 steps)", run + ["--config", "{small}", "--steps", "3", "--out", "{out}"],
                   0, check="run", **fd))
    p.append(Probe("run dt 50 is split into sub-steps", run + ["--config", "{small}", "--steps", "2", "--dt", "50",
                                                               "--out", "{out}"], 0, check="run", **fd))
    p.append(Probe("run failed step (Picard max_iterations 1)", run + ["--config", "{small_one_iteration}",
                                                                       "--steps", "3", "--out", "{out}"],
                   5, ("step 0", "failed"), **fd))
    p.append(Probe("run stale VTK frames after --overwrite", run + ["--config", "{small}", "--steps", "1",
                                                                    "--overwrite", "--out", "{earlier_run}"],
                   0, check="run", setup=("earlier_run",), user_dirs=("earlier_run",), **fd))
    p.append(Probe("run out fills up mid-run", run + ["--config", "{small}", "--steps", "20", "--out", "{tiny}/out"],
                   4, ("No space left",), setup=("tiny",), mount=True, **fd))
    p.append(Probe("gradient accepted (disk, user files beside)", DISK_GRADIENT + ["--disk-dir", "{user_disk}",
                                                                                   "--out", "{out}"],
                   0, check="gradient", setup=("user_disk",), user_dirs=("user_disk",), **fd))
    p.append(Probe("gradient disk-dir created and removed", DISK_GRADIENT + ["--disk-dir", "{tmp}/new/deeper",
                                                                             "--out", "{out}"],
                   0, check="gradient", **fd))
    p.append(Probe("gradient dt above the stable step", g + ["--dt", "60"], 2, ("stable",), **fd))
    p.append(Probe("gradient disk full before the run", DISK_GRADIENT + ["--disk-dir", "{full}/ckpt",
                                                                         "--out", "{out}"],
                   4, ("disk",), setup=("full",), mount=True, **fd))
    p.append(Probe("gradient disk fills mid-run", DISK_GRADIENT + ["--disk-dir", "{tiny}/ckpt", "--out", "{out}"],
                   4, ("No space left",), setup=("tiny",), inject="fill:{tiny}", mount=True, **fd))
    for kind in ("flip", "truncate", "delete", "swap", "append"):
        p.append(Probe(f"gradient corrupt checkpoint: {kind}", DISK_GRADIENT + ["--disk-dir", "{disk}",
                                                                                 "--out", "{out}"],
                       4, ("x_",), inject=f"corrupt:{kind}", **fd))
    p.append(Probe("gradient corrupt checkpoint: one MPI rank", DISK_GRADIENT + ["--disk-dir", "{disk}",
                                                                                "--out", "{out}"],
                   4, ("corrupted",), inject="corrupt:flip:1", ranks=2, **fd))
    after = DISK_GRADIENT + ["--disk-dir", "{disk}", "--out", "{out2}"]
    for sig, status in (("KILL", -9), ("TERM", 143), ("INT", 130)):
        p.append(Probe(f"gradient SIG{sig} mid-backward, then a next run", DISK_GRADIENT + [
            "--disk-dir", "{disk}", "--out", "{out}"], status, () if sig == "KILL" else ("SIG" + sig,),
            inject="hold:2", kill=sig, then=after, **fd))
    return p


# ------------------------------------------------------------------------------------------------- workspace
FILES = {
    "small": SMALL,
    "small_one_iteration": SMALL.replace("[solver]\n", "[solver]\nmax_iterations = 1\n"),
    "config_speed": "[ice]\ninflow_speed = -50\n",
    "config_speed_inf": "[ice]\ninflow_speed = inf\n",
    "config_accumulation_nan": "[ice]\naccumulation = nan\n",
    "config_cells_1e400": "[mesh]\ncell_size = 1e400\n",
    "config_solver_zero": "[solver]\nmax_iterations = 0\n",
    "config_unknown_key": "[ice]\ncolour = 'red'\n",
    "config_dt_text": "[time]\ndt = 'ten'\n",
    "config_bad_toml": "[time\ndt = 5\n",
    "platform_name": "name = 42\n[[levels]]\ncapacity = 4\n",
    "platform_1e400": "[[levels]]\ncapacity = 1e400\n",
    "platform_bad_toml": "[[levels]\ncapacity = 4\n",
    "platform_negative_cost": "[[levels]]\ncapacity = 4\nwrite = -1\n",
    "bad_csv": "a,b\n1,2\n",
    "points_csv": "x,y,vx,vy,sigma\n100000,40000,100,0,1\n",
}
LATIN1 = {"config_latin1": "# r\xe9glages\n[time]\ndt = 5.0\n",
          "platform_latin1": "name = \"d\xe9faut\"\n[[levels]]\ncapacity = 4\n"}


class Workspace:
    """A fresh directory per probe, with the files and mounts its set-up names (``{key}`` in argv)."""

    def __init__(self, root: Path, can_mount: bool):
        self.root, self.can_mount, self.mounts = root, can_mount, []
        self.paths = {"tmp": str(root), "out": str(root / "out"), "out2": str(root / "out2"),
                      "disk": str(root / "disk"), "missing": str(root / "missing"),
                      "a_file": str(root / "a_file.txt")}
        (root / "a_file.txt").write_text("a user's file\n")
        for key, text in FILES.items():
            self.paths[key] = self._write(key, text.encode())
        for key, text in LATIN1.items():
            self.paths[key] = self._write(key, text.encode("latin-1"))
        self.paths["garbage"] = self._write("garbage.h5", bytes(range(256)) * 8)
        self.paths["garbage_nc"] = self._write("garbage.nc", bytes(range(256)) * 8)
        self.paths["garbage_msh"] = self._write("garbage.msh", bytes(range(256)) * 8)

    def _write(self, name: str, data: bytes) -> str:
        suffix = "" if "." in name else (".csv" if name.endswith("csv") else ".toml")
        path = self.root / (name + suffix)
        path.write_bytes(data)
        return str(path)

    def mount(self, key: str, size: str) -> Path:
        path = self.root / key
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                       capture_output=True)
        self.mounts.append(path)
        self.paths[key] = str(path)
        return path

    def prepare(self, steps) -> None:
        for step in steps:
            if step == "ro":
                path = self.mount("ro", "1m")
                subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
            elif step == "tiny":
                self.mount("tiny", "64k")
            elif step == "full":
                path = self.mount("full", "64k")
                _fill(path)
            elif step in ("user_out", "user_disk", "earlier_run"):
                directory = self.root / step
                directory.mkdir()
                for name, data in USER_FILES.items():
                    (directory / name).write_bytes(data)
                if step == "user_out":  # a user's own files with the names of ours
                    (directory / "summary.json").write_text('{"mine": true}\n')
                    (directory / "steps.csv").write_text("my,own,table\n")
                self.paths[step] = str(directory)

    def close(self) -> None:
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(directory: Path) -> None:
    """Fill the file system of ``directory`` (another process writing until the disk is full)."""
    try:
        with open(directory / "filler.bin", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:  # full (the close may fail too)
        pass


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as directory:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", directory],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", directory], capture_output=True)
        return ok


# ------------------------------------------------------------------------------------------------- one probe
def _digests(directory: str) -> dict:
    path = Path(directory)
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file() and f.name in USER_FILES}


def _run_dirs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("checkpoints-*") if p.is_dir())


def _command(probe: Probe, argv: list[str], inject: str | None) -> list[str]:
    if inject is not None:
        command = [sys.executable, "-m", "benchmarks.probe_failures", "--inject", inject, "--", *argv]
    else:
        command = [sys.executable, "-m", "icesheet" if probe.program == "icesheet" else "checkpointing", *argv]
    return ["mpiexec", "-n", str(probe.ranks), *command] if probe.ranks > 1 else command


def _environment() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", MPLBACKEND="Agg")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ERROR_LINE.match(line)]


def classify(status: int, stderr: str) -> str:
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if status == 0:
        return "accepted"
    errors = error_lines(stderr)
    return "one-line" if status in DOCUMENTED_STATUSES and len(errors) == 1 else "other"


def _sanity(kind: str, out: Path) -> str:
    """'' when an accepted run's numbers are sane, else what is wrong."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        return f"no summary.json: {exc}"
    if kind == "run":
        rows = list(csv.DictReader(open(out / "steps.csv")))
        volumes = [float(r["volume"]) for r in rows]
        clamps = [float(r["clamped_volume"]) / float(r["volume"]) for r in rows if float(r["volume"]) > 0]
        if not all(math.isfinite(v) and v > 0 for v in volumes):
            return f"volumes {volumes}"
        if max(clamps, default=0) > 1e-3:
            return f"a step clamped {max(clamps):.3g} of the volume"
        if abs(volumes[-1] / volumes[0] - 1) > 0.5:
            return f"volume changed by {volumes[-1] / volumes[0] - 1:.2%}"
        if summary.get("partial"):
            return "summary marked partial"
        stale = [f.name for f in out.glob("fields_*.vtu")
                 if int(re.findall(r"\d+", f.name)[-1]) >= len(rows)]
        if stale:
            return f"stale frames {stale}"
        return ""
    value, norm = summary.get("value"), summary.get("gradient_norm", summary.get("norm"))
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        return f"J = {value!r}"
    if norm is not None and not math.isfinite(norm):
        return f"gradient norm {norm!r}"
    return ""


def run_probe(probe: Probe, root: Path, can_mount: bool, timeout: float) -> dict:
    row = {"probe": probe.name, "cli": probe.program, "expected": probe.status, "status": "", "class": "",
           "seconds": "", "ok": False, "problem": "", "line": ""}
    if probe.mount and not can_mount:
        row.update({"class": "skipped", "problem": "cannot mount a tmpfs here"})
        return row
    space = Workspace(root, can_mount)
    try:
        space.prepare(probe.setup)
        argv = [a.format(**space.paths) for a in probe.argv]
        inject = probe.inject.format(**space.paths) if probe.inject else None
        before = {d: _digests(space.paths[d]) for d in probe.user_dirs}
        start = time.perf_counter()
        if probe.kill:
            status, stderr = _killed(probe, argv, inject, timeout)
        else:
            proc = subprocess.run(_command(probe, argv, inject), cwd=root, env=_environment(), capture_output=True,
                                  text=True, timeout=timeout)
            status, stderr = proc.returncode, proc.stderr
        row["seconds"] = round(time.perf_counter() - start, 1)
        row["status"], row["class"] = status, classify(status, stderr)
        errors = error_lines(stderr)
        row["line"] = errors[0][:300] if errors else stderr.strip().splitlines()[-1][:300] if stderr.strip() else ""
        problems = []
        if probe.status == 0:
            if row["class"] != "accepted":
                problems.append(f"failed: {row['line']}")
            elif probe.check:
                out = Path(argv[argv.index("--out") + 1])
                wrong = _sanity(probe.check, out)
                if wrong:
                    row["class"] = "silently wrong"
                    problems.append(wrong)
        elif probe.kill == "KILL":
            row["class"] = "killed" if status == -signal.SIGKILL else row["class"]
            if status != -signal.SIGKILL:
                problems.append(f"status {status}, not killed")
        else:
            if row["class"] == "accepted":
                problems.append("accepted a bad input")
            elif row["class"] != "one-line" or status != probe.status:
                problems.append(f"class {row['class']}, status {status} (expected one line, status {probe.status})")
            missing = [w for w in probe.words if w not in (errors[0] if errors else "")]
            if missing:
                problems.append(f"the line lacks {missing}")
        if probe.then is not None:
            then = [a.format(**space.paths) for a in probe.then]
            proc = subprocess.run(_command(Probe("then", then, 0), then, None), cwd=root, env=_environment(),
                                  capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                problems.append(f"the next run failed ({proc.returncode}): {proc.stderr.strip()[-200:]}")
            if probe.kill == "KILL" and "orphan" not in proc.stderr:
                problems.append("the next run did not report the orphan")
        for d in probe.user_dirs:
            if _digests(space.paths[d]) != before[d]:
                problems.append(f"user files in {d} changed")
        left = _run_dirs(root)
        if left:
            problems.append(f"checkpoint directories left: {left}")
        row["problem"] = "; ".join(problems)
        row["ok"] = not problems
    except subprocess.TimeoutExpired:
        row.update({"class": "timeout", "problem": f"no end within {timeout:.0f} s"})
    finally:
        space.close()
    return row


def _killed(probe: Probe, argv, inject, timeout) -> tuple[int, str]:
    """Start the held run, signal it once it holds in the backward phase; (status, stderr)."""
    # SIGINT as in a terminal: a background job of a non-interactive shell inherits it ignored, and Python then
    # installs no KeyboardInterrupt handler
    proc = subprocess.Popen(_command(probe, argv, inject), env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("holding"):
            break
    if line.startswith("holding"):
        proc.send_signal(getattr(signal, "SIG" + probe.kill))
    else:
        proc.kill()
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, stderr


# ------------------------------------------------------------------------------------------------ the injector
def inject(spec: str, argv: list[str]) -> int:
    """Run ``icesheet ARGV`` in this process with a fault: ``corrupt:KIND[:RANK]`` (the first checkpoint file the
    disk tier writes is corrupted right after writing: flip a byte, truncate, delete, swap with the second file
    written (done at that write), append bytes; on every rank, or rank RANK only), ``fill:DIR`` (the file system
    of DIR is filled right after the first checkpoint write), ``hold:I`` (print ``holding`` and sleep at backward
    step I, for a signal)."""
    from checkpointing.adjoint import manager, tiers
    from icesheet.cli import main

    kind, _, rest = spec.partition(":")
    if kind in ("corrupt", "fill"):
        original, written = tiers.DiskTier._write, []

        def write(self, index, arrays):
            original(self, index, arrays)
            written.append(self.path_of(index))
            if kind == "fill" and len(written) == 1:
                _fill(Path(rest))
            elif kind == "corrupt":
                how, _, rank = rest.partition(":")
                if rank and int(rank) != self.comm.rank:
                    return
                _corrupt(how, written)

        tiers.DiskTier._write = write
    elif kind == "hold":
        step, backward = int(rest), manager._Execution.backward_step

        def hold(self, index):
            if index == step:
                print("holding", flush=True)
                time.sleep(3600)
            return backward(self, index)

        manager._Execution.backward_step = hold
    else:
        raise SystemExit(f"--inject {spec!r}: unknown fault")
    return main(argv)


def _corrupt(how: str, written: list[str]) -> None:
    first = written[0]
    if how == "swap":
        if len(written) == 2:
            a, b = Path(written[0]).read_bytes(), Path(written[1]).read_bytes()
            Path(written[0]).write_bytes(b)
            Path(written[1]).write_bytes(a)
        return
    if len(written) != 1:
        return
    data = Path(first).read_bytes()
    if how == "flip":
        Path(first).write_bytes(bytes([data[0] ^ 1]) + data[1:])
    elif how == "truncate":
        Path(first).write_bytes(data[: len(data) // 2])
    elif how == "delete":
        os.remove(first)
    elif how == "append":
        Path(first).write_bytes(data + b"\0" * 8)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--inject"]:
        return inject(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the probes that need no Firedrake")
    parser.add_argument("--only", action="append", default=[], help="probes whose name contains this (repeatable)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/probe_failures.csv")
    args = parser.parse_args(argv)
    selected = [p for p in probes() if (not args.fast or not p.firedrake)
                and (not args.only or any(w in p.name for w in args.only))]
    can_mount = _can_mount()
    print(f"{len(selected)} probes; tmpfs mounts {'possible' if can_mount else 'impossible (those are skipped)'}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for probe in selected:
        with tempfile.TemporaryDirectory(prefix="probe-") as directory:
            row = run_probe(probe, Path(directory), can_mount, args.timeout)
        rows.append(row)
        print(f"{'ok  ' if row['ok'] else 'FAIL'} {row['probe']}: {row['class']} {row['status']} "
              f"({row['seconds']} s) {row['problem']} | {row['line'][:160]}", flush=True)
        if args.save:  # after every probe, so that a long session keeps what it found
            row["load"] = round(os.getloadavg()[0], 1)
            save(rows, merge=bool(args.only) or args.fast)
    counts = {}
    for row in rows:
        counts[row["class"]] = counts.get(row["class"], 0) + 1
    failed = [r for r in rows if not r["ok"] and r["class"] != "skipped"]
    print(f"{len(rows)} probes: " + ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
          + f"; {len(failed)} not as they should be; load {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


#: paths that only exist on this machine (a probe's temporary directory, the environment's home), as they appear in
#: an error line; the saved table shows them as <tmp> and <path>
_MACHINE_PATHS = [(re.compile(r"/tmp/probe-[\w]+"), "<tmp>"), (re.compile(r"/(root|work|home/\w+)/[^\s'\")]*"), "<path>")]


def _portable(line: str) -> str:
    for pattern, replacement in _MACHINE_PATHS:
        line = pattern.sub(replacement, line)
    return line


def save(rows: list[dict], merge: bool = False) -> None:
    """Write the table; ``merge``: replace the saved rows of the same probes, keep the others (``--only``)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "probe_failures.csv"
    rows = [{**row, "line": _portable(row["line"]), "problem": _portable(row["problem"]),
             "load": row.get("load", round(os.getloadavg()[0], 1))} for row in rows]
    if merge and path.exists():
        names = {row["probe"] for row in rows}
        with open(path, newline="") as fh:
            kept = [row for row in csv.DictReader(fh) if row["probe"] not in names]
        rows = kept + rows
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    raise SystemExit(main())
