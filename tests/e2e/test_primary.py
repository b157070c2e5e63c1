"""The primary moves (switchover, failover, fencing, primary-last rollouts)
on the real cluster, under a concurrent writer that records every write the
primary acknowledged: after each move every acknowledged row is on every
pod, count and checksum equal."""
import re
import time

import pytest
from kubernetes import client

from tests.harness import (PODS, destroy_pod_and_volume, drop_namespaces, fresh_namespaces, image, pod_exec, run_playbook, sql,
                           start_client, wait_until)
from tests.e2e.writes import Writer, check_nothing_lost, create_events_table, recorded_primary, rows

NS = "primary"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_autopilot": False}


def play(name, **extra):
    return run_playbook(name, dict(BASE, **extra))


@pytest.fixture(scope="module")
def runner(api, core):
    fresh_namespaces(core, NS)
    play("deploy.yml", replicas=3).check()
    runner = start_client(core, api, NS)
    create_events_table(runner)
    yield runner
    drop_namespaces(core, NS)


def local_sql(api, pod, query):
    """SQL as the pod's local admin (socket), e.g. to act on replication."""
    return pod_exec(api, NS, "sidecar").run(pod, ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql -N -e "$0"', query])


def endpoints(api, service):
    """Names of the Ready pods behind a Service."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(NS, label_selector="kubernetes.io/service-name=" + service)
    return sorted(e.target_ref.name for s in slices.items for e in s.endpoints or [] if e.conditions.ready)


def ready(core, pod):
    try:
        status = core.read_namespaced_pod(pod, NS).status
    except client.ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def log_of(core, pod, container):
    """The container's log, or its last run's; "" while there is none."""
    for previous in (False, True):
        try:
            text = core.read_namespaced_pod_log(pod, NS, container=container, previous=previous)
        except client.ApiException:
            continue
        if text:
            return text
    return ""


def state(api, core):
    """What a refused command must leave as it was: the record, the write
    Service's selector, the StatefulSet, and which pods are writable."""
    service = core.read_namespaced_service("mysql-primary", NS).spec.selector
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS).metadata.generation
    writable = [p for p in ("mysql-0", "mysql-1", "mysql-2") if local_sql(api, p, "SELECT @@read_only").strip() == "0"]
    return recorded_primary(core, NS), service, sts, writable


def switch_to(api, pod):
    play("switchover.yml", primary=pod).check()
    wait_until("mysql-primary selecting " + pod, lambda: endpoints(api, "mysql-primary") == [pod], timeout=30, interval=0.2)


def test_switchover_refuses_bad_targets_before_changing_anything(api, core, runner, report):
    before = state(api, core)
    local_sql(api, "mysql-1", "STOP SLAVE SQL_THREAD")
    try:
        cases = [
            ("mysql-0", "target (-e primary) mysql-0 is already the primary"),
            ("mysql-7", "target (-e primary) must be a pod of the cluster"),
            ("mysql", "primary_target (-e primary) must name the pod to promote"),
            ("mysql-1", "target (-e primary) mysql-1 is not a healthy, caught-up replica of mysql-0: mysql-1: SQL thread No"),
        ]
        for target, message in cases:
            result = play("switchover.yml", primary=target)
            assert result.rc != 0, result.output[-3000:]
            assert message in " ".join(result.output.replace("'", "").split()), "%s: %s" % (target, result.output[-3000:])
            unchanged = state(api, core) == before
            report.bad_input("switchover.yml -e primary=%s" % target, message, unchanged)
            assert unchanged
    finally:
        local_sql(api, "mysql-1", "START SLAVE SQL_THREAD")


def epoch(core):
    return int(core.read_namespaced_config_map("mysql-topology", NS).data.get("epoch") or 0)


