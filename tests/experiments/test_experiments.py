"""The pure-Python experiments at a tiny size: their headline checks are properties of the schedules against
oracles outside the planners (Griewank & Walther's closed form, the repetition bound C(M + r, M), the H-Revolve
optimum as a lower bound of every valid schedule, the no-reuse cost formula)."""
import json

import pytest

from checkpointing.platform import Level, Platform, load_platform, shipped_platforms
from checkpointing.simulator import simulate
from experiments import all as run_all
from experiments import hrevolve_vs_heuristics, revolve_tradeoff, strategy_table
from experiments.no_reuse import no_reuse_schedule


def test_revolve_counts_match_closed_form_and_repetition_bound():
    tradeoff = revolve_tradeoff.tradeoff_rows([1, 10, 33], max_slots=12)
    scaling = revolve_tradeoff.scaling_rows(max_memory=6, simulate_up_to=500)
    staircase = revolve_tradeoff.staircase_rows([2, 3], max_length=60)
    ok, facts = revolve_tradeoff.check(tradeoff, scaling, staircase)
    assert ok, facts
    assert facts["count_mismatches"] == 0 and facts["scaling_cases_simulated"] > 10


def test_closed_form_reproduces_the_published_table():
    """Griewank & Walther (2000; docs/references.md): total forward steps L + t(L, s) of Griewank & Walther for L = l + 1."""
    for s, L, total in [(3, 14, 41), (2, 10, 30), (2, 100, 945), (3, 100, 590), (5, 100, 416), (10, 1000, 4636)]:
        assert L + revolve_tradeoff.closed_form_forward_steps(L - 1, s) == total


@pytest.mark.parametrize("platform_file", list(shipped_platforms().values()), ids=lambda p: p.name)
def test_heuristics_never_beat_the_optimum(platform_file):
    platform = Platform.from_toml(platform_file)
    heuristics = hrevolve_vs_heuristics.heuristic_names()
    rows = hrevolve_vs_heuristics.platform_rows(platform, hrevolve_vs_heuristics.chain_lengths(150, 12), heuristics)
    ok, facts = hrevolve_vs_heuristics.check(rows, heuristics)
    assert facts["ratios_below_one"] == 0 and facts["hrevolve_mismatches"] == 0, facts
    assert "revolve" in heuristics and facts["worst_ratio"]["revolve"] > 1  # RAM alone loses on every platform


def test_hrevolve_beats_or_outlasts_every_heuristic_over_all_platforms():
    heuristics = hrevolve_vs_heuristics.heuristic_names()
    rows = [row for f in shipped_platforms().values()
            for row in hrevolve_vs_heuristics.platform_rows(Platform.from_toml(f),
                                                            hrevolve_vs_heuristics.chain_lengths(150, 10),
                                                            heuristics)]
    ok, facts = hrevolve_vs_heuristics.check(rows, heuristics)
    assert ok, facts


@pytest.mark.parametrize("steps, slots", [(1, 1), (7, 3), (10, 10), (25, 4), (40, 7), (41, 40), (60, 1)])
def test_no_reuse_is_valid_write_once_and_costs_the_formula(steps, slots):
    schedule = no_reuse_schedule(steps, slots)
    report = simulate(schedule, Platform((Level(slots),), uf=1.0, ub=0.0), steps)
    writes = [a.index for a in schedule if type(a).__name__ == "Write"]
    assert len(writes) == len(set(writes)) == report.peak[0] <= slots   # each checkpoint written once
    assert report.forward_steps == strategy_table.no_reuse_forward_steps(steps, slots)
    if slots == 1:
        assert report.forward_steps == steps * (steps + 1) // 2  # recompute-all (Griewank & Walther's s = 1)


def test_no_reuse_rejects_zero_slots():
    with pytest.raises(ValueError, match="slots = 0"):
        no_reuse_schedule(5, 0)


@pytest.mark.parametrize("steps, memory", [(30, 4), (100, 10), (64, 2)])
def test_strategy_table_orderings(steps, memory):
    hierarchy = load_platform(strategy_table.HIERARCHY)
    ok, facts = strategy_table.check(strategy_table.table_rows(steps, memory, hierarchy), steps, memory)
    assert ok, facts


def test_driver_writes_summaries_and_rejects_unknown_names(tmp_path, capsys):
    assert run_all.main(["--out", str(tmp_path), "--only", "strategy_table"]) == 0
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["experiment"] for r in rows] == ["strategy_table"] and rows[0]["headline_ok"] is True
    own = json.loads((tmp_path / "strategy_table" / "summary.json").read_text())
    assert own["headline_ok"] is True and (tmp_path / "strategy_table" / "strategy_table.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="unknown experiment"):
        run_all.main(["--out", str(tmp_path), "--only", "no_such_experiment"])
