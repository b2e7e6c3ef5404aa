"""The documentation runs: every command in a fenced code block of README.md and docs/*.md is executed, and every
file a tracked file names exists.

Commands.  A fenced block without a language (or ``sh``, ``bash``, ``console``) holds shell commands, one per line
(``#`` starts a comment, a trailing backslash continues the line).  Blocks in which lines start with ``$ `` are
transcripts: the lines after a command, up to the next command, are its expected output, compared exactly, and a
last line ``(exit status N)`` is the expected exit status (0 otherwise).  A ``python`` block of README.md is run as
a script.  Other blocks (``toml``, ``python`` in docs/ that needs a model in scope) are not run.

The commands of one block run in order in one ``bash`` (``set -e``; a later line may use a variable an earlier line
set or a file it wrote), and the blocks of one document in order in one fresh temporary directory (a block may read
what an earlier block wrote; relative output paths such as ``out/run`` land there; ``scripts/env.sh`` is sourced
from the repository), with the environment of the test run.  To keep the test short, commands are rewritten by this
documented table, and nothing else:

================================================  =================================================================
documented                                        run as
================================================  =================================================================
``make T`` (``run``, ``test``, ``test-python``,   ``make -n T`` in the repository: the target exists and its recipe
``test-firedrake``, ``figures``, ``bench``)        expands (running them takes minutes to an hour)
``python -m experiments.X ... --full``           ``python -m experiments.X --help``: the full sizes take minutes to
                                                  hours; the default size of the same experiment is run where shown
``pytest -m mpi``                                 ``pytest -m mpi --collect-only -q`` in the repository: the marker
                                                  selects tests (running them is the test suite's job)
``NAME=value`` (a line of its own), then         ``value`` in place of ``$NAME`` in the block's later commands (as
``$NAME``                                         the shell does), before the rules below
``python -m experiments.X --out D`` or            a copy of ``D`` from the document that ran it first in this test
``icesheet invert ... --out D`` again, in a       session (the same default-size experiment or inversion, run once)
later document, word for word
a command of a block that a transcript (``$ ``)   nothing: the transcript runs it and compares its output
shows with its output, word for word
``icesheet run|gradient|ensemble`` ``--steps N``  ``--steps 2``; without ``--steps``: ``--steps 2`` appended
``icesheet run|gradient|ensemble`` without        ``--mesh-size 40000`` appended (coarse mesh, m)
``--mesh-size``
``icesheet invert``                               ``--max-iterations 5 --max-solves 2`` appended where not given:
                                                  every path of the command (files, weight search, L-curve, TV,
                                                  resume, outputs) runs, on fewer iterations (a coarser mesh is no
                                                  cheaper: its misfit cannot reach the noise level); convergence is
                                                  measured by ``experiments.file_inversion`` and the tests
``/tmp/ckpt``                                     a directory inside the temporary directory
``my.toml``                                       a config file ``[time] dt = 5.0`` written beforehand
================================================  =================================================================

After an ``icesheet`` command the output directory it documents (``--out``, or the default ``out/run``,
``out/gradient``, ``output/ensemble`` and ``output/invert``) must hold ``summary.json``.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from support import MPI_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = ("", "sh", "bash", "console")
MAKE_TARGETS = ("run", "test", "test-python", "test-firedrake", "figures", "bench", "smoke", "install")
SMALL_STEPS = "2"
COARSE_MESH = "40000"
FEW_ITERATIONS = {"--max-iterations": "5", "--max-solves": "2"}
CONFIG = "[time]\ndt = 5.0\n"
DEFAULT_OUT = {"run": "out/run", "gradient": "out/gradient", "ensemble": "output/ensemble",
               "invert": "output/invert"}
#: default-size experiments and inversions already run in this session: the command's words (shlex.join) -> the
#: directory it ran in
ALREADY_RUN: dict[str, Path] = {}


def fenced_blocks(path: Path) -> list[tuple[str, list[str], int]]:
    """``(language, lines, first line number)`` of every fenced code block of ``path``."""
    blocks, language, lines, start = [], None, [], 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and language is None:
            language, lines, start = fence.group(1), [], number + 1
        elif fence:
            blocks.append((language, lines, start))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _join_continuations(lines: list[str]) -> list[str]:
    joined, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            joined.append(pending + line)
            pending = ""
    return joined


def _strip_comment(command: str) -> str:
    """``command`` without a trailing ``# comment`` (a ``#`` after whitespace; no command here quotes one)."""
    return re.sub(r"(^|\s)#.*$", "", command).strip()


def commands_of(path: Path) -> list[dict]:
    """Every command documented in ``path``: ``{"command", "output" (None: not checked), "status", "where"}``."""
    found = []
    for language, lines, start in fenced_blocks(path):
        where = f"{path.relative_to(ROOT)}:{start}"
        if language == "python" and path.name == "README.md":
            found.append({"python": "\n".join(lines), "where": where})
        if language not in SHELL_LANGUAGES:
            continue
        lines = _join_continuations(lines)
        if any(line.startswith("$ ") for line in lines):
            for item in _transcript(lines):
                found.append({**item, "where": where})
            continue
        commands = [command for command in map(_strip_comment, lines) if command]
        if commands:
            found.append({"block": commands, "where": where})
    return found


