#!/usr/bin/env bash
# Build the Firedrake stack for icesheet-adjoint and install this project into it.
#
# Idempotent and resumable: each phase writes a stamp file when it has finished, and is
# skipped when its stamp is present; a phase that was interrupted has no stamp and is redone
# from its start. Everything is built under one cache directory outside the checkout:
#
#     ICESHEET_CACHE   (default: ~/.cache/icesheet-adjoint)
#
# Nothing in the cache is relocatable (PETSc, petsc4py and the venv record absolute paths),
# so keep it at the path it was built at.  Phases and their logs:
#
#     checks    OS, Python, disk space                       (no log)
#     apt       Debian packages                              $CACHE/logs/apt.log
#     source    PETSc 3.26.0 source (the PyPI `petsc` sdist)  $CACHE/logs/source.log
#     configure PETSc ./configure against Debian's libraries $CACHE/logs/configure.log
#     build     make all                                     $CACHE/logs/build.log
#     venv      venv + firedrake, petsc4py, pyadjoint, ...   $CACHE/logs/venv.log
#     project   this checkout, editable, with test extras    $CACHE/logs/project.log
#
# Usage: scripts/install.sh [--force PHASE]   (redo PHASE and every phase after it)
set -Eeuo pipefail

PETSC_VERSION=3.26.0
FIREDRAKE_VERSION=2026.10.0
PETSC4PY_VERSION=3.26.0
PYADJOINT_VERSION=2026.10.0
CHECKPOINT_SCHEDULES_VERSION=1.0.4
VTK_VERSION=9.7.2
H5PY_VERSION=3.16.0
STACK="firedrake[vtk]==$FIREDRAKE_VERSION vtk==$VTK_VERSION petsc4py==$PETSC4PY_VERSION pyadjoint-ad==$PYADJOINT_VERSION checkpoint-schedules==$CHECKPOINT_SCHEDULES_VERSION h5py==$H5PY_VERSION"
MIN_FREE_MB=3000

APT_PACKAGES="bison build-essential cmake flex gfortran git ninja-build pkg-config python3-dev zlib1g-dev
libfftw3-dev libfftw3-mpi-dev libhdf5-mpi-dev libhwloc-dev libmumps-ptscotch-dev libmetis-dev libopenblas-dev
libopenmpi-dev openmpi-bin libptscotch-dev libscalapack-openmpi-dev libsuitesparse-dev libsuperlu-dev
libsuperlu-dist-dev"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ICESHEET_CACHE:-$HOME/.cache/icesheet-adjoint}
PETSC_DIR=$CACHE/petsc-$PETSC_VERSION
PETSC_ARCH=arch-firedrake-default
VENV=$CACHE/venv
LOGS=$CACHE/logs
STAMPS=$CACHE/stamps
PYTHON=${ICESHEET_PYTHON:-python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export PIP_CACHE_DIR=$CACHE/pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1
NPROC=$(nproc --all 2>/dev/null || echo 2)

phase=startup
log=""
say() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
    say "FAILED in phase '$phase': $*"
    exit 1
}
on_error() {
    local rc=$?
    say "FAILED in phase '$phase' (exit code $rc)."
    if [ -n "$log" ] && [ -f "$log" ]; then
        say "log: $log ; its last 40 lines:"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
    say "Nothing of phase '$phase' was marked done: fix the cause and run scripts/install.sh again;"
    say "finished phases are kept, this one is redone from its start."
    exit "$rc"
}
trap on_error ERR
trap 'say "interrupted in phase $phase; run scripts/install.sh again to resume"; exit 130' INT TERM

force_from=""
if [ "${1:-}" = "--force" ]; then force_from=${2:?--force needs a phase name}; fi
PHASES=(apt source configure build venv project)
forcing=0
done_already() {  # done_already PHASE: true when its stamp exists and it is not forced
    [ "$force_from" = "$1" ] && forcing=1
    [ $forcing = 0 ] && [ -f "$STAMPS/$1" ]
}
begin() { phase=$1; log=$LOGS/$1.log; rm -f "$STAMPS/$1"; : >"$log"; T0=$(date +%s); say "phase $1: $2 (log: $log)"; }
finish() { date -Is >"$STAMPS/$phase"; say "phase $phase done in $(( $(date +%s) - T0 )) s"; log=""; }
skip() { say "phase $1: already done ($(cat "$STAMPS/$1")), skipped"; }

