"""Join graphs: the simulator's rules and structural checks, the optimum against exhaustive search over all valid
schedules, one tooth against Revolve (H-Revolve's DP and Griewank & Walther's closed form), and properties of every
planner on random graphs."""
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpointing.actions import HANDLE, Advance, Backward, Discard, Join, Read, Start, Write
from checkpointing.emit import ScheduleDoesNotFit
from checkpointing.hrevolve import hrevolve_schedule, optimal_makespan
from checkpointing.join_bruteforce import exhaustive_join_search
from checkpointing.join_planners import JOIN_PLANNERS, join_plan, plan_join
from checkpointing.joingraph import Branch, JoinGraph, JoinGraphError, simulate_join
from checkpointing.platform import Level, Platform
from checkpointing.revolve import revolve_forward_steps
from checkpointing.simulator import InvalidScheduleError, simulate

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
RAM3 = Platform((Level(3),), uf=1.0, ub=1.0)


def two_teeth(h=0):
    return JoinGraph((Branch(2), Branch(1)), Branch(h, None, 1.0))


def valid_two_teeth():
    """Store x0 of both teeth, join, turn on the accumulator, reverse tooth 1 then tooth 0 by recompute-all."""
    return [Start(0), Write(0, 0, 0), Advance(0, 2, 0), Join(0), Start(1), Write(0, 0, 1), Advance(0, 1, 1), Join(1),
            Backward(0, HANDLE), Backward(1, 1), Read(0, 0, 1), Backward(0, 1), Discard(0, 0, 1),
            Read(0, 0, 0), Advance(0, 2, 0), Backward(2, 0), Read(0, 0, 0), Advance(0, 1, 0), Backward(1, 0),
            Read(0, 0, 0), Backward(0, 0), Discard(0, 0, 0)]


def test_a_valid_schedule_costs_the_sum_of_its_actions():
    report = simulate_join(valid_two_teeth(), two_teeth(), RAM3)
    # forward 2 + 1 + recomputations 2 + 1; backward 3 + 2 teeth, 1 handle; free reads and writes
    assert report.makespan == 6 + 5 + 1
    assert report.forward_steps == [5, 1, 0] and report.backward_steps == [3, 2, 1]
    assert report.writes == [2] and report.reads == [4] and report.peak == [2] and report.violations == []


@pytest.mark.parametrize("edit, message", [
    (lambda s: s[:1] + [Start(0)] + s[1:], "already started"),
    (lambda s: [Join(0)] + s, "needs x2 of tooth 0"),
    (lambda s: s[:3] + [Join(0)] + s[3:], "already joined"),
    (lambda s: s[:4] + [Start(HANDLE)] + s[4:], "after every tooth joined"),
    (lambda s: s[:8] + [Backward(1, 1)] + s[8:], "need ybar_0"),
    (lambda s: s[:8] + [Backward(0, HANDLE)] + s[8:], "already run"),
    (lambda s: [Advance(0, 2, 0) if a == Advance(0, 2, 0) else a for a in s][:2] + [Advance(0, 3, 0)], "end <= 2"),
    (lambda s: s[:1] + [Write(0, 0)] + s[2:], "names no branch"),
    (lambda s: s[:1] + [Write(0, 0, 5)] + s[2:], "branch 5 does not exist"),
    (lambda s: s[:1] + [Write(0, 1, 0)] + s[2:], "level 1 does not exist"),
    (lambda s: s[:-4], "never ran"),
])
def test_broken_schedules_are_rejected_naming_the_action(edit, message):
    with pytest.raises(InvalidScheduleError, match=message):
        simulate_join(edit(valid_two_teeth()), two_teeth(), RAM3)


def test_the_schedule_minus_its_last_discard_is_still_valid():
    assert simulate_join(valid_two_teeth()[:-1], two_teeth(), RAM3).peak == [2]


def test_a_full_level_is_rejected():
    schedule = [Start(0), Write(0, 0, 0), Advance(0, 1, 0), Write(1, 0, 0), Advance(1, 2, 0), Write(2, 0, 0)]
    with pytest.raises(InvalidScheduleError, match="level 0 is full"):
        simulate_join(schedule + [Join(0)], two_teeth(), Platform((Level(2),)))


