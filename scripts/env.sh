# Source this file to work inside the project's environment:  source scripts/env.sh
# (built by scripts/install.sh; cache location from ICESHEET_CACHE, default ~/.cache/icesheet-adjoint)
ICESHEET_CACHE=${ICESHEET_CACHE:-$HOME/.cache/icesheet-adjoint}
export ICESHEET_CACHE
export PETSC_DIR=$ICESHEET_CACHE/petsc-3.26.0
export PETSC_ARCH=arch-firedrake-default
export OMP_NUM_THREADS=1
# Debian's CHOLMOD (SuiteSparse 5) asks for 4 OpenMP threads in its supernodal factorisation whatever
# OMP_NUM_THREADS says; the thread limit caps that team at 1 (docs/solvers.md, "Pinning mattered on this machine").
export OMP_THREAD_LIMIT=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Two ranks on a two-core machine: allow oversubscription so that mpiexec -n 2 works inside CI sandboxes too.
export OMPI_MCA_rmaps_base_oversubscribe=1
export MPLBACKEND=Agg
if [ -f "$ICESHEET_CACHE/venv/bin/activate" ]; then
    . "$ICESHEET_CACHE/venv/bin/activate"
else
    echo "scripts/env.sh: no environment at $ICESHEET_CACHE/venv yet; run scripts/install.sh (or make install)" >&2
fi
