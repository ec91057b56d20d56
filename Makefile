# Strata: `make run` starts the embedded server, `make test` runs every test.
# Both install what they need first (system packages for RocksDB's bindings, a Python venv
# with the S3 clients). One cargo profile (release) serves run, test and bench, so RocksDB's
# C++ is compiled once; the target directory lives outside the clone so fresh clones reuse it.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/strata
export STRATA_VENV ?= $(CURDIR)/.venv

.PHONY: run test build deps test-rust test-compat lint fmt cluster cluster-stop docker-up docker-down bench bench-auth \
  fuzz fuzz-smoke fuzz-build fuzz-run

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
	$(MAKE) --no-print-directory fuzz-smoke
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh
	@echo "== the client suite again, against a 6-node cluster (gateway + storage-node processes) =="
	S3COMPAT_CLUSTER=1 STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh $(CLUSTER_RUN_IGNORES)
	@echo "== and against 2 gateways on a 3-member etcd catalog, requests alternating between them (round-robin proxy) =="
	S3COMPAT_GATEWAYS=2 STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh $(CLUSTER_RUN_IGNORES) \
	  --deselect tests/s3-compat/test_protocol.py::test_empty_body_expecting_continue_closes_connection
	$(MAKE) --no-print-directory lint

# Test modules that start their own servers or clusters: run once, in the embedded pass.
# (The 2-gateway pass also leaves out the test of the server's own Connection: close answer: the
# round-robin proxy closes every connection after one response, to alternate requests.)
CLUSTER_RUN_IGNORES := $(foreach t,cluster_faults docker docker_etcd durability multi_gateway repair scrub_admin slow_clients tls cluster_tls,\
  --ignore=tests/s3-compat/test_$(t).py)

test-rust: deps
	$(CARGO) test --release --locked --workspace

test-compat: build
	STRATA_BIN=$(BIN) bash tests/s3-compat/run.sh

# The standard benchmark suite (~15 min): the machine's ceilings, an embedded server and a
# 6-node cluster on free ports, fsync on. Rewrites the generated section of BENCHMARKS.md.
bench: build
	STRATA_BIN=$(BIN) bash tests/bench/run.sh

# What authorization costs: 4 KiB GET as root, as a user, and under a 20-statement bucket
# policy (~3 min). Results: BENCHMARKS.md, "Authorization cost".
bench-auth: build
	STRATA_BIN=$(BIN) bash -c 'source tests/s3-compat/venv.sh && ensure_venv .venv tests/s3-compat/requirements.txt && .venv/bin/python tests/bench/auth_cost.py'

# Fuzzing (gateway/fuzz, its own cargo workspace): libFuzzer through libfuzzer-sys on the stable
# toolchain, with the sanitizer-coverage flags `cargo fuzz build -s none` would pass. Its own
# target dir (other RUSTFLAGS); `--target` keeps build scripts and proc-macros uninstrumented.
# The gateway is built without its default features there, so RocksDB and jemalloc (C/C++) are
# not compiled again. Every target starts from its committed seeds (gateway/fuzz/seeds/<t>) and
# the corpus of earlier runs (kept in the target dir); a crash, panic, leak, timeout (10 s per
# input) or RSS above the limit fails the run and leaves the input in $(FUZZ_TARGET_DIR)/artifacts/<t>/.
#   make fuzz-smoke                      every target for FUZZ_SMOKE_SECONDS (part of `make test`)
#   make fuzz FUZZ_SECONDS=3600 [FUZZ_TARGETS=auth]   longer runs
FUZZ_DIR := gateway/fuzz
FUZZ_TARGET_DIR ?= $(HOME)/.cache/strata/fuzz-target
FUZZ_TARGETS ?= auth aws_chunked xml range_conditional continuation_token post_policy post_form storage_wire
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS ?= 300
FUZZ_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks
FUZZ_FLAGS := -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 -timeout=10 -print_final_stats=1

fuzz-build:
	cd $(FUZZ_DIR) && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
	  $(CARGO) build --release --locked --target $(FUZZ_TRIPLE) --bins