def _transcript(lines: list[str]) -> list[dict]:
    items = []
    for line in lines:
        if line.startswith("$ "):
            items.append({"command": line[2:].strip(), "output": [], "status": 0})
        elif items:
            status = re.fullmatch(r"\(exit status (\d+)\)", line.strip())
            if status:
                items[-1]["status"] = int(status.group(1))
            else:
                items[-1]["output"].append(line)
    return items


def rewrite(command: str, tmp: Path) -> tuple[str, Path | None]:
    """The command as run (the table of the module docstring) and the output directory to check (or None)."""
    command = command.replace("/tmp/ckpt", str(tmp / "ckpt"))
    command = command.replace("source scripts/env.sh", f"source {shlex.quote(str(ROOT / 'scripts' / 'env.sh'))}")
    words = shlex.split(command)
    if words[:1] == ["make"] and len(words) == 2 and words[1] in MAKE_TARGETS:
        return f"make -n -C {shlex.quote(str(ROOT))} {words[1]}", None
    if words[:2] == ["python", "-m"] and "--full" in words:
        return f"cd {shlex.quote(str(ROOT))} && python -m {words[2]} --help", None
    if _is_reusable(words) and ALREADY_RUN.get(shlex.join(words), tmp) != tmp:
        out = words[words.index("--out") + 1]
        source = shlex.quote(str(ALREADY_RUN[shlex.join(words)] / out))
        return f"mkdir -p {shlex.quote(out)} && cp -r {source}/. {shlex.quote(out)}/", None
    if "pytest" in words and "-m" in words:
        return f"cd {shlex.quote(str(ROOT))} && {command} --collect-only -q", None
    if "icesheet" not in words:
        return command, None
    position = words.index("icesheet")
    if position + 1 >= len(words) or words[position + 1] not in DEFAULT_OUT:
        return command, None
    subcommand = words[position + 1]
    out = tmp / (words[words.index("--out") + 1] if "--out" in words else DEFAULT_OUT[subcommand])
    if subcommand == "invert":  # appended as text: the command may use shell variables ($OBS)
        return command + "".join(f" {option} {value}" for option, value in FEW_ITERATIONS.items()
                                 if option not in words), out
    if "--steps" in words:
        words[words.index("--steps") + 1] = SMALL_STEPS
    else:
        words += ["--steps", SMALL_STEPS]
    if "--mesh-size" not in words:
        words += ["--mesh-size", COARSE_MESH]
    return shlex.join(words), out


def _is_reusable(words: list[str]) -> bool:
    """A default-size experiment or an inversion with an explicit output directory: ``python -m experiments.X --out
    D`` or ``icesheet invert ... --out D``."""
    experiment = words[:2] == ["python", "-m"] and len(words) > 2 and words[2].startswith("experiments.")
    return ((experiment or words[:2] == ["icesheet", "invert"]) and "--out" in words[:-1] and "--full" not in words
            and "--resume" not in words)


