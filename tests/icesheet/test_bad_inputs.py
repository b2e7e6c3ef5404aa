"""A table of bad inputs (issue 14's probes): each ends the command with one line on stderr naming the thing, its
value and what is allowed, and the documented exit status (checkpointing/exits.py), before any work is done.
The commands run in-process (``main(argv)``); every case here fails before Firedrake is imported."""
import pytest

BAD_RUN = [  # (arguments of 'icesheet run', exit status, words the line must hold)
    (["--scenario", "halfar_dome", "--mesh-size", "1e9"], 2, ["mesh.cell_size = 1e+09", "at least 2"]),
    (["--mesh-size", "1e-3"], 2, ["mesh.cell_size = 0.001", "triangles", "use a cell_size >="]),
    (["--dt", "1e12"], 2, ["time.dt = 1000000000000.0", "must be <= 100000"]),
    (["--dt", "-1"], 2, ["time.dt = -1.0", "must be > 0"]),
    (["--dt", "nan"], 2, ["time.dt = nan", "finite"]),
    (["--steps", "10000000"], 2, ["time.steps = 10000000", "must be <= 1e+06"]),
    (["--config", "{config_speed}"], 2, ["ice.inflow_speed = -50.0", "must be > 0"]),
    (["--config", "{config_latin1}"], 2, ["not UTF-8 text"]),
    (["--config", "{config_bad_toml}"], 2, ["not valid TOML"]),
    (["--scenario", "nope"], 2, ["scenario = 'nope'", "available scenarios"]),
    (["--initial-state", "{garbage}"], 2, ["initial_state = ", "not an HDF5 file"]),
    (["--dt", "ten"], 2, ["argument --dt: invalid float value: 'ten'", "icesheet run --help"]),
    (["--out", "{config_speed}"], 2, ["out = ", "is a file, not a directory"]),
    (["--out", "/proc/icesheet-out"], 2, ["out = '/proc/icesheet-out'", "not a writable directory"]),
]

GRADIENT = ["--functional", "vaf", "--control", "friction", "--steps", "2", "--no-progress"]
BAD_GRADIENT = [  # (arguments of 'icesheet gradient' besides GRADIENT and --out, exit status, words)
    (["--functional", "misfit", "--sigma", "inf"], 2, ["sigma = inf", "finite number > 0"]),
    (["--functional", "misfit", "--sigma", "0"], 2, ["sigma = 0.0", "finite number > 0"]),
    (["--steps", "10000000"], 2, ["time.steps = 10000000", "must be <= 1e+06"]),
    (["--dt", "1e12"], 2, ["time.dt = 1000000000000.0", "must be <= 100000"]),
    (["--platform", "{platform_1e400}"], 2, ["capacity = inf", "write capacity = \"inf\""]),
    (["--platform", "{platform_name}"], 2, ["name = 42", "must be a string"]),
    (["--disk-dir", "{config_speed}"], 2, ["disk_dir (level 1) = ", "not a writable directory"]),
    (["--disk-dir", "/proc/ckpt"], 2, ["disk_dir (level 1) = '/proc/ckpt'", "not a writable directory"]),
    (["--out", "{config_speed}"], 2, ["out = ", "is a file, not a directory"]),
    (["--out", "{earlier_gradient}"], 2, ["holds the output of an earlier run (summary.json)", "--overwrite"]),
    (["--ram-slots", "0"], 2, ["ram_slots = 0", "no room for x_0"]),
    (["--ram-slots", "2", "--schedule", "store-all", "--steps", "10"], 2, ["'store-all' does not fit l = 10"]),
]

