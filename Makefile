# Strata: `make run` starts the embedded server, `make test` runs every test.
# Both install what they need first (system packages for RocksDB's bindings, a Python venv
# with the S3 clients). One cargo profile (release) serves run, test and bench, so RocksDB's
# C++ is compiled once; the target directory lives outside the clone so fresh clones reuse it.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/strata
export STRATA_VENV ?= $(CURDIR)/.venv

.PHONY: run test build deps test-rust test-compat lint fmt cluster cluster-stop docker-up docker-down bench

# System packages: libclang for bindgen (rocksdb), a C++ compiler, python venv support, curl,
# openssl (the HTTPS tests make a throwaway CA with it), rclone (a client of the s3-compat matrix),
# protoc (etcd-client's gRPC code is generated at build time) and etcd (the shared catalog's
# back end; tests start their own members on free loopback ports) with etcdctl (snapshot save and
# restore of an etcd catalog, and their test).
deps:
	@missing=""; \
	ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing="$$missing libclang-dev clang"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v make >/dev/null 2>&1 || missing="$$missing make"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v rclone >/dev/null 2>&1 || missing="$$missing rclone"; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	command -v etcdctl >/dev/null 2>&1 || missing="$$missing etcd-client"; \
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

# The client suite includes test_bench.py: a 5-second smoke of `strata bench` (exit 0, no
# errors, GETs verified), so the load generator cannot rot. Speed is never asserted.
test: deps
	$(CARGO) build --release --locked -p strata-gateway
	$(CARGO) test --release --locked --workspace
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh
	@echo "== the client suite again, against a 6-node cluster (gateway + storage-node processes) =="
	S3COMPAT_CLUSTER=1 STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh \
	  --ignore=tests/s3-compat/test_cluster_faults.py --ignore=tests/s3-compat/test_docker.py \
	  --ignore=tests/s3-compat/test_durability.py --ignore=tests/s3-compat/test_repair.py \
	  --ignore=tests/s3-compat/test_scrub_admin.py --ignore=tests/s3-compat/test_tls.py
	$(MAKE) --no-print-directory lint

test-rust: deps
	$(CARGO) test --release --locked --workspace

test-compat: build
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh

# The standard benchmark suite (~15 min): the machine's ceilings, an embedded server and a
# 6-node cluster on free ports, fsync on. Rewrites the generated section of BENCHMARKS.md.
bench: build
	STRATA_BIN=$(BIN) bash tests/bench/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# A local cluster: 6 storage nodes on 127.0.0.1:7100-7105 and a gateway on 127.0.0.1:$(CLUSTER_PORT),
# everything (data, logs, pid files, secret) under $(CLUSTER_DIR). `make cluster-stop` stops exactly these.
CLUSTER_DIR ?= $(CURDIR)/.cluster
CLUSTER_PORT ?= 9000
CLUSTER_NODES ?= 6

cluster: build
	@set -eu; d="$(CLUSTER_DIR)"; mkdir -p "$$d"; \
	if ls "$$d"/*.pid >/dev/null 2>&1; then echo "a cluster is already running from $$d (make cluster-stop first)"; exit 1; fi; \
	[ -s "$$d/secret" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$$d/secret"); \
	{ echo 'listen = "127.0.0.1:$(CLUSTER_PORT)"'; echo "data = \"$$d/gateway\""; \
	  echo "cluster_secret_file = \"$$d/secret\""; echo 'shard_timeout_secs = 10'; echo 'health_interval_ms = 500'; \
	  for i in $$(seq 0 $$(($(CLUSTER_NODES) - 1))); do \
	    printf '[[nodes]]\nid = %d\naddress = "127.0.0.1:%d"\n' $$i $$((7100 + i)); done; } > "$$d/gateway.toml"; \
	for i in $$(seq 0 $$(($(CLUSTER_NODES) - 1))); do \
	  nohup $(BIN) storage-node --listen 127.0.0.1:$$((7100 + i)) --data "$$d/node$$i" --secret-file "$$d/secret" \
	    > "$$d/node$$i.log" 2>&1 & echo $$! > "$$d/node$$i.pid"; done; \
	nohup $(BIN) gateway --config "$$d/gateway.toml" > "$$d/gateway.log" 2>&1 & echo $$! > "$$d/gateway.pid"; \
	for t in $$(seq 1 100); do curl -sf http://127.0.0.1:$(CLUSTER_PORT)/_strata/health/ready >/dev/null && break; sleep 0.2; done; \
	curl -sf http://127.0.0.1:$(CLUSTER_PORT)/_strata/health/ready >/dev/null || { echo "gateway not ready; see $$d/gateway.log"; exit 1; }; \
	head -n 4 "$$d/gateway.log"; echo "Logs and data: $$d   Stop: make cluster-stop"

cluster-stop:
	@d="$(CLUSTER_DIR)"; for f in "$$d"/*.pid; do [ -e "$$f" ] || continue; pid=$$(cat "$$f"); \
	  if grep -qa strata "/proc/$$pid/cmdline" 2>/dev/null; then kill -CONT "$$pid" 2>/dev/null; kill -TERM "$$pid"; fi; rm -f "$$f"; done; \
	for t in $$(seq 1 50); do pgrep -f "$$d/" >/dev/null || break; sleep 0.2; done; echo "cluster stopped"

# The same cluster in containers (1 gateway + 6 storage nodes), from a locally built Debian base
# image (no registry needed): see docker/README.md. Gateway on 127.0.0.1:$${STRATA_DOCKER_PORT:-9300}.
docker-up: build
	STRATA_BIN=$(BIN) docker/cluster.sh up

docker-down:
	docker/cluster.sh down
