# ci-healer — `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

CP        := hack/control-plane.sh
BIN_DIR   := $(shell $(CP) bin-dir)
KUBECTL   ?= $(BIN_DIR)/kubectl
HELM      ?= $(BIN_DIR)/helm
export KUBECONFIG ?= $(shell $(CP) env | sed -n 's/^export KUBECONFIG=//p')
IMAGE     ?= ghcr.io/ci-healer/healer:$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: build
build: ## Build the healer binary (debug).
	cargo build --locked

.PHONY: generate
generate: ## Regenerate the CRD YAML, the chart's CRDs and the rendered chart from the code.
	cargo run --locked -q -- crd > crds/cihealer.dev.yaml
	cp crds/cihealer.dev.yaml charts/ci-healer/crds/cihealer.dev.yaml
	CIHEALER_BLESS=1 cargo test --locked -q --test observability generated_copies_match_the_code
	$(HELM) template ci-healer charts/ci-healer --namespace ci-healer > charts/rendered/ci-healer.yaml
	$(HELM) template ci-healer charts/ci-healer --namespace ci-healer --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml > config/rbac/controller.yaml

.PHONY: lint
lint: ## rustfmt check and clippy with warnings as errors (also the release build, without the dev stand-ins).
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --lib --bins --no-default-features -- -D warnings

##@ Local control plane

.PHONY: tools
tools: ## Install kubectl and helm, build kube-apiserver, etcd and the Argo Events Sensor evaluator (cached outside the repo), install test toolchains.
	$(CP) install
	hack/argo-eval.sh build >/dev/null
	@if [ -x hack/install-test-tools.sh ]; then hack/install-test-tools.sh; fi

.PHONY: control-plane
control-plane: tools ## Start etcd + kube-apiserver on 127.0.0.1 (idempotent).
	$(CP) start

.PHONY: control-plane-stop
control-plane-stop: ## Stop the local control plane.
	$(CP) stop

.PHONY: install-crds
install-crds: control-plane ## Apply the CRDs to the local control plane.
	$(KUBECTL) apply --server-side --force-conflicts -f crds/cihealer.dev.yaml
	$(KUBECTL) wait --for condition=established --timeout=30s crd/healingruns.cihealer.dev crd/healingattempts.cihealer.dev

##@ Run and test

.PHONY: run-local
run-local: install-crds ## The main job: control plane, CRDs, controller, host runner, loopback GitHub; the sample run healed, delivered as a draft PR, reported (check run, one comment).
	hack/run-local.sh

.PHONY: test
test: control-plane ## Run every test (unit, integration against the local control plane, e2e), then the RBAC audit.
	mkdir -p target && date -u +%Y-%m-%dT%H:%M:%S.%6NZ > target/rbac-audit-since
	cargo test --locked
	$(MAKE) --no-print-directory rbac-audit

.PHONY: rbac-audit
rbac-audit: ## The chart's RBAC against the audit log of the last `make test`: every granted verb used, nothing used ungranted.
	cargo test --locked --test rbac_audit -- --ignored --nocapture

.PHONY: screenshots
screenshots: control-plane ## Take the README's dashboard screenshot in headless Chromium (docs/images/dashboard-run.png).
	CIHEALER_BLESS=1 cargo test --locked --test dashboard_browser

.PHONY: bench
bench: control-plane ## Run the benchmarks (triage corpus; attempt steps; controller P1-P4 against a bare client) and print their tables.
	cargo bench --locked --bench triage
	cargo bench --locked --bench attempt
	cargo bench --locked --bench dashboard
	cargo bench --locked --bench agent
	cargo bench --locked --bench controller

.PHONY: bench-controller
bench-controller: control-plane ## Only the controller benchmark (P1-P4 next to a bare client; BENCH_* scale it).
	cargo bench --locked --bench controller

# The chaos scenarios (tests/chaos.rs) at the issue's scale: R1 300 runs and 100 SIGKILLs, R2 etcd and
# kube-apiserver restarts, R4 1,000 creates for 100 failures, R7 the leader killed under load.
CHAOS_FULL := CHAOS_RUNS=300 CHAOS_KILLS=100 CHAOS_R2_RUNS=100 CHAOS_FAILURES=100 CHAOS_CREATES=1000 CHAOS_R7_RUNS=100

.PHONY: chaos
chaos: control-plane ## Chaos scenarios at full scale (long); each prints its counts.
	$(CHAOS_FULL) cargo test --locked --release --test chaos -- --ignored --nocapture --test-threads=1

.PHONY: chaos-short
chaos-short: control-plane ## Chaos scenarios at the short scale (.ci/run); each prints its counts.
	cargo test --locked --test chaos -- --ignored --nocapture --test-threads=1

##@ Mutation testing

# The pure modules and their unit tests: the run and attempt phase machines, the dedup lookup, the
# validate step's guards and the agent's failure context (masking).
MUTANTS_FILES ?= src/controller/state.rs src/controller/attempt_state.rs src/controller/dedup.rs src/agent/diff.rs src/agent/context.rs
MUTANTS_BASE  ?= main
MUTANTS_ARGS  ?=
# `--cargo-arg=--lib` reaches the build as well as the test run: `-- --lib` reached only the test
# run, so every mutant also rebuilt all integration tests and the binary (~6 min instead of ~1).
MUTANTS_CARGO := --cargo-arg=--lib

.PHONY: mutants
mutants: ## cargo-mutants on the pure modules (MUTANTS_FILES) with the unit tests; report in mutants.out/.
	PATH="$$(hack/install-mutants.sh):$$PATH" cargo mutants --no-shuffle $(addprefix --file ,$(MUTANTS_FILES)) $(MUTANTS_CARGO) $(MUTANTS_ARGS)

.PHONY: mutants-diff
mutants-diff: ## cargo-mutants on the lines changed since MUTANTS_BASE (default main), the habit for every change.
	mkdir -p target
	git diff $(MUTANTS_BASE) -- 'src/*.rs' > target/mutants.diff
	PATH="$$(hack/install-mutants.sh):$$PATH" cargo mutants --no-shuffle --in-diff target/mutants.diff $(MUTANTS_CARGO) $(MUTANTS_ARGS)

##@ Release

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMAGE) .

.PHONY: deploy
deploy: ## helm install the operator into the current kube context.
	$(HELM) upgrade --install ci-healer charts/ci-healer --namespace ci-healer --create-namespace
