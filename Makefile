# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard proto/hsmnode/pb/*.proto)

# Python caches compiled modules (__pycache__, and pytest its rewritten test modules) unless this is set,
# as some machine images do: then every member and CLI process of the suite compiles every module it
# imports again (0.2 s of CPU per member process, 0.13 s per CLI call, 4 s per pytest collection).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-processes lint fmt proto proto-check unit bench chaos drill-membership clean system-packages pkcs11-clients

# Debian packages the PKCS#11 tests and the bench need: p11-kit's client module, OpenSC's
# pkcs11-tool, SoftHSMv2 (the bench's baseline), openssl (signature checks) and OpenSSL's headers
# (building OpenSC 0.26's pkcs11-tool, make pkcs11-clients).
SYSTEM_PACKAGES := p11-kit-modules opensc softhsm2 openssl libssl-dev
SYSTEM_FILES    := /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so /usr/bin/pkcs11-tool /usr/bin/softhsm2-util /usr/bin/openssl /usr/include/openssl/evp.h

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/hsmnode dev $(ARGS)

# Installs what is missing with apt-get when root (as CI is); otherwise names the packages.
system-packages:
	@missing=""; for f in $(SYSTEM_FILES); do test -e $$f || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(SYSTEM_PACKAGES) (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "missing:$$missing"; \
	    echo "install the Debian packages: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

# p11-kit 0.25.5's client module and OpenSC 0.26.1's pkcs11-tool, built once from Debian's source
# packages into ~/.cache/hsmnode (bookworm's carry no AES-GCM): scripts/pkcs11-clients.sh says why and how.
pkcs11-clients: $(STAMP) system-packages
	@scripts/pkcs11-clients.sh $(BIN)

# The suite in two phases (scripts/test-suite.sh, tests/conftest.py): the tests not marked `serial` on
# TEST_WORKERS pytest-xdist workers, then the `serial` ones (they observe timing) alone.
TEST_WORKERS ?= 3

test: $(STAMP) system-packages pkcs11-clients lint proto-check
	scripts/test-suite.sh $(BIN)/python $(TEST_WORKERS) $(PYTEST_ARGS)

# The suite with every test cluster as member processes (tests/common/cluster.py): what the
# in-process clusters of the SDK-level tests stand for, checked against `hsmnode serve` processes.
test-processes: $(STAMP) system-packages pkcs11-clients
	HSMNODE_TEST_CLUSTERS=processes scripts/test-suite.sh $(BIN)/python $(TEST_WORKERS) $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/test_layering.py

lint: $(STAMP)
	$(BIN)/ruff check hsmnode tests bench
	$(BIN)/ruff format --check hsmnode tests bench
	$(BIN)/mypy hsmnode/domain hsmnode/client hsmnode/service hsmnode/server hsmnode/cli hsmnode/pkcs11 hsmnode/ops \
		hsmnode/crypto hsmnode/raft hsmnode/backup hsmnode/observability hsmnode/replication.py hsmnode/node.py \
		hsmnode/sessions.py hsmnode/membership.py hsmnode/config.py hsmnode/envconfig.py

fmt: $(STAMP)
	$(BIN)/ruff format hsmnode tests bench
	$(BIN)/ruff check --fix hsmnode tests bench

# Regenerate the committed protobuf/gRPC code from proto/.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

# Fail when the committed generated code differs from what proto/ generates.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	for f in $$tmp/hsmnode/pb/*; do \
	  cmp -s "$$f" "hsmnode/pb/$$(basename $$f)" || { echo "proto drift: hsmnode/pb/$$(basename $$f) differs from proto/ (run make proto)"; rm -rf $$tmp; exit 1; }; \
	done; \
	for f in hsmnode/pb/*_pb2*.py*; do \
	  test -e "$$tmp/hsmnode/pb/$$(basename $$f)" || { echo "proto drift: stale $$f has no .proto (run make proto)"; rm -rf $$tmp; exit 1; }; \
	done; \
	rm -rf $$tmp; echo "proto-check: generated code matches proto/"

# Every row of issue 16's table in one run, same-run baselines, table + JSON (bench/run.py):
# ARGS="--seconds 5 --kills 12" or ARGS="--only writes failover". Installs SoftHSMv2 when root.
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# The long membership soak of issue 10 on a fresh 5-member cluster (about 5 minutes):
# 20 follower and 5 leader remove/re-add cycles under load, then two of five killed.
drill-membership: $(STAMP)
	$(BIN)/python bench/membership.py $(ARGS)

# The long fault runs (tests/fault, marker chaos): chaos kills, 20 follower restarts,
# remove/re-add cycles, 5 partition cuts; -s prints their figures.
chaos: $(STAMP)
	$(BIN)/python -m pytest -q -s -m chaos tests/fault $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
