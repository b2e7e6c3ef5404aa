# icesheet-adjoint: the two commands of the README are `make run` and `make test`.
# Both build the environment first when it is missing (scripts/install.sh; about 12 minutes the first time on
# 2 cores, a few seconds afterwards). The cache lives in $(ICESHEET_CACHE) (default ~/.cache/icesheet-adjoint).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ENV := source scripts/env.sh &&
OUT ?= out
PYTEST_ARGS ?=
# make test: one pytest worker per core (pytest-xdist), the tests of one file on one worker in their order
# (tests/test_docs.py runs a document's blocks in order in one directory; module fixtures are built once)
TEST_WORKERS ?= auto

.PHONY: install run smoke test test-python test-firedrake test-mpi figures bench clean help

help:
	@echo "make run           run the default scenario (marine ice stream) into $(OUT)/run"
	@echo "make test          the whole test suite (what CI runs)"
	@echo "make test-python   the pure-Python tests only (checkpointing schedules; no Firedrake)"
	@echo "make test-firedrake  the Firedrake tests only"
	@echo "make smoke         a small Firedrake run: nonlinear PDE, gradient, Taylor test"
	@echo "make figures       regenerate the experiments' figures into $(OUT)/figures"
	@echo "make bench         run the benchmarks (tables under benchmarks/results)"
	@echo "make install       build/refresh the environment only"

install:
	@bash scripts/install.sh

run: install
	$(ENV) icesheet run --out $(OUT)/run --overwrite

smoke: install
	$(ENV) python -m experiments.smoke_taylor --out $(OUT)/smoke

test: install
	$(ENV) python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-python: install
	$(ENV) python -m pytest -m "not firedrake" tests/checkpointing tests/experiments tests/test_install_script.py $(PYTEST_ARGS)

test-firedrake: install
	$(ENV) python -m pytest -m firedrake $(PYTEST_ARGS)

figures: install
	$(ENV) python -m experiments.all --out $(OUT)/figures

bench: install
	$(ENV) for b in benchmarks/bench_*.py; do echo "== $$b"; python $$b; done

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis
