"""Where the flagship gradient's predicted time missed, and what the prediction before the run gives now.

From the saved records of two flagship runs (docs/mismip.md, "Why the predicted time missed"): Run 4 at 1 km (made
with the transient SUPG parameter, ``benchmarks/results/mismip_flagship_1km_transient/``: its calibration, the time
of every forward and backward step, the manager's time per action kind) and Run 3 at 2 km
(``benchmarks/results/mismip_flagship_2km_run3/``: its calibration and its result row, which holds the prediction
with the first sweep's measured step costs, but no per-step record).
Both runs planned H-Revolve on the platform of a 20-step calibration prefix and were measured in
wall time.  The simulator's makespan of the run's schedule is recomputed with the costs replaced one part at a time
by what the run measured, in this order (each ratio is the new makespan over the previous one; their product is
measured / predicted):

- ``a1``: the backward costs of the chain with u_b,l (the adjoint of J alone) kept apart
  (``Calibration.predict_chain``) instead of averaged into a uniform u_b;
- ``b``: the forward costs as the run's first sweep measured them (recomputed steps cost what they cost in it);
- ``a2``: the backward costs as the run measured them (1 km only);
- ``c_d``: the rest: storage (reads, writes, discards) and whatever else differs (1 km: storage only, since the
  manager's actions account for the whole run; 2 km: a2, storage and the rest together).

Then the prediction before the run of ``experiments/mismip_flagship.py`` (``Calibration.predict_chain`` with a
pilot's ``drift_profile``) is applied to both calibrations, with the profile of the 4 km, 0.1-year convergence runs
of ``data/mismip/convergence/runs/`` (CPU seconds per year spread over the year's 10 steps) as the pilot.

Last, the runs measured with that prediction (``benchmarks/results/mismip_flagship_prediction/<run>/``, the small
outputs of ``experiments/mismip_flagship.py``) are tabulated: the prediction before the run, without the pilot, the
same schedule re-costed on the prefix's uniform platform, the forecast at x_l of the rest, and the backward step's
cost in the run against the calibration's.

Usage:  python benchmarks/bench_prediction.py [--markdown]     (seconds; no Firedrake model is built)
Writes benchmarks/results/bench_prediction.{csv,json}.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "data" / "mismip" / "convergence" / "runs"
PILOTS = {"4 km no-partial": "no-partial_4km_dt0.1_100yr_supg_parametertransient_transient-spinup.csv",
          "4 km no-partial, steady SUPG": "no-partial_4km_dt0.1_100yr_supg_parametersteady_transient-spinup.csv"}
STEPS = 1000
PREFIX = 20


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def yearly_profile(path: Path) -> np.ndarray:
    """Per-step costs of a convergence run: the CPU seconds of each year spread over its 10 steps of 0.1 year."""
    seconds = np.diff([float(r["cpu_seconds"]) for r in read_rows(path)])
    return np.repeat(seconds / 10, 10)


def decompose(calibration, measured: float, first_sweep=None, backward=None, first_sweep_prediction=None) -> dict:
    """The makespans of the run's schedule with the costs replaced one part at a time (module docstring)."""
    from checkpointing.planners import plan
    from checkpointing.simulator import simulate

    platform = calibration.platform()
    schedule = plan("hrevolve", STEPS, platform)
    makespans = {"predicted": simulate(schedule, platform, STEPS).makespan}
    makespans["a1"] = calibration.predict_chain(schedule, STEPS, None, platform).makespan
    if first_sweep is not None:
        chain_backward = calibration.backward_costs_for(first_sweep)
        makespans["b"] = simulate(schedule, platform, STEPS, forward_costs=first_sweep,
                                  backward_costs=chain_backward).makespan
        makespans["a2"] = simulate(schedule, platform, STEPS, forward_costs=first_sweep,
                                   backward_costs=np.append(backward, chain_backward[-1])).makespan
    else:
        makespans["b"] = first_sweep_prediction
    makespans["c_d"] = measured
    names = list(makespans)
    ratios = {name: makespans[name] / makespans[before] for before, name in zip(names, names[1:])}
    return {"makespans": makespans, "ratios": ratios, "measured_over_predicted": measured / makespans["predicted"]}


def pilot_predictions(calibration, measured: float) -> dict:
    """Measured / predicted before the run, with each pilot's profile (and without one)."""
    from checkpointing.adjoint.calibration import drift_profile
    from checkpointing.planners import plan

    rows = {}
    for name, file in {"none": None, **PILOTS}.items():
        profile = None if file is None else drift_profile(yearly_profile(RUNS / file), PREFIX)
        platform = calibration.platform(steps=STEPS, profile=profile)
        predicted = calibration.predict_chain(plan("hrevolve", STEPS, platform), STEPS, profile, platform).makespan
        rows[name] = {"pilot_drift": 1.0 if profile is None else float(profile.mean()), "predicted": predicted,
                      "measured_over_predicted": measured / predicted}
    return rows


