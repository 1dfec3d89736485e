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
	$(HELM) template ci-healer charts/ci-healer --namespace ci-healer > charts/rendered/ci-healer.yaml
	$(HELM) template ci-healer charts/ci-healer --namespace ci-healer --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml > config/rbac/controller.yaml

.PHONY: lint
lint: ## rustfmt check and clippy with warnings as errors.
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

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
	$(KUBECTL) apply --server-side -f crds/cihealer.dev.yaml
	$(KUBECTL) wait --for condition=established --timeout=30s crd/healingruns.cihealer.dev crd/healingattempts.cihealer.dev

##@ Run and test

.PHONY: run-local
run-local: install-crds ## The main job: control plane, CRDs, controller, host runner, the sample run healed to Fixed.
	hack/run-local.sh

.PHONY: test
test: control-plane ## Run every test (unit, integration against the local control plane, e2e).
	cargo test --locked

.PHONY: bench
bench: control-plane ## Run the benchmarks (triage corpus; attempt steps) and print their tables.
	cargo bench --locked --bench triage
	cargo bench --locked --bench attempt
	cargo bench --locked --bench agent

##@ Release

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMAGE) .

.PHONY: deploy
deploy: ## helm install the operator into the current kube context.
	$(HELM) upgrade --install ci-healer charts/ci-healer --namespace ci-healer --create-namespace
