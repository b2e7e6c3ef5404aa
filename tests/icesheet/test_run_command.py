"""``icesheet run`` end to end on a coarse ice-shelf ramp and marine ice stream: every output file is written, the
CSV starts from the exact initial volume, and a provided initial state with a negative or NaN thickness is refused
before any step."""
import csv
import json
import math

import pytest

pytestmark = pytest.mark.firedrake

COARSE = ["--scenario", "marine_ice_stream", "--mesh-size", "40000", "--no-progress"]


def test_run_writes_vtk_csv_plots_and_summary(tmp_path):
    from icesheet.cli import main
    from icesheet.output import CSV_COLUMNS, vtk_available
    from icesheet.scenarios import scenario_parameters

    out = tmp_path / "run"
    assert main(["run", *COARSE, "--steps", "2", "--dt", "5", "--out", str(out)]) == 0
    for name in ("steps.csv", "summary.json", "final_state.png", "volume.png", "picard.png"):
        assert (out / name).is_file(), name
    # firedrake.output.VTKFile needs the vtk package; without it the run says so in the summary and writes no VTK.
    assert (out / "fields.pvd").is_file() == vtk_available()
    with open(out / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert [float(r["time"]) for r in rows] == [0.0, 5.0, 10.0]
    iterations = [int(r["picard_iterations"]) + int(r["newton_iterations"]) + int(r["chord_iterations"]) for r in rows]
    # Row 0 counts the velocity solve at the initial thickness; step 1 solves again at that same thickness from
    # the converged velocity (nothing to do); step 2, at the updated thickness, iterates again.
    assert iterations[0] > 0 and iterations[1] == 0 and iterations[2] > 0, iterations
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["final_volume"] == pytest.approx(float(rows[-1]["volume"]))
    assert summary["vtk"] == vtk_available()


def test_run_csv_starts_from_the_exact_initial_volume(tmp_path):
    from icesheet.cli import main
    from icesheet.scenarios import scenario_parameters

    out = tmp_path / "ramp"
    assert main(["run", "--scenario", "ice_shelf_ramp", "--steps", "1", "--no-progress", "--out", str(out)]) == 0
    with open(out / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    # The ramp's thickness is linear in x: its volume is (h0 + h0 - dh) / 2 * length * width.
    parameters = scenario_parameters("ice_shelf_ramp")
    ice, mesh = parameters["ice"], parameters["mesh"]
    exact = (2 * ice["inflow_thickness"] - ice["thickness_drop"]) / 2 * mesh["length"] * mesh["width"]
    assert float(rows[0]["volume"]) == pytest.approx(exact, rel=1e-12)
    assert float(rows[0]["vaf"]) == 0.0  # all afloat


def write_square_gmsh(path, side, cells):
    """ASCII gmsh 2.2 mesh of [0, side]^2 in triangles; boundary ids 1 (x = 0), 2 (x = side), 3 (y = 0),
    4 (y = side)."""
    n = cells + 1
    node = lambda i, j: 1 + i + n * j  # noqa: E731
    nodes = [f"{node(i, j)} {side * i / cells} {side * j / cells} 0" for j in range(n) for i in range(n)]
    edges = []
    for k in range(cells):
        edges += [(1, node(0, k), node(0, k + 1)), (2, node(cells, k), node(cells, k + 1)),
                  (3, node(k, 0), node(k + 1, 0)), (4, node(k, cells), node(k + 1, cells))]
    triangles = []
    for j in range(cells):
        for i in range(cells):
            a, b, c, d = node(i, j), node(i + 1, j), node(i + 1, j + 1), node(i, j + 1)
            triangles += [(a, b, c), (a, c, d)]
    elements = [f"{len(edges) + len(triangles)}"]
    elements += [f"{e + 1} 1 2 {tag} {tag} {p} {q}" for e, (tag, p, q) in enumerate(edges)]
    elements += [f"{len(edges) + t + 1} 2 2 5 5 {p} {q} {r}" for t, (p, q, r) in enumerate(triangles)]
    path.write_text("\n".join(["$MeshFormat", "2.2 0 8", "$EndMeshFormat", "$Nodes", str(len(nodes)), *nodes,
                                "$EndNodes", "$Elements", *elements, "$EndElements", ""]))


def test_run_on_a_gmsh_mesh_file(tmp_path):
    from icesheet.cli import main

    mesh = tmp_path / "square.msh"
    write_square_gmsh(mesh, 20e3, 4)
    out = tmp_path / "gmsh"
    assert main(["run", "--scenario", "ice_shelf_ramp", "--mesh", str(mesh), "--steps", "1", "--no-progress",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells"] == 32
    assert summary["initial_volume"] == pytest.approx((500.0 + 400.0) / 2 * 20e3 * 20e3, rel=1e-12)


@pytest.mark.parametrize("bad_value", [-1.0, math.nan])
def test_bad_thickness_in_an_initial_state_is_refused(tmp_path, capsys, bad_value):
    from icesheet.cli import main
    from icesheet.scenarios import build_model, scenario_parameters

    parameters = scenario_parameters("marine_ice_stream", overrides={"mesh.cell_size": 40e3})
    model = build_model("marine_ice_stream", parameters)
    model.thickness.dat.data[0] = bad_value
    model.save_state(tmp_path / "state.h5")
    out = tmp_path / "run"
    code = main(["run", *COARSE, "--initial-state", str(tmp_path / "state.h5"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "thickness (from" in err and ("NaN or infinite" in err if math.isnan(bad_value) else "must be >= 0" in err)
    assert not out.exists()


def test_model_refuses_a_nan_or_negative_thickness_expression():
    import firedrake

    from icesheet.errors import InvalidFieldError
    from icesheet.model import IceModel
    from icesheet.setups import CHANNEL

    mesh = firedrake.UnitSquareMesh(2, 2)
    x, _ = firedrake.SpatialCoordinate(mesh)
    common = dict(bed=-1000.0, friction=0.0, rate_factor=1.0, accumulation=0.0,
                  inflow_velocity=firedrake.as_vector((1.0, 0.0)), inflow_thickness=100.0, boundaries=CHANNEL)
    with pytest.raises(InvalidFieldError, match="thickness: minimum value -100"):
        IceModel(mesh, thickness=100.0 - 200.0 * x, **common)
    with pytest.raises(InvalidFieldError, match="rate_factor: minimum value 0"):
        IceModel(mesh, thickness=100.0, **{**common, "rate_factor": 0.0})