BAD_PLAN = [  # (arguments of 'checkpointing', exit status, words)
    (["plan", "--steps", "10", "--platform", "{platform_name}", "--algorithm", "revolve"], 2,
     ["name = 42", "must be a string"]),
    (["plan", "--steps", "10", "--platform", "{platform_1e400}", "--algorithm", "revolve"], 2,
     ["capacity = inf", "write capacity = \"inf\""]),
    (["plan", "--steps", "10", "--platform", "{platform_latin1}", "--algorithm", "revolve"], 2, ["not UTF-8"]),
    (["plan", "--steps", "10000001", "--levels", "4:0:0", "--algorithm", "revolve"], 2, ["l <= 1000000"]),
    (["clean-checkpoints", "{missing}"], 2, ["not a directory"]),
]


@pytest.fixture
def files(tmp_path):
    paths = {
        "config_speed": ("[ice]\ninflow_speed = -50\n", "utf-8"),
        "config_latin1": ("# r\xe9glages\n[time]\ndt = 5.0\n", "latin-1"),
        "config_bad_toml": ("[time\ndt = 5\n", "utf-8"),
        "platform_name": ("name = 42\n[[levels]]\ncapacity = 4\n", "utf-8"),
        "platform_1e400": ("[[levels]]\ncapacity = 1e400\n", "utf-8"),
        "platform_latin1": ("name = \"d\xe9faut\"\n[[levels]]\ncapacity = 4\n", "latin-1"),
    }
    found = {"missing": str(tmp_path / "missing"), "garbage": str(tmp_path / "garbage.h5"),
             "earlier_gradient": str(tmp_path / "earlier")}
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "summary.json").write_text("{}")
    (tmp_path / "garbage.h5").write_bytes(bytes(range(256)) * 8)
    for key, (text, encoding) in paths.items():
        path = tmp_path / f"{key}.toml"
        path.write_bytes(text.encode(encoding))
        found[key] = str(path)
    return found


def check_one_line(capsys, status, expected_status, prog, words):
    captured = capsys.readouterr()
    assert status == expected_status, captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith(prog.split()[0]), captured.err
    assert ": error: " in captured.err, captured.err
    assert "Traceback" not in captured.err
    for word in words:
        assert word in captured.err, captured.err


@pytest.mark.parametrize("arguments, expected_status, words", BAD_RUN, ids=[" ".join(a) for a, _, _ in BAD_RUN])
def test_bad_run_input_is_one_line_before_any_work(arguments, expected_status, words, files, tmp_path, capsys):
    from icesheet.cli import main

    out = tmp_path / "out"
    status = main(["run", "--out", str(out), *[a.format(**files) for a in arguments], "--no-progress"])
    check_one_line(capsys, status, expected_status, "icesheet run", words)
    assert not out.exists()


@pytest.mark.parametrize("arguments, expected_status, words", BAD_GRADIENT,
                         ids=[" ".join(a) for a, _, _ in BAD_GRADIENT])
def test_bad_gradient_input_is_one_line_before_any_work(arguments, expected_status, words, files, tmp_path, capsys):
    from icesheet.cli import main

    out = tmp_path / "out"
    status = main(["gradient", *GRADIENT, "--out", str(out), *[a.format(**files) for a in arguments]])
    check_one_line(capsys, status, expected_status, "icesheet gradient", words)
    assert not out.exists()


@pytest.mark.parametrize("arguments, expected_status, words", BAD_PLAN, ids=[" ".join(a) for a, _, _ in BAD_PLAN])
def test_bad_checkpointing_input_is_one_line(arguments, expected_status, words, files, capsys):
    from checkpointing.cli import main

    status = main([a.format(**files) for a in arguments])
    check_one_line(capsys, status, expected_status, "checkpointing", words)


@pytest.mark.firedrake
def test_a_garbage_mesh_file_is_one_line(files, tmp_path, capsys):
    from icesheet.cli import main

    mesh = tmp_path / "garbage.msh"
    mesh.write_bytes(bytes(range(256)) * 8)
    status = main(["run", "--mesh", str(mesh), "--out", str(tmp_path / "out"), "--no-progress"])
    check_one_line(capsys, status, 2, "icesheet run", [f"mesh.file = {str(mesh)!r}: not a readable mesh"])
