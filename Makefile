# Every target bootstraps what it needs: venv, dependencies, generated code.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
GEN := gen
PROTOS := $(shell find proto -name '*.proto')
STAMP := $(VENV)/.installed

.PHONY: run demo test gen lint lock bench backtest research walk-forward migrate contract-baseline mutation client clean

# Every dependency, transitive ones too, installed from the lock with its hashes (`make lock` after a
# change of pins in pyproject.toml); then the project itself, without dependencies of its own.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	printf "$(CURDIR)/$(GEN)\n$(CURDIR)\n$(CURDIR)/client/src\n" > $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/cryptosignals-gen.pth
	touch $(STAMP)

# The OpenAPI file is generated too: its generator and what it reads are inputs.
$(GEN)/.stamp: $(STAMP) $(PROTOS) service/build/codegen.py service/edge/openapi.py service/rpc/symbols.py service/rpc/auth.py
	$(BIN)/python -m service.build.codegen
	touch $(GEN)/.stamp

gen: $(GEN)/.stamp

# buf needs google/api/*.proto as files: copied from googleapis-common-protos in the venv.
BUF_DEPS := $(GEN)/buf-deps
# The contract as last released (a committed buf image): `buf breaking` compares proto/ with it.
BASELINE := proto/baseline.binpb
$(BUF_DEPS)/.stamp: $(GEN)/.stamp
	mkdir -p $(BUF_DEPS)/google/api
	cp $$($(BIN)/python -c 'import google.api.annotations_pb2 as m, os; print(os.path.dirname(m.__file__))')/{annotations,http,httpbody}.proto $(BUF_DEPS)/google/api/
	touch $@

# The stubs package for callers: the cryptosignals-client wheel in dist/ (generated stubs, .pyi, the
# .proto files and the client/src helper; nothing of the server), built offline in build/client/.
client: $(STAMP)
	$(BIN)/python -m service.build.client_package

run: gen
	$(BIN)/python -m service.commands.launcher

demo: gen
	$(BIN)/python -m service.commands.launcher --demo

test: gen
	$(BIN)/python -m pytest

lint: gen $(BUF_DEPS)/.stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/buf lint
	$(BIN)/buf breaking proto --against $(BASELINE)

# The locks (runtime for the image, runtime + dev for the venv), from pyproject.toml's pins, with the
# hashes of every file: for this machine kind (CPython 3.11, x86_64 manylinux).
LOCK := $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_31 --quiet
lock: $(STAMP)
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev --extra research -o requirements-dev.lock

# After a deliberate, released contract change: the new baseline `make lint` compares against.
contract-baseline: $(BUF_DEPS)/.stamp
	$(BIN)/buf build proto -o $(BASELINE)

bench: gen
	$(BIN)/python -m bench

# Offline on the bundled real history unless COINGLASS_API_KEY is set; ARGS="--symbol ETH ..." for more.
backtest: gen
	$(BIN)/python -m service.commands.backtest $(ARGS)

# A panel of coins and years from a dataset folder, net of costs: ARGS="--data DIR --horizon 1 --json r.json".
research: gen
	$(BIN)/python -m service.commands.research $(ARGS)

# The server migrates at start-up too; this is for operators who migrate before deploying.
migrate: gen
	$(BIN)/python -m service.commands.migrate $(or $(ARGS),migrate)

walk-forward: gen
	$(BIN)/python -m service.commands.backtest --walk-forward $(ARGS)

# Mutation testing (slow, not in CI): mutmut over the modules [tool.mutmut] in pyproject.toml names,
# each mutant run against the tests that exercise it; the survivors are listed at the end.
# MUTANTS='providers.cache.* providers.cache_store.*' narrows the run to those modules.
mutation: gen
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(GEN) $(VENV) mutants build/client dist