def test_the_handle_needs_its_start_and_the_working_state():
    graph = two_teeth(h=1)
    head = valid_two_teeth()[:8]
    with pytest.raises(InvalidScheduleError, match="needs y1 as working state"):
        simulate_join(head + [Backward(1, HANDLE)], graph, RAM3)
    ok = head + [Start(HANDLE), Write(0, 0, HANDLE), Advance(0, 1, HANDLE), Backward(1, HANDLE), Read(0, 0, HANDLE),
                 Backward(0, HANDLE), Discard(0, 0, HANDLE)] + valid_two_teeth()[9:]
    with pytest.raises(InvalidScheduleError, match="needs x1 of tooth 1"):   # Start(HANDLE) replaced tooth 1's end
        simulate_join(ok, graph, RAM3)


def test_chain_schedules_and_their_simulator_are_unchanged_and_reject_branches():
    chain = hrevolve_schedule(10, Platform((Level(3),)))
    assert all(a.branch is None for a in chain) and str(chain[0]) == "write x0 to level 0"
    with pytest.raises(InvalidScheduleError, match="names a branch"):
        simulate([Advance(0, 1, 0)], Platform((Level(3),)), 1)
    assert str(Advance(0, 1, HANDLE)) == "advance x0 -> x1 on the handle" and str(Read(2, 0, 1)).endswith("tooth 1")


def as_one_tooth(chain, steps):
    """A chain schedule as the schedule of one tooth with no handle: start, and join + the handle's (free)
    backward step just before the tooth's first backward step."""
    first = next(i for i, a in enumerate(chain) if type(a) is Backward)
    moved = [replace(a, branch=0) for a in chain]
    return [Start(0)] + moved[:first] + [Join(0), Backward(0, HANDLE)] + moved[first:]


@SETTINGS
@given(st.integers(0, 40), st.integers(1, 6), st.sampled_from([0.0, 1.0, 2.5]), st.sampled_from([0.0, 0.5, 3.0]),
       st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.0, 1.0, 4.0]))
def test_one_tooth_without_handle_is_revolve(steps, slots, w, r, uf, ub):
    platform = Platform((Level(slots, w, r),), uf=uf, ub=ub)
    graph = JoinGraph((Branch(steps),))
    plan = join_plan("optimal", graph, platform)
    assert plan.value == pytest.approx(optimal_makespan(steps, platform), rel=1e-12)
    assert simulate_join(plan.schedule(), graph, platform).makespan == pytest.approx(plan.value, rel=1e-12)
    embedded = simulate_join(as_one_tooth(hrevolve_schedule(steps, platform), steps), graph, platform)
    assert embedded.makespan == pytest.approx(simulate(hrevolve_schedule(steps, platform), platform, steps).makespan)


@pytest.mark.parametrize("steps, slots", [(1, 1), (9, 2), (20, 3), (55, 4), (100, 5), (200, 10)])
def test_one_tooth_forward_steps_are_griewank_and_walthers_closed_form(steps, slots):
    """With free storage and backward steps the optimum minimises forward steps, Griewank & Walther's L + t(L, s)
    for L = l + 1 (their L taped steps are not in the simulator's count; checkpointing/revolve.py)."""
    platform = Platform((Level(slots),), uf=1.0, ub=0.0)
    graph = JoinGraph((Branch(steps),))
    report = simulate_join(plan_join("optimal", graph, platform), graph, platform)
    assert report.forward_steps[0] == revolve_forward_steps(steps + 1, slots) - (steps + 1)


def random_graph(rng, max_teeth, max_length, max_handle):
    p = rng.randint(1, max_teeth)
    teeth = tuple(Branch(rng.randint(0, max_length), None, rng.choice([None, 2.0])) for _ in range(p))
    handle = Branch(rng.randint(0, max_handle), rng.choice([None, 2.0]), rng.choice([0.0, 1.0]))
    platform = Platform((Level(rng.randint(1, p + 2), rng.choice([0, 0, 1]), rng.choice([0, 0, 2])),),
                        uf=rng.choice([1, 2]), ub=rng.choice([0, 1, 3]))
    return JoinGraph(teeth, handle), platform


def test_optimum_equals_exhaustive_search_on_small_join_graphs():
    """Exhaustive search over every valid schedule (no phases assumed) against the label DP: 200 random graphs of
    1-3 teeth of up to 4 steps, handles of up to 3 steps, 1 to p + 2 slots, random costs (132 with a schedule, all
    equal; on the others neither finds one)."""
    rng = random.Random(20260)
    compared = 0
    for _ in range(200):
        graph, platform = random_graph(rng, 3, 3, 3) if rng.random() < 0.4 else random_graph(rng, 2, 4, 3)
        try:
            best, witness = exhaustive_join_search(graph, platform)
        except RuntimeError as error:
            assert "no valid schedule" in str(error)
            with pytest.raises(ScheduleDoesNotFit):
                join_plan("optimal", graph, platform)
            continue
        assert simulate_join(witness, graph, platform).makespan == pytest.approx(best)
        assert join_plan("optimal", graph, platform).value == pytest.approx(best), (graph, platform)
        compared += 1
    assert compared >= 130


def test_interleaving_the_teeth_beats_reversing_them_one_after_another():
    """Teeth of 3 and 7 steps, a handle of 1, 4 slots: the optimum (34, exhaustive search) reverses a segment of
    the long tooth, then the short tooth, then the rest of the long tooth; one after another costs 35."""
    graph = JoinGraph((Branch(3), Branch(7)), Branch(1, None, 1.0))
    platform = Platform((Level(4),), uf=1.0, ub=1.0)
    best, _ = exhaustive_join_search(graph, platform)
    plan = join_plan("optimal", graph, platform)
    assert best == plan.value == 34 and join_plan("sequential", graph, platform).value == 35
    assert [b for b, *_ in plan.segments] == [1, 0, 1]


@st.composite
def join_cases(draw):
    p = draw(st.integers(1, 3))
    teeth = tuple(Branch(draw(st.integers(0, 14 if p < 3 else 8)), None, draw(st.sampled_from([None, 0.0, 3.0])))
                  for _ in range(p))
    handle = Branch(draw(st.integers(0, 8)), draw(st.sampled_from([None, 2.0])), draw(st.sampled_from([0.0, 1.0])))
    level = Level(draw(st.integers(1, 9)), draw(st.sampled_from([0.0, 1.0])), draw(st.sampled_from([0.0, 0.5, 2.0])))
    return JoinGraph(teeth, handle), Platform((level,), uf=draw(st.sampled_from([0.5, 1.0, 2.0])),
                                              ub=draw(st.sampled_from([0.0, 1.0, 2.0])))


@SETTINGS
@given(join_cases())
def test_every_planner_is_valid_structured_and_costs_its_value(case):
    graph, platform = case
    values = {}
    for name in JOIN_PLANNERS:
        try:
            plan = join_plan(name, graph, platform)
        except ScheduleDoesNotFit:
            continue
        report = simulate_join(plan.schedule(), graph, platform, structured=True)
        assert report.makespan == pytest.approx(plan.value, rel=1e-12), name
        assert report.peak[0] <= platform.capacities[0]
        assert report.backward_steps == [t.length + 1 for t in graph.teeth] + [graph.handle.length + 1]
        values[name] = plan.value
    if "optimal" in values:
        assert values["optimal"] <= values["sequential"] + 1e-9
        for name in ("one-after-another", "even-split"):
            if name in values:
                assert values["sequential"] <= values[name] + 1e-9, name
    else:  # nothing fits: the heuristics cannot either
        assert not values


@pytest.mark.parametrize("schedule, property_", [
    # the forward phase advances tooth 0 twice
    ([Start(0), Write(0, 0, 0), Advance(0, 2, 0), Read(0, 0, 0), Advance(0, 2, 0)], "phases"),
    # recomputing below the stored x1 while Fbar_1 is not done
    ([Start(0), Write(0, 0, 0), Advance(0, 1, 0), Write(1, 0, 0), Advance(1, 2, 0), Join(0), Start(1),
      Write(0, 0, 1), Advance(0, 1, 1), Join(1), Backward(0, HANDLE), Backward(1, 1), Read(0, 0, 0),
      Advance(0, 1, 0)], "checkpoint persistence"),
    # a forward step of tooth 0 while tooth 1's x0 is read and not reversed
    ([Start(0), Write(0, 0, 0), Advance(0, 2, 0), Join(0), Start(1), Write(0, 0, 1), Advance(0, 1, 1), Join(1),
      Backward(0, HANDLE), Backward(1, 1), Read(0, 0, 1), Read(0, 0, 0), Advance(0, 1, 0)], "stability 2"),
    # F_1 of tooth 0 after Fbar_1 is done
    (valid_two_teeth()[:13] + [Read(0, 0, 0), Advance(0, 2, 0), Backward(2, 0), Read(0, 0, 0), Advance(0, 1, 0),
                               Backward(1, 0), Read(0, 0, 0), Advance(0, 2, 0)], "stability 1"),
])
def test_structural_properties_are_checked(schedule, property_):
    with pytest.raises(InvalidScheduleError, match="never ran"):
        simulate_join(schedule, two_teeth(), RAM3)
    with pytest.raises(InvalidScheduleError, match=property_):
        simulate_join(schedule, two_teeth(), RAM3, structured=True)


