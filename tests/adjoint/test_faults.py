"""Faults surface as clear errors, before the run when they can be foreseen, and leave no files behind."""
import pytest

pytestmark = pytest.mark.firedrake

STEPS = 10
DT = 0.05


class CountingModel:
    """The toy model, with its step calls counted, optionally raising a solver failure at call ``fail_at``."""

    def __init__(self, model, fail_at=None):
        self.model, self.fail_at, self.calls = model, fail_at, 0

    @property
    def state(self):
        return self.model.state

    def step(self, dt):
        import firedrake as fd

        self.calls += 1
        if self.calls == self.fail_at:
            raise fd.ConvergenceError("Nonlinear solve failed to converge after 0 nonlinear iterations "
                                      "(injected by the test)")
        return self.model.step(dt)


@pytest.fixture(scope="module")
def toy_model():
    from support.toymodel import NonlinearDiffusion

    return NonlinearDiffusion(6)


def manager_for(toy_model, tiers, fail_at=None):
    from checkpointing.adjoint import CheckpointManager, TimeLoop
    from support.toymodel import misfit_functional

    counting = CountingModel(toy_model, fail_at)
    loop = TimeLoop(counting, [DT] * STEPS, (toy_model.source,), misfit_functional(toy_model, STEPS))
    return CheckpointManager(loop, tiers), counting


def disk_revolve():
    """Disk-Revolve with 2 RAM slots and a disk costing 2 forward steps per write or read: it puts x_0 on disk."""
    from checkpointing.planners import plan
    from checkpointing.platform import Platform

    return plan("disk-revolve", STEPS, Platform.from_spec("2:0:0,inf:2:2"))


def files_under(path):
    return sorted(p for p in path.rglob("*"))


def test_corrupted_checkpoint_file_gives_a_checksum_error_naming_it(toy_model, tmp_path, monkeypatch):
    from checkpointing.adjoint import ChecksumError, DiskTier, RamTier

    disk = DiskTier(tmp_path / "disk", name="ssd")
    manager, _ = manager_for(toy_model, [RamTier(2), disk])
    original_write, corrupted = disk.write, []

    def write_then_flip_one_byte(index, arrays):
        original_write(index, arrays)
        path = disk.path_of(index)
        with open(path, "r+b") as fh:
            fh.seek(17)
            byte = fh.read(1)
            fh.seek(17)
            fh.write(bytes([byte[0] ^ 0x01]))
        corrupted.append(path)

    monkeypatch.setattr(disk, "write", write_then_flip_one_byte)
    before = toy_model.u.dat.data_ro.copy()
    with pytest.raises(ChecksumError) as info:
        manager.run(disk_revolve())
    assert len(corrupted) == 1 and corrupted[0].endswith("x0.rank0.bin")
    assert f"{corrupted[0]!r} (x_0, tier 'ssd') is corrupted" in str(info.value)
    assert files_under(tmp_path / "disk") == []
    assert (toy_model.u.dat.data_ro == before).all(), "x_0 is put back after a failure"


def test_directory_that_cannot_be_created_fails_before_any_step(toy_model, tmp_path):
    from checkpointing.adjoint import DiskTier, RamTier, StorageUnavailableError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = blocker / "checkpoints"
    manager, counting = manager_for(toy_model, [RamTier(2), DiskTier(bad, name="ssd")])
    with pytest.raises(StorageUnavailableError) as info:
        manager.run(disk_revolve())
    assert str(bad) in str(info.value) and "'ssd'" in str(info.value) and "not writable" in str(info.value)
    assert counting.calls == 0
    assert files_under(tmp_path) == [blocker]


def test_too_little_free_space_fails_before_any_step_saying_what_is_needed(toy_model, tmp_path, monkeypatch):
    import shutil as real_shutil

    from checkpointing.adjoint import DiskTier, RamTier, StorageUnavailableError
    from checkpointing.adjoint import tiers

    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(tiers.shutil, "disk_usage", lambda path: usage._replace(free=100))
    manager, counting = manager_for(toy_model, [RamTier(2), DiskTier(tmp_path / "disk", name="ssd")])
    state_bytes = toy_model.u.dat.data_ro.nbytes
    with pytest.raises(StorageUnavailableError) as info:
        manager.run(disk_revolve())
    message = str(info.value)
    assert str(tmp_path / "disk") in message and "has 100 B free" in message
    assert f"needs {state_bytes} B there (1 checkpoints of {state_bytes} B)" in message  # only x_0 goes to disk
    assert counting.calls == 0
    assert files_under(tmp_path / "disk") == []


