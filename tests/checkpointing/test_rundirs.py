"""Owner records of checkpoint run directories: orphans (owner dead on this host) are found and removed, nothing
else is touched; SIGTERM unwinds like SIGINT (pure Python: checkpointing/rundirs.py)."""
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

from checkpointing import rundirs
from checkpointing.cli import main as checkpointing_main


def dead_process() -> rundirs.Process:
    """A process of this host that has exited (its pid is free, or reused by a process started later)."""
    child = subprocess.Popen([sys.executable, "-c", "import os; print(open(f'/proc/{os.getpid()}/stat').read())"],
                             stdout=subprocess.PIPE, text=True)
    stat = child.communicate()[0]
    started = int(stat[stat.rindex(")") + 2:].split()[19])
    return rundirs.Process(socket.gethostname(), child.pid, started, rundirs._boot_id())


def make_run_directory(parent, run_id, processes, files=("x0.rank0.bin",)):
    path = rundirs.create_run_directory(str(parent), run_id, processes, "2026-11-28T21:00:00+00:00")
    for name in files:
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(b"\0" * 100)
    return path


def test_liveness_of_processes():
    me = rundirs.Process.current()
    assert me.alive() is True
    assert dead_process().alive() is False
    assert rundirs.Process(me.host, me.pid, me.started + 1, me.boot_id).alive() is False  # pid reused
    assert rundirs.Process(me.host, me.pid, me.started, "another-boot").alive() is False  # host rebooted
    assert rundirs.Process(me.host + "-elsewhere", 1).alive() is None  # cannot tell


def test_only_orphans_are_removed_and_each_removal_is_logged(tmp_path, caplog):
    me = rundirs.Process.current()
    orphan = make_run_directory(tmp_path, "dead", [dead_process(), dead_process()], ["x0.rank0.bin", "x3.rank1.bin"])
    live = make_run_directory(tmp_path, "live", [me, dead_process()])
    remote = make_run_directory(tmp_path, "remote", [rundirs.Process("elsewhere.example", 12)])
    unknown = tmp_path / (rundirs.PREFIX + "old-version")  # no owner record, holds a file: kept
    unknown.mkdir()
    (unknown / "x1.rank0.bin").write_bytes(b"1")
    stale = tmp_path / ("." + rundirs.PREFIX + "killed-while-created" + rundirs.PARTIAL_SUFFIX)
    stale.mkdir()
    old = time.time() - 2 * rundirs.GRACE_SECONDS
    os.utime(stale, (old, old))
    user_empty = tmp_path / (rundirs.PREFIX + "2024")  # a user's directory with our prefix, empty and old: kept
    user_empty.mkdir()
    os.utime(user_empty, (old, old))
    user_files = [tmp_path / "notes.txt", tmp_path / (rundirs.PREFIX + "look-alike.txt"),
                  tmp_path / ("my-" + rundirs.PREFIX + "dir") / "x0.rank0.bin"]
    for f in user_files:
        f.parent.mkdir(exist_ok=True)
        f.write_text("mine")
    status = {e.path: e.status for e in rundirs.scan(str(tmp_path))}
    assert status == {orphan: "dead", live: "live", remote: "other host", str(unknown): "no owner record",
                      str(stale): "stale, no owner record", str(user_empty): "no owner record"}
    with caplog.at_level(logging.WARNING, logger="checkpointing.rundirs"):
        removed = rundirs.remove_orphans(str(tmp_path))
    assert sorted(e.path for e in removed) == sorted([orphan, str(stale)])
    assert not os.path.exists(orphan) and not stale.exists()
    assert os.path.isdir(live) and os.path.isdir(remote) and unknown.is_dir() and user_empty.is_dir()
    assert all(f.read_text() == "mine" for f in user_files)
    (message,) = [r.getMessage() for r in caplog.records if orphan in r.getMessage()]
    assert "removed the orphaned checkpoint directory" in message and "2 files, 200 bytes" in message


def test_clean_checkpoints_command_lists_and_removes(tmp_path):
    orphan = make_run_directory(tmp_path, "dead", [dead_process()])
    live = make_run_directory(tmp_path, "live", [rundirs.Process.current()])
    out = io.StringIO()
    assert checkpointing_main(["clean-checkpoints", str(tmp_path), "--dry-run"], out=out) == 0
    assert f"would remove: {orphan}" in out.getvalue() and f"kept: {live}" in out.getvalue()
    assert os.path.isdir(orphan)
    out = io.StringIO()
    assert checkpointing_main(["clean-checkpoints", str(tmp_path), "--json"], out=out) == 0
    rows = {row["path"]: row for row in json.loads(out.getvalue())}
    assert rows[orphan]["removed"] and rows[orphan]["status"] == "dead" and rows[orphan]["files"] == 1
    assert not rows[live]["removed"] and rows[live]["status"] == "live"
    assert not os.path.exists(orphan) and os.path.isdir(live)


def test_clean_checkpoints_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert checkpointing_main(["clean-checkpoints", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err and "not a directory" in err


def test_created_directories_are_removed_only_while_empty(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    created = rundirs.missing_ancestor(str(target))
    assert created == str(tmp_path / "a")
    target.mkdir(parents=True)
    (tmp_path / "a" / "keep.txt").write_text("user file")
    rundirs.remove_created_directories(str(target), created)
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a" / "keep.txt").exists()
    assert rundirs.missing_ancestor(str(tmp_path)) is None


def test_sigterm_unwinds_like_sigint_and_exits_143(tmp_path):
    marker = tmp_path / "cleaned"
    code = textwrap.dedent(f"""
        import os, signal
        from checkpointing import rundirs
        with rundirs.terminate_cleanly():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                import time; time.sleep(30)
            finally:
                open({str(marker)!r}, "w").write("finally ran")
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert marker.read_text() == "finally ran"


def test_sigterm_handler_is_restored_after_nested_holds():
    with rundirs.terminate_cleanly():
        with rundirs.terminate_cleanly():
            assert signal.getsignal(signal.SIGTERM) is rundirs._raise_terminated
        assert signal.getsignal(signal.SIGTERM) is rundirs._raise_terminated
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_sigterm_swallowed_by_a_destructor_is_raised_at_the_next_check(tmp_path):
    """Python ignores an exception raised in __del__ or a weakref callback: the handler's Terminated is lost there,
    and check_terminated() (called by the time loop and the checkpoint manager at every step) raises it again."""
    marker = tmp_path / "cleaned"
    code = textwrap.dedent(f"""
        import os, signal
        from checkpointing import rundirs

        class SignalledWhileDeleted:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                sum(range(10))  # the handler runs here, inside __del__: its exception is ignored

        with rundirs.terminate_cleanly():
            try:
                SignalledWhileDeleted()
                for step in range(100):
                    rundirs.check_terminated()
                print("not terminated")
            finally:
                open({str(marker)!r}, "w").write("finally ran")
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in proc.stderr  # the first exception was indeed lost
    assert proc.returncode == 128 + signal.SIGTERM and "not terminated" not in proc.stdout, proc.stderr
    assert marker.read_text() == "finally ran"
