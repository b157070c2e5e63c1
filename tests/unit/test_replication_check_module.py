"""The module's flow with a fake exec: which pods it reads, what it reports, when it fails."""
from types import SimpleNamespace

import pytest
from kubernetes.client.exceptions import ApiException

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from ansible_collections.mariadb_k8s.cluster.plugins.modules import replication_check
from captured import read as fixture


class Exit(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = dict(namespace="mysql", name="mysql", replicas=3, container="mariadb",
                           sentinel=True, timeout=1, max_lag=None)
        self.params.update(params)
        self.check_mode = check_mode

    def exit_json(self, **result):
        raise Exit(dict(result, failed=False))

    def fail_json(self, msg, **result):
        raise Exit(dict(result, failed=True, msg=msg))


class FakeExec:
    """Answers the status SQL from fixtures (a list: one answer per read, the
    last one repeats); remembers the sentinel token, which reaches the pods
    not in `cut_off`."""

    outputs = {}
    broken = set()
    cut_off = set()
    token = None

    def __init__(self, api_client, namespace, container):
        pass

    def run(self, pod, command, timeout=30):
        sql = command[-1]
        if pod in self.broken:
            raise ExecError("exit code 1: ERROR 2002 (HY000): Can't connect to local server")
        if sql.startswith("SELECT @@server_id"):
            answers = self.outputs[pod]
            if isinstance(answers, str):
                return answers
            return answers.pop(0) if len(answers) > 1 else answers[0]
        if "REPLACE INTO" in sql:
            FakeExec.token = sql.split("'")[1]
            return ""
        return "" if pod in self.cut_off else FakeExec.token + "\n"


@pytest.fixture
def fake_exec(monkeypatch):
    monkeypatch.setattr(replication_check, "PodExec", FakeExec)
    FakeExec.outputs = {
        "mysql-0": fixture("status-11.8-mysql-0.txt"),
        "mysql-1": fixture("status-11.8-mysql-1.txt"),
        "mysql-2": fixture("status-10.11-mysql-1.txt"),
    }
    FakeExec.broken = set()
    FakeExec.cut_off = set()
    FakeExec.token = None
    return FakeExec


def run(module):
    with pytest.raises(Exit) as result:
        replication_check.execute_module(module, api_client=None)
    return result.value.args[0]


def test_healthy_cluster_reports_every_pod_and_the_sentinel(fake_exec):
    result = run(FakeModule())
    assert result["failed"] is False and result["changed"] is False
    assert result["primary"] == "mysql-0"
    assert {p: s["role"] for p, s in result["pods"].items()} == {"mysql-0": "primary", "mysql-1": "replica", "mysql-2": "replica"}
    assert set(result["sentinel"]["seconds"]) == {"mysql-1", "mysql-2"}
    assert all(seconds is not None for seconds in result["sentinel"]["seconds"].values())


def test_check_mode_writes_no_sentinel(fake_exec):
    result = run(FakeModule(check_mode=True))
    assert result["failed"] is False
    assert "sentinel" not in result and fake_exec.token is None


def test_broken_replica_is_named_with_its_error(fake_exec):
    fake_exec.outputs["mysql-2"] = fixture("status-10.11-replica-auth-error.txt")
    result = run(FakeModule())
    assert result["failed"] is True
    assert "mysql-2: IO thread Connecting" in result["msg"] and "Access denied" in result["msg"]
    assert "sentinel" not in result


def test_unreachable_pod_is_named(fake_exec):
    fake_exec.broken = {"mysql-1"}
    result = run(FakeModule())
    assert result["failed"] is True
    assert "mysql-1: cannot read its state (exit code 1: ERROR 2002" in result["msg"]


def test_missing_statefulset_is_named_in_one_line(monkeypatch):
    class NoStatefulSet:
        def __init__(self, api_client):
            pass

        def read_namespaced_stateful_set(self, name, namespace):
            raise ApiException(status=404, reason="Not Found")

    monkeypatch.setattr(replication_check, "AppsV1Api", NoStatefulSet)
    result = run(FakeModule(replicas=None))
    assert result["failed"] is True
    assert result["msg"] == "Cannot read StatefulSet mysql in namespace mysql: 404 Not Found"


def test_statefulset_scaled_to_zero_fails_in_one_line(monkeypatch):
    class ScaledToZero:
        def __init__(self, api_client):
            pass

        def read_namespaced_stateful_set(self, name, namespace):
            return SimpleNamespace(spec=SimpleNamespace(replicas=0))

    monkeypatch.setattr(replication_check, "AppsV1Api", ScaledToZero)
    result = run(FakeModule(replicas=None))
    assert result["failed"] is True
    assert result["msg"] == "StatefulSet mysql in namespace mysql has 0 replicas: nothing to check"


def test_zero_replicas_requested_fails_in_one_line():
    result = run(FakeModule(replicas=0))
    assert result["failed"] is True and result["msg"] == "replicas=0: nothing to check"


def test_reconnecting_replica_passes_once_the_sentinel_arrives_and_is_read_again(fake_exec):
    fake_exec.outputs["mysql-1"] = [fixture("status-11.8-replica-reconnecting.txt"), fixture("status-11.8-mysql-1.txt")]
    result = run(FakeModule())
    assert result["failed"] is False
    assert result["pods"]["mysql-1"]["io_running"] == "Yes"


def test_reconnecting_replica_without_the_sentinel_is_named_with_its_io_thread(fake_exec):
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-replica-reconnecting.txt")
    fake_exec.cut_off = {"mysql-1"}
    result = run(FakeModule(timeout=0.3))
    assert result["failed"] is True
    assert "mysql-1: the sentinel row written on mysql-0 did not arrive within 0.3s (IO thread Connecting: error reconnecting" in result["msg"]


def test_reconnecting_replica_fails_when_no_sentinel_is_written(fake_exec):
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-replica-reconnecting.txt")
    result = run(FakeModule(sentinel=False))
    assert result["failed"] is True and "mysql-1: IO thread Connecting" in result["msg"]