def test_schedule_larger_than_the_tiers_is_rejected_before_any_step(toy_model, tmp_path):
    from checkpointing.adjoint import RamTier
    from checkpointing.planners import plan
    from checkpointing.platform import Platform
    from checkpointing.simulator import InvalidScheduleError

    manager, counting = manager_for(toy_model, [RamTier(2)])
    with pytest.raises(InvalidScheduleError, match="level 0"):
        manager.run(plan("revolve", STEPS, Platform.from_spec("4:0:0")))
    assert counting.calls == 0


@pytest.mark.parametrize("fail_at, step, phase", [
    (12, "F_1 (x_1 -> x_2", "recomputation (schedule[4]: advance x0 -> x9)"),
    (20, "F_9 (x_9 -> x_10", "re-taping for backward step 9"),
])
def test_solver_failure_names_the_step_and_the_phase(toy_model, tmp_path, fail_at, step, phase):
    """recompute-all: calls 1-10 are the first sweep, 11-19 recompute F_0..F_8, call 20 re-tapes F_9."""
    import firedrake as fd
    from checkpointing.adjoint import DiskTier, StepFailedError
    from checkpointing.planners import plan

    manager, _ = manager_for(toy_model, [DiskTier(tmp_path / "disk", capacity=1)], fail_at=fail_at)
    with pytest.raises(StepFailedError) as info:
        manager.run(plan("recompute-all", STEPS, manager.platform))
    assert step in str(info.value) and phase in str(info.value), str(info.value)
    assert "ConvergenceError" in str(info.value)
    assert isinstance(info.value.__cause__, fd.ConvergenceError)
    assert files_under(tmp_path / "disk") == []


def test_bad_time_loops_are_rejected_naming_the_field(toy_model):
    from checkpointing.adjoint import TimeLoop
    from support.toymodel import misfit_functional

    functional = misfit_functional(toy_model, 2)
    with pytest.raises(ValueError, match=r"timesteps\[1\] = -0.1"):
        TimeLoop(toy_model, [0.1, -0.1], (toy_model.source,), functional)
    with pytest.raises(ValueError, match="is a state Function"):
        TimeLoop(toy_model, [0.1, 0.1], (toy_model.u,), functional)
    with pytest.raises(TypeError, match=r"controls\[0\]"):
        TimeLoop(toy_model, [0.1, 0.1], (2.0,), functional)


def test_tiers_for_platform_needs_one_directory_per_disk_level(tmp_path):
    from checkpointing.adjoint import DiskTier, RamTier, tiers_for_platform
    from checkpointing.platform import Platform

    platform = Platform.from_spec("2:0:0,inf:1:1,inf:3:3")
    with pytest.raises(ValueError, match="2 directories are needed"):
        tiers_for_platform(platform, [tmp_path])
    tiers = tiers_for_platform(platform, [tmp_path / "ssd", tmp_path / "pfs"])
    assert [type(t) for t in tiers] == [RamTier, DiskTier, DiskTier]
    assert [t.capacity for t in tiers] == [2, float("inf"), float("inf")]


def test_adjoint_failure_names_the_backward_step(toy_model, tmp_path, monkeypatch):
    """An adjoint solve that fails (as a CG solve does where a trial state's Jacobian is not definite) raises
    StepFailedError naming the backward step, like a forward failure; x_0 is put back and the disk is left empty."""
    import firedrake as fd
    from pyadjoint.tape import Tape

    from checkpointing.adjoint import DiskTier, StepFailedError
    from checkpointing.planners import plan

    calls = []
    real = Tape.evaluate_adj

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # backward steps run B_10 (the final term), B_9, B_8, ...
            raise fd.ConvergenceError("Linear solve failed: DIVERGED_INDEFINITE_PC (injected by the test)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Tape, "evaluate_adj", failing)
    before = toy_model.u.dat.data_ro.copy()
    manager, _ = manager_for(toy_model, [DiskTier(tmp_path / "disk", capacity=1)])
    with pytest.raises(StepFailedError) as info:
        manager.run(plan("recompute-all", STEPS, manager.platform))
    assert "backward step B_8 (the adjoint of x_8 -> x_9)" in str(info.value), str(info.value)
    assert isinstance(info.value.__cause__, fd.ConvergenceError)
    assert (toy_model.u.dat.data_ro == before).all()
    assert files_under(tmp_path / "disk") == []