@pytest.mark.parametrize("build, message", [
    (lambda: JoinGraph(()), "at least one tooth"),
    (lambda: JoinGraph((Branch(-1),)), "length = -1"),
    (lambda: JoinGraph((Branch(3, uf=-1.0),)), "uf = -1.0"),
    (lambda: JoinGraph((3,)), "teeth\\[0\\] = 3"),
    (lambda: JoinGraph.uniform(0, 5), "teeth = 0"),
])
def test_bad_descriptions_name_the_field(build, message):
    with pytest.raises(JoinGraphError, match=message):
        build()


def test_planner_errors_name_the_problem():
    graph = JoinGraph.uniform(2, 3)
    with pytest.raises(ValueError, match="planner = 'nope'"):
        plan_join("nope", graph, RAM3)
    with pytest.raises(ScheduleDoesNotFit, match="no schedule"):   # 3 teeth need 3 slots for their x0 ... and more
        join_plan("optimal", JoinGraph.uniform(3, 2, handle=2), Platform((Level(3),)))


def test_cli_join_reports_the_simulators_numbers(capsys):
    import io
    import json

    from checkpointing.cli import main

    out = io.StringIO()
    assert main(["join", "--teeth", "3,7", "--handle", "1", "--levels", "4:0:0", "--handle-ub", "1", "--json"],
                out=out) == 0
    rows = {r["algorithm"]: r for r in json.loads(out.getvalue())["algorithms"]}
    graph = JoinGraph((Branch(3), Branch(7)), Branch(1, None, 1.0))
    platform = Platform((Level(4),), uf=1.0, ub=1.0)
    for name, row in rows.items():
        assert row["makespan"] == simulate_join(plan_join(name, graph, platform), graph, platform).makespan
    assert rows["optimal"]["makespan"] == 34
    assert main(["join", "--teeth", "3,x", "--levels", "4:0:0"], out=io.StringIO()) == 2
    assert "--teeth = '3,x'" in capsys.readouterr().err
    assert main(["join", "--teeth", "2,2,2", "--handle", "2", "--levels", "3:0:0", "--algorithm", "optimal"],
                out=io.StringIO()) == 3


# --- two levels: RAM and an unbounded disk ------------------------------------------------------------------------
def two_level_instances(seed, count):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        p = rng.randint(1, 2)
        teeth = tuple(Branch(rng.randint(0, 2 if p == 2 else 3)) for _ in range(p))
        w0, r0 = rng.choice([0, 0.5]), rng.choice([0, 0.5])
        ram = Level(rng.randint(0, 2), w0, r0)
        disk = Level(float("inf"), w0 + rng.choice([0, 1, 3]), r0 + rng.choice([0, 1, 2]))
        out.append((JoinGraph(teeth, Branch(rng.randint(0, 1), None, rng.choice([0.0, 1.0]))),
                    Platform((ram, disk), uf=rng.choice([1, 2]), ub=rng.choice([0, 1, 3]))))
    return out


def test_two_level_optimum_equals_exhaustive_search():
    """RAM (0-2 slots) and an unbounded disk with dearer writes and reads: the DP (label DP with disk segments
    between the labels, segments and handle by H-Revolve on two levels) against exhaustive search over every valid
    schedule, 12 random graphs here (150 more matched during development)."""
    for graph, platform in two_level_instances(7, 12):
        plan = join_plan("optimal", graph, platform)
        assert simulate_join(plan.schedule(), graph, platform, structured=True).makespan == pytest.approx(plan.value)
        best, _ = exhaustive_join_search(graph, platform)
        assert plan.value == pytest.approx(best), (graph, platform)