def test_switchover_and_back_loses_no_acknowledged_write(api, core, runner, report):
    before = epoch(core)
    with Writer(runner, "switchover") as writer:
        started = time.monotonic()
        switch_to(api, "mysql-2")
        assert recorded_primary(core, NS) == "mysql-2"
        during = len(writer.acknowledged())
        time.sleep(3)
        assert len(writer.acknowledged()) > during, "no write was acknowledged by the new primary"
        switch_to(api, "mysql-0")
        seconds = time.monotonic() - started
    assert local_sql(api, "mysql-2", "SELECT @@read_only").strip() == "1"
    assert epoch(core) == before + 2, "each move increments the record's epoch"
    check_nothing_lost(report, runner, core, BASE, "switchover to mysql-2 and back", writer, 3, seconds,
                       "both moves completed; writes went on through mysql-primary")


def semi_sync_sides(api):
    """Which pods run the primary side of semi-sync (only the primary may)."""
    return {p: local_sql(api, p, "SELECT @@rpl_semi_sync_master_enabled").strip() for p in ("mysql-0", "mysql-1", "mysql-2")}


def test_a_primary_promoted_by_a_switchover_restarts_as_the_primary(api, core, runner, report):
    # mysql-0 was a replica of mysql-2 and was promoted again: a restart must
    # bring it back writable (its replication was reset), with semi-sync.
    primary = recorded_primary(core, NS)
    assert semi_sync_sides(api) == {p: "1" if p == primary else "0" for p in ("mysql-0", "mysql-1", "mysql-2")}
    uid = core.read_namespaced_pod(primary, NS).metadata.uid
    with Writer(runner, "promoted-restart") as writer:
        started = time.monotonic()
        core.delete_namespaced_pod(primary, NS)
        wait_until(primary + " back and Ready", lambda: ready(core, primary)
                   and core.read_namespaced_pod(primary, NS).metadata.uid != uid, timeout=180, interval=1)
        seconds = time.monotonic() - started
        time.sleep(2)
    assert local_sql(api, primary, "SELECT @@read_only").strip() == "0"
    assert semi_sync_sides(api)[primary] == "1"
    check_nothing_lost(report, runner, core, BASE, "primary promoted by a switchover, pod deleted under load", writer, 3,
                       seconds, "%s came back writable, semi-synchronous, replicas reconnected" % primary)


def test_failover_is_refused_while_the_primary_answers(api, core, runner, report):
    before = state(api, core)
    result = play("failover.yml")
    assert result.rc != 0
    assert "the primary mysql-0 still answers" in result.output
    unchanged = state(api, core) == before
    report.bad_input("failover.yml (primary alive)", "the primary mysql-0 still answers: use switchover.yml to move it, "
                     "or -e force=true to fail over anyway", unchanged)
    assert unchanged


def test_failover_after_the_primary_and_its_volume_are_destroyed(api, core, runner, report):
    with Writer(runner, "failover") as writer:
        time.sleep(2)
        destroy_pod_and_volume(core, NS, "mysql-0")
        # The recreated pod has an empty volume: it must refuse to start a new, empty primary.
        wait_until("mysql-0 refusing its empty volume",
                   lambda: "volume is empty while the cluster holds data" in log_of(core, "mysql-0", "mariadb"),
                   timeout=120, interval=1)
        started = time.monotonic()
        result = play("failover.yml").check()
        seconds = time.monotonic() - started
    new = recorded_primary(core, NS)
    assert new in ("mysql-1", "mysql-2")
    assert "is the most advanced replica" in result.output
    assert "cloning from" in core.read_namespaced_pod_log("mysql-0", NS, container="clone")
    check_nothing_lost(report, runner, core, BASE, "primary pod and volume destroyed (SIGKILL), failover.yml", writer, 3,
                       seconds, "%s promoted; mysql-0 cloned back as a replica" % new)


