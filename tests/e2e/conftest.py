"""Fixtures of the end-to-end tests: they run against the cluster that
scripts/with-cluster selected (KUBECONFIG, ANSIBLE_INVENTORY), never a mock."""
import os

import pytest
from kubernetes import client, config

from tests.e2e import diagnostics
from tests.e2e import report as reliability


@pytest.fixture(scope="session")
def api():
    if not os.environ.get("KUBECONFIG") or not os.environ.get("ANSIBLE_INVENTORY"):
        pytest.fail("run the e2e tests through scripts/with-cluster (make e2e): no cluster selected")
    config.load_kube_config()
    return client.ApiClient()


@pytest.fixture(scope="session")
def core(api):
    return client.CoreV1Api(api)


# Modules by how long they took in the last full run, longest first: the
# parallel workers (make e2e) take whole modules in this order, so no long one
# starts last. A module not named here runs after these.
LONGEST_FIRST = ("test_backup", "test_faults", "test_primary", "test_collection", "test_settings", "test_tls",
                 "test_autopilot", "test_molecule", "test_labels", "test_network_policy", "test_bad_input", "test_credentials",
                 "test_disruption", "test_cluster")


def pytest_collection_modifyitems(items):
    def rank(item):
        module = item.module.__name__.rsplit(".", 1)[-1]
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter):
    """Each module's total time, longest first: the order LONGEST_FIRST keeps."""
    totals = {}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "nodeid", "") and hasattr(rep, "duration"):
                module = rep.nodeid.split("::", 1)[0]
                totals[module] = totals.get(module, 0.0) + rep.duration
    if totals:
        terminalreporter.write_sep("=", "modules by total time")
        for module, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:8.1f}s {module}")
    # The first failure's cluster, at the end of the output (only pytest's
    # one-line summary of each failure follows), where CI's excerpt ends.
    for rep in terminalreporter.stats.get("failed", []):
        for title, text in rep.sections:
            if title == "cluster at the failure":
                terminalreporter.write_sep("=", "cluster when %s failed" % rep.nodeid)
                terminalreporter.write_line(text)
                return


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure carries the cluster as it was (tests/e2e/diagnostics.py); in
    a module of steps (STEPS = True: each builds on the one before), it
    marks the module failed, so later steps fail at once rather than each
    waiting out its timeouts on a broken cluster."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or call.when == "teardown" or getattr(item.module, "FAILED_STEP", None):
        return
    if getattr(item.module, "STEPS", False):
        item.module.FAILED_STEP = item.name
    if os.environ.get("KUBECONFIG"):
        try:
            config.load_kube_config()
            rep.sections.append(("cluster at the failure", diagnostics.describe(client.CoreV1Api(client.ApiClient()))))
        except Exception as exc:  # the cluster itself may be what failed
            rep.sections.append(("cluster at the failure", "not described: %s: %s" % (type(exc).__name__, exc)))


def pytest_runtest_setup(item):
    failed = getattr(item.module, "FAILED_STEP", None)
    if failed:
        pytest.fail("not run: the earlier step %s failed, and this one builds on it" % failed, pytrace=False)


def _controller(session):
    """The process that started the session, not an xdist worker."""
    return not hasattr(session.config, "workerinput")


def pytest_sessionstart(session):
    if _controller(session):
        reliability.start()


def pytest_sessionfinish(session):
    if _controller(session):
        reliability.merge()


@pytest.fixture(scope="module")
def report(request):
    collected = reliability.Report()
    yield collected
    collected.save(request.module.__name__.rsplit(".", 1)[-1])