fuzz-smoke: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=$(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=$(FUZZ_SECONDS)

fuzz-run:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$(FUZZ_TARGET_DIR)/corpus/$$t" "$(FUZZ_TARGET_DIR)/artifacts/$$t"; \
	  echo "== fuzz $$t ($(FUZZ_RUN_SECONDS) s)"; \
	  "$(FUZZ_TARGET_DIR)/$(FUZZ_TRIPLE)/release/$$t" $(FUZZ_FLAGS) -max_total_time=$(FUZZ_RUN_SECONDS) \
	    -artifact_prefix="$(FUZZ_TARGET_DIR)/artifacts/$$t/" \
	    "$(FUZZ_TARGET_DIR)/corpus/$$t" "$(FUZZ_DIR)/seeds/$$t" > "$(FUZZ_TARGET_DIR)/$$t.log" 2>&1 \
	    || { tail -n 40 "$(FUZZ_TARGET_DIR)/$$t.log"; echo "fuzz target $$t failed; input in $(FUZZ_TARGET_DIR)/artifacts/$$t/"; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$(FUZZ_TARGET_DIR)/$$t.log" | tr '\n' ' '; echo; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# A local cluster: 6 storage nodes on 127.0.0.1:$(CLUSTER_NODE_PORT)+i (7100-7105) and $(GATEWAYS) gateway(s), the first on
# 127.0.0.1:$(CLUSTER_PORT) and the next on the ports after it; everything (data, logs, one pid file
# per process, secret) under $(CLUSTER_DIR). `make cluster-stop` stops exactly these processes.
#   CATALOG=rocksdb (default): each gateway keeps its catalog in its own data dir (use GATEWAYS=1).
#   CATALOG=etcd: also a 3-member etcd cluster, member i serving clients on 127.0.0.1:$(CLUSTER_ETCD_PORT)+2i
#     (peers on the port after it), data in $(CLUSTER_DIR)/etcdI; every gateway shares its catalog.
#     e.g. `make cluster CATALOG=etcd GATEWAYS=2`: gateways on 9000 and 9001, etcd on 2379/2381/2383.
# The first gateway's files are gateway.{toml,log,pid} and gateway/ (as before), the next ones
# gatewayI.*; they start one after the other (the first one to reach the catalog initialises it).
CLUSTER_DIR ?= $(CURDIR)/.cluster
CLUSTER_PORT ?= 9000
CLUSTER_NODES ?= 6
CLUSTER_NODE_PORT ?= 7100
CATALOG ?= rocksdb
GATEWAYS ?= 1
CLUSTER_ETCD_PORT ?= 2379

cluster: build
	@set -eu; d="$(CLUSTER_DIR)"; mkdir -p "$$d"; \
	case "$(CATALOG)" in rocksdb|etcd) ;; *) echo "CATALOG must be rocksdb or etcd, not $(CATALOG)"; exit 2;; esac; \
	case "$(GATEWAYS)" in ''|*[!0-9]*|0) echo "GATEWAYS must be a positive number, not $(GATEWAYS)"; exit 2;; esac; \
	if [ "$(CATALOG)" = rocksdb ] && [ "$(GATEWAYS)" != 1 ]; then echo "GATEWAYS=$(GATEWAYS) needs a shared catalog: add CATALOG=etcd"; exit 2; fi; \
	if ls "$$d"/*.pid >/dev/null 2>&1; then echo "a cluster is already running from $$d (make cluster-stop first)"; exit 1; fi; \
	[ -s "$$d/secret" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$$d/secret"); \
	endpoints=""; \
	if [ "$(CATALOG)" = etcd ]; then \
	  command -v etcd >/dev/null || { echo "etcd is not installed (make deps)"; exit 1; }; \
	  peers=""; for i in 0 1 2; do peers="$$peers$${peers:+,}etcd$$i=http://127.0.0.1:$$(($(CLUSTER_ETCD_PORT) + 2 * i + 1))"; \
	    endpoints="$$endpoints$${endpoints:+, }\"http://127.0.0.1:$$(($(CLUSTER_ETCD_PORT) + 2 * i))\""; done; \
	  for i in 0 1 2; do c=$$(($(CLUSTER_ETCD_PORT) + 2 * i)); p=$$((c + 1)); \
	    nohup etcd --name etcd$$i --data-dir "$$d/etcd$$i" \
	      --listen-client-urls http://127.0.0.1:$$c --advertise-client-urls http://127.0.0.1:$$c \
	      --listen-peer-urls http://127.0.0.1:$$p --initial-advertise-peer-urls http://127.0.0.1:$$p \
	      --initial-cluster "$$peers" --initial-cluster-state new --initial-cluster-token "strata-$(CLUSTER_ETCD_PORT)" \
	      > "$$d/etcd$$i.log" 2>&1 & echo $$! > "$$d/etcd$$i.pid"; done; \
	  for i in 0 1 2; do c=$$(($(CLUSTER_ETCD_PORT) + 2 * i)); \
	    for t in $$(seq 1 150); do curl -sf --max-time 1 http://127.0.0.1:$$c/health | grep -q '"true"' && break; \
	      kill -0 $$(cat "$$d/etcd$$i.pid") 2>/dev/null || break; sleep 0.2; done; \
	    curl -sf --max-time 1 http://127.0.0.1:$$c/health | grep -q '"true"' || { echo "etcd member $$i not healthy; see $$d/etcd$$i.log (make cluster-stop)"; exit 1; }; done; \
	fi; \
	for i in $$(seq 0 $$(($(CLUSTER_NODES) - 1))); do \
	  nohup $(BIN) storage-node --listen 127.0.0.1:$$(($(CLUSTER_NODE_PORT) + i)) --data "$$d/node$$i" --secret-file "$$d/secret" \
	    > "$$d/node$$i.log" 2>&1 & echo $$! > "$$d/node$$i.pid"; done; \
	for g in $$(seq 0 $$(($(GATEWAYS) - 1))); do \
	  name=gateway; [ "$$g" = 0 ] || name="gateway$$g"; port=$$(($(CLUSTER_PORT) + g)); \
	  { echo "listen = \"127.0.0.1:$$port\""; echo "data = \"$$d/$$name\""; \
	    echo "cluster_secret_file = \"$$d/secret\""; echo 'shard_timeout_secs = 10'; echo 'health_interval_ms = 500'; \
	    if [ "$(CATALOG)" = etcd ]; then echo 'catalog = "etcd"'; echo "etcd_endpoints = [$$endpoints]"; \
	      echo 'etcd_prefix = "strata/"'; fi; \
	    for i in $$(seq 0 $$(($(CLUSTER_NODES) - 1))); do \
	      printf '[[nodes]]\nid = %d\naddress = "127.0.0.1:%d"\n' $$i $$(($(CLUSTER_NODE_PORT) + i)); done; } > "$$d/$$name.toml"; \
	  nohup $(BIN) gateway --config "$$d/$$name.toml" > "$$d/$$name.log" 2>&1 & echo $$! > "$$d/$$name.pid"; \
	  for t in $$(seq 1 150); do curl -sf --max-time 1 http://127.0.0.1:$$port/_strata/health/ready >/dev/null && break; \
	    kill -0 $$(cat "$$d/$$name.pid") 2>/dev/null || break; sleep 0.2; done; \
	  curl -sf --max-time 1 http://127.0.0.1:$$port/_strata/health/ready >/dev/null || { tail -n 5 "$$d/$$name.log"; \
	    echo "gateway on port $$port not ready; see $$d/$$name.log (make cluster-stop)"; exit 1; }; \
	  echo "== $$name: http://127.0.0.1:$$port"; done; \
	grep -aE '^(Strata S3 endpoint|Access key|Secret key|Try):' "$$d/gateway.log" | head -n 4; \
	echo "Logs and data: $$d   Stop: make cluster-stop"

# Stops what the pid files name (gateways first, then storage nodes, then etcd), each only if
# that pid still runs a command naming CLUSTER_DIR (a reused pid is left alone).
cluster-stop:
	@d="$(CLUSTER_DIR)"; for f in "$$d"/gateway*.pid "$$d"/node*.pid "$$d"/etcd*.pid; do [ -e "$$f" ] || continue; pid=$$(cat "$$f"); \
	  if { tr '\0' ' ' < "/proc/$$pid/cmdline"; } 2>/dev/null | grep -qF "$$d/"; then kill -CONT "$$pid" 2>/dev/null; kill -TERM "$$pid"; \
	    for t in $$(seq 1 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.2; done; fi; rm -f "$$f"; done; \
	for t in $$(seq 1 50); do pgrep -f "$$d/" >/dev/null || break; sleep 0.2; done; echo "cluster stopped"

# The same cluster in containers (1 gateway + 6 storage nodes; with CATALOG=etcd 3 etcd members +
# 6 storage nodes + 2 gateways), from a locally built Debian base image (no registry needed): see
# docker/README.md. Gateway on 127.0.0.1:$${STRATA_DOCKER_PORT:-9300} (the second one on the next port).
docker-up: build
	STRATA_BIN=$(BIN) STRATA_DOCKER_CATALOG=$(CATALOG) docker/cluster.sh up

docker-down:
	STRATA_DOCKER_CATALOG=$(CATALOG) docker/cluster.sh down
