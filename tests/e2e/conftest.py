"""Fixtures of the end-to-end tests: they run against the cluster that
scripts/with-cluster selected (KUBECONFIG, ANSIBLE_INVENTORY), never a mock."""
import os
import sys

import pytest
from kubernetes import client, config

# The helpers shared with the benchmarks live in tests/harness.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



@pytest.fixture(scope="session")
def api():
    if not os.environ.get("KUBECONFIG") or not os.environ.get("ANSIBLE_INVENTORY"):
        pytest.fail("run the e2e tests through scripts/with-cluster (make e2e): no cluster selected")
    config.load_kube_config()
    return client.ApiClient()


@pytest.fixture(scope="session")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def report():
    from report import Report

    collected = Report()
    yield collected
    collected.write()