# ---------------------------------------------------------------- checks
phase=checks
[ -r /etc/os-release ] || die "cannot read /etc/os-release: this script supports Debian 12 (bookworm) only"
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
    die "unsupported OS '${PRETTY_NAME:-unknown}': this script supports Debian 12 (bookworm) only; README.md (The environment) lists what it builds"
fi
command -v "$PYTHON" >/dev/null || die "Python interpreter '$PYTHON' not found (set ICESHEET_PYTHON)"
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case $pyver in
    3.11|3.12|3.13) ;;
    *) die "unsupported Python $pyver from '$PYTHON': this project needs Python 3.11-3.13 (tomllib; firedrake $FIREDRAKE_VERSION supports up to 3.13; set ICESHEET_PYTHON)";;
esac
mkdir -p "$LOGS" "$STAMPS" "$PIP_CACHE_DIR" || die "cannot create the cache directory $CACHE (set ICESHEET_CACHE to a writable place)"
[ -w "$CACHE" ] || die "cache directory $CACHE is not writable (set ICESHEET_CACHE)"
if [ ! -f "$STAMPS/project" ] || [ -n "$force_from" ]; then
    free_mb=$(df -Pm "$CACHE" | awk 'NR==2 {print $4}')
    need=$MIN_FREE_MB; [ -f "$STAMPS/venv" ] && need=200
    [ "$free_mb" -ge "$need" ] || die "only $free_mb MB free under $CACHE; the build needs about $need MB (PETSc 220 MB + venv 530 MB + build files); free some space or set ICESHEET_CACHE"
fi
say "cache: $CACHE ; python: $PYTHON ($pyver) ; checkout: $here"

# ---------------------------------------------------------------- apt
missing_packages() {
    local p miss=""
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || miss="$miss $p"
    done
    echo "$miss"
}
# apt has no stamp of its own: the packages may be removed behind our back, so we look every time.
phase=apt
miss=$(missing_packages)
if [ -n "$miss" ]; then
    begin apt "installing Debian packages:$miss"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update >>"$log" 2>&1
    $SUDO apt-get install -y --no-install-recommends $miss >>"$log" 2>&1
    miss=$(missing_packages)
    [ -z "$miss" ] || die "apt-get finished but these packages are still missing:$miss (see $log)"
    finish
else
    say "phase apt: all Debian packages present"
fi

# ---------------------------------------------------------------- source
if done_already source && [ -x "$PETSC_DIR/configure" ]; then skip source; else
    begin source "fetching the PETSc $PETSC_VERSION source (PyPI sdist 'petsc')"
    rm -rf "$PETSC_DIR" "$CACHE/petsc-sdist"
    "$PYTHON" -m pip download --no-deps "petsc==$PETSC_VERSION" -d "$CACHE/petsc-sdist" >>"$log" 2>&1
    tarball=$(ls "$CACHE"/petsc-sdist/petsc-"$PETSC_VERSION".tar.gz)
    mkdir -p "$PETSC_DIR"
    tar -xzf "$tarball" -C "$PETSC_DIR" --strip-components=1 >>"$log" 2>&1
    [ -x "$PETSC_DIR/configure" ] || die "the sdist $tarball has no ./configure"
    rm -f "$STAMPS/configure" "$STAMPS/build" "$STAMPS/venv" "$STAMPS/project"
    finish
fi

# Debian's multiarch library directory (x86_64-linux-gnu, aarch64-linux-gnu, ...), where its HDF5 lives.
multiarch() { dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch; }

