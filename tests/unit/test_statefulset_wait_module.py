"""The wait's flow with a scripted cluster: when it returns, what it reports, when it fails."""
import pytest
from kubernetes.client.exceptions import ApiException

from ansible_collections.mariadb_k8s.cluster.plugins.modules import statefulset_wait
from fake_module import Exit, FakeModule
from k8s_objects import pod, sts

DONE = (sts(), [pod(0), pod(1), pod(2, image="img:2")])
STARTING = (sts(), [pod(0), pod(1, ready=False)])


class Module(FakeModule):
    defaults = dict(namespace="mysql", name="mysql", replicas=None, container="mariadb", timeout=5)


class ScriptedCluster:
    """Each read returns the next state (the last one repeats); an exception in
    the script is raised instead. Pod events and watch errors likewise."""

    def __init__(self, states, watch_errors=(), probe_failures=()):
        self.states = list(states)
        self.watch_errors = list(watch_errors)
        self.events = list(probe_failures)
        self.reads = 0

    def probe_failures(self):
        return self.events

    def read(self):
        self.reads += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, Exception):
            raise state
        return state[0], state[1], "42"

    def next_pod_event(self, statefulset, resource_version, seconds):
        assert resource_version == "42" and 0 < seconds <= statefulset_wait.WATCH_SECONDS
        if self.watch_errors:
            raise self.watch_errors.pop(0)


def run(cluster, **params):
    with pytest.raises(Exit) as result:
        statefulset_wait.execute_module(Module(**params), cluster)
    return result.value.args[0]


def test_returns_once_every_pod_is_ready_and_reports_images():
    cluster = ScriptedCluster([STARTING, STARTING, DONE])
    result = run(cluster)
    assert result["failed"] is False and result["changed"] is False
    assert result["images"] == {"mysql-0": "img:1", "mysql-1": "img:1", "mysql-2": "img:2"}
    assert result["outdated"] == []
    assert cluster.reads == 3


def test_reports_the_pods_left_below_the_partition():
    result = run(ScriptedCluster([(sts(partition=2), [pod(0, revision="old"), pod(1, revision="old"), pod(2)])]))
    assert result["failed"] is False and result["outdated"] == ["mysql-0", "mysql-1"]


def test_times_out_naming_the_pending_pods(monkeypatch):
    monkeypatch.setattr(statefulset_wait.time, "sleep", lambda seconds: None)
    result = run(ScriptedCluster([STARTING]), timeout=0.05)
    assert result["failed"] is True
    assert result["pending"] == ["mysql-1: not Ready", "mysql-2: not created yet"]
    assert "mysql-1: not Ready; mysql-2: not created yet" in result["msg"]


def test_missing_statefulset_is_named():
    result = run(ScriptedCluster([LookupError("not found")]))  # Cluster.read: a 404 of the StatefulSet
    assert result["failed"] is True
    assert result["msg"] == "StatefulSet mysql not found in namespace mysql."


def test_transient_api_and_watch_errors_are_retried(monkeypatch):
    monkeypatch.setattr(statefulset_wait.time, "sleep", lambda seconds: None)
    cluster = ScriptedCluster([ApiException(status=503, reason="Service Unavailable"), STARTING, DONE],
                              watch_errors=[ApiException(status=410, reason="Gone")])
    result = run(cluster)
    assert result["failed"] is False and cluster.reads == 3


def test_api_error_until_the_deadline_is_reported(monkeypatch):
    monkeypatch.setattr(statefulset_wait.time, "sleep", lambda seconds: None)
    result = run(ScriptedCluster([ConnectionRefusedError("connection refused")]), timeout=0.05)
    assert result["failed"] is True and "connection refused" in result["msg"]


def test_replicas_waits_only_for_the_first_ordinals():
    result = run(ScriptedCluster([STARTING]), replicas=1)
    assert result["failed"] is False and list(result["images"]) == ["mysql-0", "mysql-1"]


def probe_failed(ordinal, message, when="2026-12-05T12:00:00Z"):
    return {"involvedObject": {"kind": "Pod", "name": "mysql-%d" % ordinal, "uid": "uid-%d" % ordinal},
            "reason": "Unhealthy", "lastTimestamp": when, "message": "Readiness probe failed: " + message}


GONE = "replication IO thread: No (error 1236: Got fatal error 1236 from master when reading data from binary log)"


def test_fails_at_once_naming_a_replica_whose_position_is_gone_and_the_fix():
    cluster = ScriptedCluster([STARTING], probe_failures=[probe_failed(1, GONE)])
    result = run(cluster, timeout=900)
    assert result["failed"] is True and cluster.reads == 1
    assert result["stuck"] == {"mysql-1": "replication IO thread No with error 1236: Got fatal error 1236 from master "
                                          "when reading data from binary log"}
    assert "mysql-1 is not Ready and will not be by waiting" in result["msg"]
    assert "rebuild.yml -e pod=mysql-1 re-clones it" in result["msg"]


@pytest.mark.parametrize("event", [
    # The primary restarting: the replica reconnects by itself.
    probe_failed(1, "replication IO thread: Connecting (error 2003: Can't connect)"),
    # A replica stopped on purpose (a switchover in progress): no error.
    probe_failed(1, "replication SQL thread: No (error 0: )"),
    # The stuck message of a pod that is Ready now, or of an earlier pod of that name.
    probe_failed(0, GONE),
    dict(probe_failed(1, GONE), involvedObject={"kind": "Pod", "name": "mysql-1", "uid": "an-earlier-pod"}),
])
def test_waits_on_while_no_probe_names_an_error_that_stays(monkeypatch, event):
    monkeypatch.setattr(statefulset_wait.time, "sleep", lambda seconds: None)
    result = run(ScriptedCluster([STARTING], probe_failures=[event]), timeout=0.05)
    assert result["failed"] is True and "stuck" not in result
    assert "mysql-1: not Ready" in result["msg"]


def test_the_latest_probe_failure_decides():
    events = [probe_failed(1, GONE, when="2026-12-05T12:00:00Z"),
              probe_failed(1, "replication SQL thread: No (error 1062: Duplicate entry)", when="2026-12-05T12:01:00Z")]
    result = run(ScriptedCluster([STARTING], probe_failures=events))
    assert result["stuck"]["mysql-1"].startswith("replication SQL thread No with error 1062")


def test_a_replica_reconnecting_since_its_error_is_not_stuck(monkeypatch):
    monkeypatch.setattr(statefulset_wait.time, "sleep", lambda seconds: None)
    events = [probe_failed(1, GONE, when="2026-12-05T12:00:00Z"),
              probe_failed(1, "replication IO thread: Connecting (error 2003: Can't connect)", when="2026-12-05T12:01:00Z")]
    result = run(ScriptedCluster([STARTING], probe_failures=events), timeout=0.05)
    assert "stuck" not in result