def measured_runs() -> list[dict]:
    """One row per saved run of the new prediction (module docstring)."""
    from checkpointing.adjoint.calibration import prefix_mean

    rows = []
    for directory in sorted((RESULTS / "mismip_flagship_prediction").iterdir()):
        row = read_rows(directory / "flagship.csv")[0]
        calibration = json.loads((directory / "calibration.json").read_text())
        steps = read_rows(directory / "step_costs.csv")
        first = np.array([float(r["seconds"]) for r in steps if r["sweep"] == "first"])
        backward = np.array([float(r["seconds"]) for r in steps if r["kind"] == "backward"])
        prefix = len(calibration["forward_costs"])
        value = {k: float(row[k]) for k in row if k not in ("size", "schedule", "clock", "counts_match_simulator")}
        rows.append({
            "run": directory.name, "cell_km": value["cell_size"] / 1e3, "steps": int(value["steps"]),
            "forward_steps": int(value["forward_steps"]), "recomputed": int(value["recomputed_steps"]),
            "pilot_km": value["pilot_cell_size"] / 1e3, "pilot_seconds": value["pilot_seconds"],
            "pilot_drift": value["pilot_drift"], "run_drift": float(first.mean() / prefix_mean(first, prefix)),
            "before_run": value["measured_over_predicted"], "no_pilot": value["measured_over_predicted_no_pilot"],
            "prefix_uniform": value["measured_over_predicted_prefix"],
            "rest_at_x_l": value["measured_over_predicted_rest"],
            "whole_with_first_sweep": value["measured_over_predicted_first_sweep_costs"],
            "measured_cpu": value["measured_cpu_makespan"], "predicted": value["predicted_makespan"],
            "backward_run": float(backward.mean()),
            "backward_calibrated": float(np.mean(calibration["backward_costs"][:-1])),
            "cpu_over_wall_first_sweep": value["first_sweep_cpu_over_wall"],
            "cpu_over_wall_rest": value["rest_cpu_over_wall"], "load_start": value["load_start"],
            "load_end": value["load_end"], "pilot_profile_saved": "pilot_costs" in calibration})
    return rows


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the measured runs as a markdown table")
    args = parser.parse_args(argv)
    from icesheet.cli import import_firedrake

    import_firedrake()  # checkpointing.adjoint imports it: without PETSc seeing --markdown
    from checkpointing.adjoint.calibration import Calibration

    one = RESULTS / "mismip_flagship_1km_transient"
    steps = read_rows(one / "step_costs.csv")
    first_sweep = np.array([float(r["seconds"]) for r in steps if r["sweep"] == "first"])
    backward = np.array([float(r["seconds"]) for r in steps if r["kind"] == "backward"])[::-1]  # B_0 .. B_{l-1}
    by_action = json.loads((one / "summary.json").read_text())["wall_time_by_action"]
    run4 = Calibration.from_dict(json.loads((one / "calibration.json").read_text()))
    measured4 = sum(by_action.values())
    two = RESULTS / "mismip_flagship_2km_run3"
    row3 = read_rows(two / "flagship.csv")[0]
    run3 = Calibration.from_dict(json.loads((two / "calibration.json").read_text()))
    measured3 = float(row3["measured_makespan"])
    runs = {
        "1 km (Run 4)": {**decompose(run4, measured4, first_sweep, backward),
                         "pilots": pilot_predictions(run4, measured4),
                         "first_20_forward_over_calibration": float(first_sweep[:PREFIX].mean() / run4.uf),
                         "backward_mean": float(backward.mean()),
                         "backward_first_20_steps": float(backward[:PREFIX].mean()),
                         "calibrated_backward_mean": float(np.mean(run4.backward_costs[:-1])),
                         "storage_seconds": {k: by_action[k] for k in ("write", "read", "discard")}},
        "2 km (Run 3)": {**decompose(run3, measured3,
                                     first_sweep_prediction=float(row3["predicted_makespan_first_sweep_costs"])),
                         "pilots": pilot_predictions(run3, measured3)},
    }
    table = []
    for name, run in runs.items():
        print(f"{name}: measured / predicted {run['measured_over_predicted']:.3f} = "
              + " x ".join(f"{part} {ratio:.3f}" for part, ratio in run["ratios"].items()))
        for pilot, p in run["pilots"].items():
            print(f"    before the run, pilot {pilot} (drift {p['pilot_drift']:.3f}): predicted {p['predicted']:.0f} s, "
                  f"measured / predicted {p['measured_over_predicted']:.3f}")
            table.append({"run": name, "pilot": pilot, "pilot_drift": p["pilot_drift"], "predicted": p["predicted"],
                          "measured_over_predicted": p["measured_over_predicted"],
                          "prefix_measured_over_predicted": run["measured_over_predicted"],
                          **{f"ratio_{k}": v for k, v in run["ratios"].items()}})
    measured = measured_runs()
    keys = list(measured[0])
    if args.markdown:
        print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in measured:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{k}={c}" for k, c in zip(keys, cells)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench_prediction.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    (RESULTS / "bench_prediction.json").write_text(json.dumps({"records": runs, "measured_runs": measured}, indent=1)
                                                  + "\n")
    print(f"written {RESULTS / 'bench_prediction.csv'} and {RESULTS / 'bench_prediction.json'}")


if __name__ == "__main__":
    main()