# ---------------------------------------------------------------- configure
if done_already configure; then skip configure; else
    begin configure "PETSc ./configure against Debian's Open MPI, HDF5, MUMPS, ... (about 1 minute)"
    cd "$PETSC_DIR"
    rm -rf "$PETSC_ARCH"
    ./configure PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" \
        --with-c2html=0 --with-debugging=0 --with-fortran-bindings=0 --with-shared-libraries=1 \
        --with-strict-petscerrorcode --with-cuda=0 --with-x=0 \
        --COPTFLAGS=-O2 --CXXOPTFLAGS=-O2 --FOPTFLAGS=-O2 \
        --with-bison --with-fftw \
        --with-hdf5-include=/usr/include/hdf5/openmpi \
        --with-hdf5-lib="[/usr/lib/$(multiarch)/hdf5/openmpi/libhdf5.so,/usr/lib/$(multiarch)/hdf5/openmpi/libhdf5_hl.so]" \
        --with-hwloc --with-metis --with-mumps \
        --with-ptscotch --with-ptscotch-include=/usr/include/scotch \
        --with-ptscotch-lib="-lptesmumps -lptscotch -lptscotcherr -lesmumps -lscotch -lscotcherr" \
        --with-scalapack-lib=-lscalapack-openmpi \
        --with-superlu_dist --with-superlu_dist-include=/usr/include/superlu-dist --with-superlu_dist-lib=-lsuperlu_dist \
        --with-suitesparse --with-zlib >>"$log" 2>&1
    cd "$here"
    rm -f "$STAMPS/build" "$STAMPS/venv" "$STAMPS/project"
    finish
fi

# ---------------------------------------------------------------- build
if done_already build; then skip build; else
    begin build "compiling PETSc on $NPROC cores (about 4 minutes on 2 cores)"
    make -C "$PETSC_DIR" PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" MAKE_NP="$NPROC" all >>"$log" 2>&1
    make -C "$PETSC_DIR" PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" check >"$LOGS/check.log" 2>&1 || true
    cat "$LOGS/check.log" >>"$log"
    if grep -qi "possible error" "$LOGS/check.log"; then
        die "PETSc built but 'make check' reports a possible error (see $LOGS/check.log)"
    fi
    # petsc4py/h5py wheels cached from an earlier PETSc would not match this one.
    rm -rf "$PIP_CACHE_DIR/wheels"
    rm -f "$STAMPS/venv" "$STAMPS/project"
    finish
fi

# ---------------------------------------------------------------- venv
export PETSC_DIR PETSC_ARCH
stack_id="$STACK"
if done_already venv && [ -x "$VENV/bin/python" ] && grep -qxF "$stack_id" "$VENV/.icesheet-stack" 2>/dev/null; then
    skip venv
else
    begin venv "virtual environment with $STACK (about 7-9 minutes on 2 cores from nothing)"
    # A venv whose interpreter does not start is rebuilt; otherwise pip brings the stack up to date in place
    # (an interrupted pip install is simply run again).
    if ! "$VENV/bin/python" -c "import sys" >/dev/null 2>&1; then
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" >>"$log" 2>&1
        "$VENV/bin/python" -m pip install -U pip setuptools wheel >>"$log" 2>&1
    fi
    CC=mpicc CXX=mpicxx HDF5_MPI=ON HDF5_DIR="/usr/lib/$(multiarch)/hdf5/openmpi" \
    CFLAGS="-O2 -g0" CXXFLAGS="-O2 -g0" \
        "$VENV/bin/python" -m pip install --no-binary h5py $STACK >>"$log" 2>&1
    echo "$stack_id" >"$VENV/.icesheet-stack"
    rm -f "$STAMPS/project"
    finish
fi

# ---------------------------------------------------------------- project
# Editable install of *this* checkout: cheap, so it is redone whenever the checkout or its
# pyproject.toml changed (a fresh clone elsewhere re-points the venv at itself).
proj_id="$here $(sha1sum "$here/pyproject.toml" | cut -c1-12)"
if done_already project && grep -qxF "$proj_id" "$VENV/.icesheet-project" 2>/dev/null; then
    skip project
else
    begin project "installing this checkout ($here) in editable mode with its test extras"
    "$VENV/bin/python" -m pip install -e "$here[test]" >>"$log" 2>&1
    echo "$proj_id" >"$VENV/.icesheet-project"
    finish
fi

phase=verify
log=$LOGS/verify.log
"$VENV/bin/python" -c "import firedrake, pyadjoint, checkpoint_schedules, icesheet, checkpointing; print('firedrake', firedrake.__version__ if hasattr(firedrake, '__version__') else 'ok')" >"$log" 2>&1
say "ready: $VENV (activate with: source scripts/env.sh)"
