"""The autopilot on the real cluster, under the concurrent writer: a primary
frozen on its node (alive but unreachable) and a primary whose pod's network
is cut are failed over without a person, no write they acknowledged is lost,
and back they take no write."""
import re
import subprocess
import threading
import time

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError

from tests.e2e.writes import Writer, check_nothing_lost, create_events_table, recorded_primary, rows
from tests.harness import drop_namespaces, fresh_namespaces, is_local_cluster, pod_exec, run_playbook, start_client, wait_until

NS = "autopilot"
BASE = {"mariadb_namespace": NS, "replicas": 3}


@pytest.fixture(scope="module")
def runner(api, core):
    if not is_local_cluster():
        pytest.fail("the autopilot's faults need the local cluster: they act on the node's processes")
    fresh_namespaces(core, NS)
    run_playbook("deploy.yml", dict(BASE, mariadb_autopilot=True, mariadb_autopilot_failover_after=4)).check()
    runner = start_client(core, api, NS)
    create_events_table(runner)
    yield runner
    drop_namespaces(core, NS)


def server_pid(core, pod):
    status = [c for c in core.read_namespaced_pod(pod, NS).status.container_statuses if c.name == "mariadb"][0]
    tasks = subprocess.run(["ctr", "-n", "k8s.io", "tasks", "ls"], capture_output=True, text=True, check=True).stdout
    return re.search(r"^%s\s+(\d+)" % status.container_id.split("://")[1], tasks, re.M).group(1)


LOCAL_SQL = ["mariadb", "--defaults-file=/etc/mysql/cluster/my.cnf", "--protocol=socket", "--user=mysql", "-N", "-e"]


def read_only(server, pod):
    """Whether the pod's server answers read-only (False while it restarts,
    or is deleted to be cloned back)."""
    try:
        return server.run(pod, LOCAL_SQL + ["SELECT @@global.read_only"], timeout=5).strip() == "1"
    except ExecError:
        return False


def test_a_frozen_primary_is_failed_over_and_no_acknowledged_write_is_lost(api, core, runner, report):
    old = recorded_primary(core, NS)
    pid = server_pid(core, old)
    with Writer(runner, "frozen-primary") as writer:
        time.sleep(2)
        started = time.monotonic()
        subprocess.run(["kill", "-STOP", pid], check=True)  # from the node: alive, but answers nobody
        try:
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=120, interval=0.5)
            seconds = time.monotonic() - started
            # Control: the fault happened, the old server did not answer meanwhile.
            frozen = subprocess.run(["ps", "-o", "stat=", "-p", pid], capture_output=True, text=True).stdout.strip()
            assert frozen.startswith("T"), frozen
            time.sleep(3)  # writes reach the new primary
        finally:
            subprocess.run(["kill", "-CONT", pid], check=False)
    assert new != old
    # Thawed, the old primary takes no write: it is read-only, or gone to be cloned back.
    server = pod_exec(api, NS, "mariadb")
    wait_until(old + " read-only", lambda: read_only(server, old), timeout=120, interval=1)
    check_nothing_lost(report, runner, core, BASE, "primary frozen (SIGSTOP from the node), the autopilot", writer, 3,
                       seconds, "%s promoted without a person; %s read-only when thawed" % (new, old))


def reachable(runner, pod):
    try:
        runner.run("client", ["mariadb", "--defaults-file=/tmp/client.cnf", "--connect-timeout=3", "-h", pod + ".mysql",
                              "-N", "-e", "SELECT 1"], timeout=15)
        return True
    except ExecError:
        return False


def netns_drop(pid, action):
    """Drop (action -I) or let through again (-D) every packet of the pod's
    network namespace but loopback: its own probes still run, the kubelet's
    exec still reaches it, no client and no replica does."""
    for chain, interface in (("INPUT", "-i"), ("OUTPUT", "-o")):
        subprocess.run(["nsenter", "-t", pid, "-n", "iptables", action, chain] + (["1"] if action == "-I" else [])
                       + ["!", interface, "lo", "-j", "DROP"], check=True)


def test_a_primary_cut_off_the_network_is_failed_over_and_takes_no_write(api, core, runner, report):
    old = recorded_primary(core, NS)
    pid = server_pid(core, old)
    server = pod_exec(api, NS, "mariadb")
    local_write = {}

    def write_on_the_cut_primary():
        # Over its socket, from inside the pod: the partition does not stop
        # the write reaching the server, only its acknowledgement.
        try:
            local_write["output"] = server.run(old, LOCAL_SQL + ["INSERT INTO app.events VALUES ('cut-local', 1)"], timeout=40)
        except ExecError as exc:
            local_write["error"] = str(exc)

    assert reachable(runner, old)
    with Writer(runner, "cut-primary") as writer:
        time.sleep(2)
        started = time.monotonic()
        netns_drop(pid, "-I")
        try:
            attempt = threading.Thread(target=write_on_the_cut_primary)
            attempt.start()
            # Control: the partition drops traffic; the server itself runs.
            assert not reachable(runner, old)
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=120, interval=0.5)
            seconds = time.monotonic() - started
            time.sleep(3)  # writes reach the new primary
        finally:
            netns_drop(pid, "-D")
        attempt.join()
    # The server took the local write and never acknowledged it: no replica
    # could, semi-sync did not fall back, the fence killed it unacknowledged.
    assert "output" not in local_write, local_write
    wait_until(old + " read-only", lambda: read_only(server, old), timeout=120, interval=1)
    assert server.run(old, LOCAL_SQL + ["SELECT COUNT(*) FROM app.events WHERE scenario = 'cut-local'"]).strip() == "1"
    assert rows(runner, new, "cut-local") == set()
    # That write is errant: named, and left to a person (it must not serve).
    named = run_playbook("verify.yml", BASE)
    assert named.rc != 0 and "%s: errant GTIDs" % old in named.output and "rebuild.yml -e pod=%s" % old in named.output, \
        named.output[-3000:]
    run_playbook("rebuild.yml", dict(BASE, pod=old)).check()
    check_nothing_lost(report, runner, core, BASE, "primary cut off the network (its netns drops all but loopback), "
                       "the autopilot", writer, 3, seconds,
                       "%s promoted without a person; %s's own write never acknowledged, fenced, named errant by "
                       "verify.yml; rebuild.yml re-clones it" % (new, old))
