"""Output policy (icesheet/outdir.py): --out must be a writable directory, checked before any work; an earlier
run's outputs are refused unless --overwrite, which replaces exactly them (no stale VTK frame stays); user files
are never touched."""
import json

import pytest

from icesheet.outdir import check_output_directory, clear_earlier_outputs
from icesheet.output import RUN_FILES


def earlier_run(out, frames):
    (out / "fields").mkdir(parents=True)
    for k in range(frames):
        (out / "fields" / f"fields_{k}.vtu").write_text("old frame")
    for name in ("fields.pvd", "summary.json", "steps.csv"):
        (out / name).write_text("old")


def test_an_earlier_run_is_refused_without_overwrite_and_nothing_changes(tmp_path):
    from icesheet.errors import InputError

    earlier_run(tmp_path, 12)
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    earlier = r"holds the output of an earlier run \(steps.csv, summary.json, fields.pvd, .*--overwrite"
    with pytest.raises(InputError, match=earlier):
        check_output_directory(tmp_path, RUN_FILES, overwrite=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_overwrite_removes_exactly_our_files(tmp_path):
    earlier_run(tmp_path, 12)
    user = [tmp_path / "notes.txt", tmp_path / "fields" / "my_fields.txt", tmp_path / "summary.json.bak"]
    for f in user:
        f.write_text("mine")
    check_output_directory(tmp_path, RUN_FILES, overwrite=True)
    clear_earlier_outputs(tmp_path, RUN_FILES)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.relative_to(tmp_path) for p in user)


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_text("a file"), "is a file, not a directory"),
    (lambda p: None, None),
])
def test_out_must_be_a_directory(tmp_path, make, words):
    from icesheet.errors import InputError

    out = tmp_path / "out"
    make(out)
    if words:
        with pytest.raises(InputError, match=words):
            check_output_directory(out, RUN_FILES, overwrite=False)
    else:
        check_output_directory(out / "deeper", RUN_FILES, overwrite=False)
        assert not out.exists()  # checked, not created


@pytest.mark.parametrize("out", ["/proc/icesheet-out", "/proc/self/status/out"])
def test_a_special_file_system_is_refused(out):
    from icesheet.errors import InputError

    with pytest.raises(InputError, match="not a writable directory"):
        check_output_directory(out, RUN_FILES, overwrite=False)


@pytest.mark.firedrake
def test_a_rerun_with_overwrite_leaves_no_stale_frame(tmp_path, capsys):
    from icesheet.cli import main

    out = tmp_path / "run"
    earlier_run(out, 12)
    common = ["run", "--mesh-size", "40000", "--steps", "2", "--dt", "1", "--no-progress", "--out", str(out)]
    assert main(common) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(common + ["--overwrite"]) == 0
    frames = sorted(p.name for p in (out / "fields").iterdir())
    assert len(frames) == 3 and "fields_11.vtu" not in frames
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