def _environment() -> dict:
    env = dict(os.environ, **MPI_ENVIRONMENT, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


DOCUMENTED = [item for path in DOCUMENTS for item in commands_of(path)]


def test_the_documents_have_commands():
    """The extraction finds what the README shows (a broken fence would silently skip everything)."""
    readme = [command for item in DOCUMENTED if item["where"].startswith("README.md")
              for command in item.get("block", [item.get("command", "")])]
    assert any(c.startswith("icesheet run") for c in readme) and any(c.startswith("icesheet gradient") for c in readme)
    assert any(c.startswith("checkpointing compare") for c in readme)
    assert any("python" in item for item in DOCUMENTED)
    assert any(item.get("output") for item in DOCUMENTED), "no transcript with output found in docs/"


def _needs_firedrake(item: dict) -> bool:
    text = " ".join(item.get("block", [item.get("command", "")]))
    return any(word in text for word in ("icesheet", "mpiexec", "make", "pytest", "experiments"))


def _label(item: dict) -> str:
    return f"{item['where']}:{item.get('command', item.get('block', ['python'])[0])[:40]}"


@pytest.mark.parametrize("item", [pytest.param(i, marks=[pytest.mark.firedrake] if _needs_firedrake(i) else [],
                                               id=_label(i))
                                  for i in DOCUMENTED])
def test_documented_command_runs(item, tmp_path, tmp_path_factory):
    (tmp_path / "my.toml").write_text(CONFIG)
    if "python" in item:
        proc = subprocess.run([sys.executable, "-c", item["python"]], cwd=tmp_path, env=_environment(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{item['where']}: python block failed:\n{proc.stderr[-3000:]}"
        return
    if "block" in item:
        _run_block(item, _document_directory(item, tmp_path_factory))
        return
    command, out = rewrite(item["command"], tmp_path)
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=_environment(), capture_output=True, text=True,
                          timeout=600)
    shown = f"{item['where']}: `{item['command']}` (run as `{command}`)"
    assert proc.returncode == item["status"], f"{shown} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n" \
                                              f"{proc.stderr[-3000:]}"
    if item["output"] is not None:
        printed = (proc.stdout + proc.stderr).rstrip("\n").splitlines()
        assert printed == item["output"], f"{shown} printed something else than documented"
    if out is not None:
        assert (out / "summary.json").is_file(), f"{shown}: no summary.json in {out}"


_DOCUMENT_DIRECTORIES: dict[str, Path] = {}


def _document_directory(item: dict, factory) -> Path:
    """One directory per document, shared by its blocks in order (a block may read what an earlier one wrote)."""
    document = item["where"].split(":")[0]
    if document not in _DOCUMENT_DIRECTORIES:
        directory = factory.mktemp(Path(document).stem)
        (directory / "my.toml").write_text(CONFIG)
        _DOCUMENT_DIRECTORIES[document] = directory
    return _DOCUMENT_DIRECTORIES[document]


def _expand_assignments(commands: list[str]) -> list[str]:
    """``commands`` with ``$NAME`` (or ``${NAME}``) replaced by the value of an earlier plain ``NAME=value`` line."""
    values, expanded = {}, []
    for command in commands:
        for name, value in values.items():
            command = re.sub(rf"\$(?:{name}\b|\{{{name}\}})", lambda _: value, command)
        assignment = re.fullmatch(r"(\w+)=(\S+)", command)
        if assignment:
            values[assignment.group(1)] = assignment.group(2)
        expanded.append(command)
    return expanded


#: commands that a transcript runs and whose output it compares
TRANSCRIBED = {item["command"] for item in DOCUMENTED if item.get("output")}


def _run_block(item: dict, tmp: Path) -> None:
    """The commands of one block in order, in one shell (a later line may use what an earlier one set or wrote)."""
    commands = [c for c in _expand_assignments(item["block"]) if c not in TRANSCRIBED]
    rewritten = [rewrite(command, tmp) for command in commands]
    script = "set -e\n" + "\n".join(command for command, _ in rewritten)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp, env=_environment(), capture_output=True, text=True,
                          timeout=900)
    shown = f"{item['where']}: the block run as\n{script}\n"
    assert proc.returncode == 0, f"{shown}exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    for command, out in rewritten:
        if out is not None:
            assert (out / "summary.json").is_file(), f"{shown}`{command}`: no summary.json in {out}"
    for words in map(shlex.split, commands):
        if _is_reusable(words):
            ALREADY_RUN.setdefault(shlex.join(words), tmp)


# ---------------------------------------------------------------------------------------- files that do not exist
#: Top directories that only exist on particular machines (a build host's work tree, root's and users' homes), and
#: the steering folder beside a checkout; kept as names so that this file does not itself cite a machine path.
MACHINE_DIRECTORIES = ("work", "root", r"home/\w+")
STEERING_FOLDER = "shared"
MACHINE_PATH = re.compile(r"(?<![\w.])(" + "|".join(f"/{d}/" for d in MACHINE_DIRECTORIES)
                          + rf"|\.\./{STEERING_FOLDER}/)")
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.md)\b")


def tracked_files() -> list[Path]:
    proc = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"git ls-files failed in {ROOT}: {proc.stderr.strip()}")
    return [ROOT / name for name in proc.stdout.splitlines() if (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return None


def missing_names(path: Path, text: str) -> list[str]:
    """Machine paths in ``text``, and ``.md`` files it names that exist neither relative to the repository root nor
    to ``path``'s folder."""
    problems = [f"machine path {m.group(1)!r}" for m in MACHINE_PATH.finditer(text)]
    for match in MARKDOWN_NAME.finditer(text):
        name = match.group(1)
        if name.startswith("http") or any(part in name for part in ("://", "*")):
            continue
        if not ((ROOT / name).is_file() or (path.parent / name).is_file()):
            problems.append(f"missing file {name!r}")
    return problems


def test_no_tracked_file_names_a_machine_path_or_a_missing_markdown_file():
    this = Path(__file__).resolve()
    found = {}
    for path in tracked_files():
        text = _text(path)
        relative = str(path.relative_to(ROOT))
        if text is None or path.resolve() == this:
            continue
        problems = missing_names(path, text)
        if problems:
            found[relative] = problems
    assert not found, f"files naming what is not in the repository: {found}"


def test_the_checker_catches_what_it_should(tmp_path):
    """The checker itself: a machine path and a missing .md are reported, existing ones are not."""
    path = ROOT / "icesheet" / "model.py"
    assert missing_names(path, "see docs/model.md and docs/checkpointing.md, or README.md") == []
    assert missing_names(path, "see notes/nowhere.md") == ["missing file 'notes/nowhere.md'"]
    assert missing_names(path, "see reading-list.md section 5") == ["missing file 'reading-list.md'"]
    assert missing_names(ROOT / "docs" / "model.md", "see references.md") == []  # docs/references.md, relative
    work, steering = f"/{MACHINE_DIRECTORIES[0]}/", f"../{STEERING_FOLDER}/"
    assert missing_names(path, f"built in {work}main") == [f"machine path '{work}'"]
    assert missing_names(path, f"read {steering}x") == [f"machine path '{steering}'"]
