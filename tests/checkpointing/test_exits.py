"""The shared error path of the two command lines (checkpointing/exits.py): documented statuses, one line, rank 0."""
import errno
import io

import pytest

from checkpointing import exits
from checkpointing.cli import UsageError
from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.platform import PlatformError
from checkpointing.rundirs import Terminated
from icesheet.errors import InputError, PhysicsGuardError, ScenarioError


class ConvergenceError(Exception):
    """Stands for firedrake.ConvergenceError, which is recognised by name."""


@pytest.mark.parametrize("exc, status", [
    (UsageError("x"), 2), (InputError("x"), 2), (ScenarioError("x"), 2), (PlatformError("x"), 2),
    (ScheduleDoesNotFit("x"), 3), (OSError(errno.ENOSPC, "No space left on device", "/d/f"), 4),
    (ConvergenceError("x"), 5), (PhysicsGuardError("x"), 6), (KeyboardInterrupt(), 130), (Terminated(), 143),
    (ZeroDivisionError("x"), 1),
])
def test_each_failure_has_its_documented_status(exc, status):
    assert exits.exit_status(exc) == status
    assert f" {status} " in exits.__doc__ or f" {status}  " in exits.__doc__


def test_a_full_disk_is_one_line_naming_the_file():
    stream = io.StringIO()
    status = exits.report_failure("icesheet run", OSError(errno.ENOSPC, "No space left on device", "/d/f.csv"),
                                  stream=stream)
    assert status == 4
    assert stream.getvalue() == ("icesheet run: error: '/d/f.csv': No space left on device (errno 28); check the "
                                 "path, its permissions and the free space\n")


def test_an_unexpected_error_is_an_internal_error_with_the_traceback_only_under_debug():
    try:
        1 / 0
    except ZeroDivisionError as exc:
        error = exc
    stream = io.StringIO()
    assert exits.report_failure("checkpointing", error, stream=stream) == 1
    assert stream.getvalue().count("\n") == 1 and "internal error: ZeroDivisionError" in stream.getvalue()
    assert "--debug" in stream.getvalue()
    stream = io.StringIO()
    exits.report_failure("checkpointing", error, debug=True, stream=stream)
    assert "Traceback (most recent call last)" in stream.getvalue() and "1 / 0" in stream.getvalue()


def test_only_rank_0_prints(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    stream = io.StringIO()
    assert exits.report_failure("icesheet run", InputError("dt = -1: must be > 0"), stream=stream) == 2
    assert stream.getvalue() == ""


def test_a_signal_inside_a_solver_callback_counts_as_the_signal():
    """PETSc turns an exception raised in a Python callback into its own error, caused by it."""
    for signal_error, status, words in ((Terminated(), 143, "terminated by SIGTERM"),
                                        (KeyboardInterrupt(), 130, "interrupted (SIGINT)")):
        try:
            try:
                raise signal_error
            except BaseException as inner:
                raise RuntimeError("error code 101 [0] SNESSolve()") from inner
        except RuntimeError as petsc_error:
            try:
                raise InputError("step 10 failed") from petsc_error
            except InputError as outer:
                assert exits.exit_status(outer) == status and exits.one_line(outer) == words
