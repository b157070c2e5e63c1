# Entry points. `make deploy` and `make test` work on a bare machine: they
# install what they need and bring up the local cluster when no kubeconfig
# points at a reachable one.
.PHONY: setup deploy test lint unit e2e molecule benchmark chaos cluster-up cluster-down

setup:
	scripts/setup

deploy: setup
	scripts/with-cluster ansible-playbook deploy.yml

# Only the tests deploy the object store (versitygw): make deploy neither
# builds nor loads it (scripts/lib/build-versitygw.sh).
test e2e benchmark chaos: export MARIADB_K8S_OBJECT_STORE = 1

# Lint and unit tests need no cluster: they run while it comes up, beside
# each other (each target's output printed whole once it is done).
test: setup
	@scripts/with-cluster true & cluster=$$!; \
	$(MAKE) --no-print-directory -j2 --output-sync=target lint unit; checks=$$?; \
	wait $$cluster; up=$$?; \
	[ $$checks -eq 0 ] && [ $$up -eq 0 ]
	$(MAKE) --no-print-directory e2e

lint: setup
	.venv/bin/yamllint --strict .
	cd .venv/collections/ansible_collections/mariadb_k8s/cluster && PATH=$(CURDIR)/.venv/bin:$$PATH ansible-lint --offline --profile production
	tests/sanity/run.sh

# In 4 processes: most of the time goes to pod scripts that sleep.
unit: setup
	.venv/bin/pytest -q -n 4 tests/unit

# Independent modules run in parallel (each in its own namespaces), longest
# first (tests/e2e/conftest.py); the 25 slowest tests and each module's
# total are listed at the end. The molecule scenario is one of the modules
# (tests/e2e/test_molecule.py). More workers overload two cores.
E2E_WORKERS ?= 2
e2e: setup
	scripts/with-cluster pytest -v -n $(E2E_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 tests/e2e

molecule: setup
	scripts/with-cluster molecule test

benchmark: setup
	scripts/with-cluster python -m benchmarks

# Not in CI: 30 random faults of the primary with the autopilot on (about
# 40 minutes); docs/chaos.md. CHAOS_FAULTS changes the count.
CHAOS_FAULTS ?= 30
chaos: setup
	scripts/with-cluster python -m benchmarks.chaos --faults $(CHAOS_FAULTS)

cluster-up:
	scripts/cluster up

cluster-down:
	scripts/cluster down