@SETTINGS
@given(join_cases(), st.sampled_from([0.0, 1.0, 5.0]), st.sampled_from([0.0, 2.0]))
def test_a_disk_never_hurts_and_its_schedule_costs_its_value(case, w_disk, r_disk):
    graph, ram_only = case
    ram = ram_only.levels[0]
    platform = Platform((ram, Level(float("inf"), ram.write_cost + w_disk, ram.read_cost + r_disk)),
                        uf=ram_only.uf, ub=ram_only.ub)
    plan = join_plan("optimal", graph, platform)
    report = simulate_join(plan.schedule(), graph, platform, structured=True)
    assert report.makespan == pytest.approx(plan.value, rel=1e-12)
    assert report.peak[0] <= ram.capacity
    try:
        assert plan.value <= join_plan("optimal", graph, ram_only).value + 1e-9
    except ScheduleDoesNotFit:
        pass


def test_two_level_limits_are_named():
    graph = JoinGraph.uniform(2, 3)
    with pytest.raises(ScheduleDoesNotFit, match="level 1 holds every state"):
        join_plan("optimal", graph, Platform((Level(2), Level(3, 1, 1))))
    with pytest.raises(ScheduleDoesNotFit, match="costs at least level 0's"):
        join_plan("optimal", graph, Platform((Level(2, 1, 1), Level(float("inf"), 0, 0))))


@SETTINGS
@given(join_cases())
def test_the_lower_bound_is_below_the_optimum_and_exact_for_one_tooth(case):
    from checkpointing.join_optimal import join_lower_bound

    graph, platform = case
    try:
        optimum = join_plan("optimal", graph, platform).value
    except ScheduleDoesNotFit:
        return
    bound = join_lower_bound(graph, platform)
    priced = join_lower_bound(graph, platform, upper=optimum + 1.0, iterations=40)   # aiming above the optimum
    assert bound <= priced <= optimum + 1e-9
    if graph.p == 1:
        assert bound == pytest.approx(optimum, rel=1e-12)



def test_four_teeth_of_200_steps_are_planned_optimally_with_a_certificate():
    """Beyond the label DP's table (20 x 202^4 entries), the teeth reversed one after another (2960) are proven
    optimal by the Lagrangian lower bound: every cost is an integer, so is the optimum, and the bound exceeds 2959."""
    from checkpointing.join_optimal import join_lower_bound

    graph, platform = JoinGraph.uniform(4, 200), Platform((Level(20),))
    plan = join_plan("optimal", graph, platform)
    assert plan.value == join_plan("sequential", graph, platform).value == 2960
    assert plan.certificate > plan.value - 1 and join_lower_bound(graph, platform) < plan.value - 100  # counts only
    assert simulate_join(plan.schedule(), graph, platform, structured=True).makespan == 2960


def test_certificates_agree_with_the_exact_optimum(monkeypatch):
    """With the DP's limit lowered, the optimal planner certifies or refuses; on 60 random graphs every certified
    plan costs the exact optimum (DP with its normal limit), and every refusal names a bound below it (55 certified,
    5 refused)."""
    from checkpointing import join_optimal

    rng = random.Random(4)
    certified = refused = 0
    for _ in range(60):
        graph = JoinGraph(tuple(Branch(rng.randint(1, 12)) for _ in range(rng.randint(2, 3))),
                          Branch(rng.randint(0, 4), None, 1.0))
        platform = Platform((Level(rng.randint(graph.p + 1, graph.p + 5)),), uf=1.0, ub=rng.choice([0.0, 1.0, 2.0]))
        exact = join_plan("optimal", graph, platform).value
        monkeypatch.setattr(join_optimal, "MAX_ENTRIES", 1)
        try:
            plan = join_plan("optimal", graph, platform)
        except ScheduleDoesNotFit as refusal:
            assert "not proven optimal" in str(refusal)
            bound = float(str(refusal).rsplit("lower bound is ", 1)[1].split(",")[0])
            assert bound <= exact + 1e-9
            refused += 1
        else:
            assert plan.value == exact and plan.certificate <= exact + 1e-9
            certified += 1
        monkeypatch.undo()
    assert certified > 20 and refused > 0
