"""The join-graph experiment at its default size: its headline is a property against the optimum (no valid
schedule is below it; the optimum's simulated cost is its DP value, which exhaustive search confirms in
tests/checkpointing/test_join.py)."""
import json

from experiments import join_graphs


def test_no_planner_beats_the_join_optimum_and_each_heuristic_loses_somewhere():
    rows = join_graphs.rows_for(join_graphs.cases(False))
    ok, facts = join_graphs.check(rows)
    assert ok, facts
    assert facts["ratios_below_one"] == 0 and facts["optimum_mismatches"] == 0
    assert facts["worst_ratio"]["one-after-another"] > 1 and facts["worst_ratio"]["even-split"] > 1
    # interleaving the teeth's segments matters on some of these graphs, not on most
    assert 0 < facts["sequential_strictly_worse"] < facts["sequential_cases"]


def test_run_writes_the_figure_and_table(tmp_path):
    summary = join_graphs.run(tmp_path, full=False)
    assert summary["headline_ok"]
    assert (tmp_path / "join_graphs.png").stat().st_size > 0
    assert (tmp_path / "join_graphs.csv").read_text().startswith("sweep,x,teeth")
    json.dumps(summary)
