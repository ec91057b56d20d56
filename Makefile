# Strata: `make run` starts the embedded server, `make test` runs every test.
# Both install what they need first (system packages for RocksDB's bindings, a Python venv
# with the S3 clients). One cargo profile (release) serves run, test and bench, so RocksDB's
# C++ is compiled once; the target directory lives outside the clone so fresh clones reuse it.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/strata
export STRATA_VENV ?= $(CURDIR)/.venv

.PHONY: run test build deps test-rust test-compat lint fmt

# System packages: libclang for bindgen (rocksdb), a C++ compiler, python venv support, curl.
deps:
	@missing=""; \
	ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing="$$missing libclang-dev clang"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v make >/dev/null 2>&1 || missing="$$missing make"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(CARGO) build --release --locked -p strata-gateway

run: build
	$(BIN) server

test: deps
	$(CARGO) build --release --locked -p strata-gateway
	$(CARGO) test --release --locked --workspace
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh

test-rust: deps
	$(CARGO) test --release --locked --workspace

test-compat: build
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