def test_an_old_primary_with_an_errant_transaction_is_fenced_and_rebuilt(api, core, runner, report):
    old = recorded_primary(core, NS)
    replicas = [p for p in ("mysql-0", "mysql-1", "mysql-2") if p != old]
    # Cut the replicas off, then write on the primary: that transaction
    # reaches nobody (no replica connected, so semi-sync does not wait).
    for pod in replicas:
        local_sql(api, pod, "STOP SLAVE IO_THREAD")
    sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('errant', 1)")
    result = play("failover.yml", force=True)
    assert result.rc != 0, "verify passed with an errant old primary"
    errant = re.search(r"%s: errant GTIDs (\d+-\d+-\d+)" % old, result.output)
    assert errant, result.output[-3000:]
    new = recorded_primary(core, NS)
    assert new in replicas
    wait_until(old + " out of mysql-read", lambda: old not in endpoints(api, "mysql-read"), timeout=60, interval=1)
    assert "1" == local_sql(api, old, "SELECT @@read_only").strip()
    started = time.monotonic()
    play("rebuild.yml", pod=old).check()
    seconds = time.monotonic() - started
    for pod in ("mysql-0", "mysql-1", "mysql-2"):
        assert rows(runner, pod, "errant") == set()
    play("verify.yml").check()
    report.fault("old primary %s back with an errant transaction (failover.yml -e force=true)" % old, 0,
                 {p: len(rows(runner, p, "errant")) for p in ("mysql-0", "mysql-1", "mysql-2")}, seconds,
                 "verify named %s and GTID %s; it left mysql-read; rebuild.yml re-cloned it" % (old, errant.group(1)))


def test_scale_out_and_in_with_the_primary_at_the_highest_ordinal(api, core, runner, report):
    switch_to(api, "mysql-2")
    with Writer(runner, "scale-primary-2") as writer:
        started = time.monotonic()
        play("deploy.yml", replicas=4).check()
        assert "cloning from mysql-2" in core.read_namespaced_pod_log("mysql-3", NS, container="clone")
        before = state(api, core)
        refused = play("deploy.yml", replicas=2)
        assert refused.rc != 0
        assert "would remove the primary mysql-2" in refused.output
        assert state(api, core) == before
        play("deploy.yml", replicas=3).check()
        seconds = time.monotonic() - started
    check_nothing_lost(report, runner, core, BASE, "scale 3 -> 4 -> 3 with the primary at mysql-2 (2 refused)", writer, 3,
                       seconds, "mysql-3 added and removed; replicas=2 refused naming the primary")


def test_upgrade_replaces_the_primary_last(api, core, runner, report):
    switch_to(api, "mysql-1")
    with Writer(runner, "upgrade-primary-1") as writer:
        started = time.monotonic()
        result = play("upgrade.yml", version="11.8").check()
        seconds = time.monotonic() - started
    out = result.output
    # mysql-2 first, then the switchover from mysql-1 to mysql-2, then the rest.
    assert out.index("Apply the StatefulSet (partition 2)") < out.index("fenced mysql-1") < out.index(
        "Apply the StatefulSet (partition 0)"), out[-4000:]
    assert recorded_primary(core, NS) == "mysql-2"
    pods = core.list_namespaced_pod(NS, label_selector=PODS).items
    assert {p.metadata.name: [c.image for c in p.spec.containers if c.name == "mariadb"][0] for p in pods} == {
        "mysql-%d" % i: image("11.8") for i in range(3)}
    check_nothing_lost(report, runner, core, BASE, "upgrade 10.11 -> 11.8 with the primary at mysql-1", writer, 3, seconds,
                       "mysql-2 upgraded first, switched over to, then mysql-1 and mysql-0 replaced as replicas")


def test_failover_without_semi_sync_reports_what_it_lost(api, core, runner, report):
    play("deploy.yml", mariadb_semi_sync=False).check()
    old = recorded_primary(core, NS)
    with Writer(runner, "failover-async") as writer:
        time.sleep(3)
        destroy_pod_and_volume(core, NS, old)
        time.sleep(5)
        started = time.monotonic()
        play("failover.yml").check()
        seconds = time.monotonic() - started
    new = recorded_primary(core, NS)
    acked = writer.acknowledged()
    lost = acked - rows(runner, new, "failover-async")
    report.fault("primary pod and volume destroyed (SIGKILL), failover.yml, semi-sync off (mariadb_semi_sync=false)", len(acked),
                 {p: len(rows(runner, p, "failover-async")) for p in ("mysql-0", "mysql-1", "mysql-2")}, seconds,
                 "%d acknowledged row(s) lost" % len(lost))
    play("verify.yml").check()
