"""The module's flow with a fake exec and a fake Kubernetes API: which pods it
reads, what it reports, when it fails. Nothing reaches a cluster."""
import re

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import cluster, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from ansible_collections.mariadb_k8s.cluster.plugins.modules import replication_check
from captured import read as fixture
from fake_api import FakeApi
from fake_module import Exit, FakeModule


def with_binlog_state(output):
    """The fixtures were captured before the status SQL read @@gtid_binlog_state:
    add it as a server whose binary log has one writer per domain reports it,
    equal to its gtid_binlog_pos."""
    if "gtid_binlog_state:" in output:
        return output
    binlog_pos = re.search(r"^ *gtid_binlog_pos: ?(.*)$", output, re.M).group(1)
    return re.sub(r"^( *gtid_slave_pos:.*)$", r"\1\ngtid_binlog_state: " + binlog_pos, output, count=1, flags=re.M)


def as_replica_of(output, primary):
    return output.replace("Master_Host: mysql-0.mysql", "Master_Host: %s.mysql" % primary)


class Module(FakeModule):
    defaults = dict(namespace="mysql", name="mysql", replicas=3, primary=None, container="mariadb", sentinel=True,
                    timeout=1, max_lag=None, tls=False)


class FakeExec:
    """Answers the status SQL from fixtures (a list: one answer per read, the
    last one repeats); remembers the sentinel token and the pod it was written
    on; the token reaches the pods not in `cut_off`."""

    outputs = {}
    broken = set()
    cut_off = set()
    token = None
    written_on = None
    certificates = {}  # pod -> SHOW STATUS LIKE 'Ssl_server_not_after' output

    def __init__(self, api, namespace, container):
        pass

    def run(self, pod, command, timeout=30):
        sql = command[-1]
        if pod in self.broken:
            raise ExecError("exit code 1: ERROR 2002 (HY000): Can't connect to local server")
        if sql.startswith("SELECT @@server_id"):
            answers = self.outputs[pod]
            if isinstance(answers, str):
                return with_binlog_state(answers)
            return with_binlog_state(answers.pop(0) if len(answers) > 1 else answers[0])
        if sql == replication.SERVED_CERTIFICATE_SQL:
            assert "--ssl" in command, "only a TLS session sees the served certificate"
            return self.certificates.get(pod, "Ssl_server_not_after\tDec  6 12:00:00 2099 GMT\n")
        if "REPLACE INTO" in sql:
            FakeExec.token = re.search(r"REPLACE INTO \S+ VALUES \(1, '([^']+)'", sql).group(1)
            FakeExec.written_on = pod
            return ""
        return "" if pod in self.cut_off else FakeExec.token + "\n"


RECORD = "/api/v1/namespaces/mysql/configmaps/mysql-topology"
STATEFULSET = "/apis/apps/v1/namespaces/mysql/statefulsets/mysql"


class ClusterApi(FakeApi):
    """The StatefulSet and the topology record; `primary` None: no record."""

    @property
    def primary(self):
        return self.objects[RECORD]["data"]["primary"] if RECORD in self.objects else None

    @primary.setter
    def primary(self, pod):
        if pod is None:
            self.objects.pop(RECORD, None)
        else:
            self.store(RECORD, {"data": {"primary": pod, "initialised": "true"}})

    def scale(self, replicas):
        self.store(STATEFULSET, {"spec": {"replicas": replicas}})


API = None


@pytest.fixture(autouse=True)
def fake_api(monkeypatch):
    """Every test: the Cluster layer gets a fake API and exec, never a real client."""
    global API
    monkeypatch.setattr(cluster, "PodExec", FakeExec)
    API = ClusterApi()
    API.primary = "mysql-0"
    API.scale(3)
    return API


@pytest.fixture
def fake_exec():
    FakeExec.outputs = {
        "mysql-0": fixture("status-11.8-mysql-0.txt"),
        "mysql-1": fixture("status-11.8-mysql-1.txt"),
        "mysql-2": fixture("status-10.11-mysql-1.txt"),
    }
    FakeExec.broken = set()
    FakeExec.cut_off = set()
    FakeExec.token = None
    FakeExec.written_on = None
    FakeExec.certificates = {}
    return FakeExec


def run(module):
    with pytest.raises(Exit) as result:
        replication_check.execute_module(module, api=API)
    return result.value.args[0]


def test_healthy_cluster_reports_every_pod_and_the_sentinel(fake_exec):
    result = run(Module())
    assert result["failed"] is False and result["changed"] is False
    assert result["primary"] == "mysql-0"
    assert {p: s["role"] for p, s in result["pods"].items()} == {"mysql-0": "primary", "mysql-1": "replica", "mysql-2": "replica"}
    assert set(result["sentinel"]["seconds"]) == {"mysql-1", "mysql-2"}
    assert all(seconds is not None for seconds in result["sentinel"]["seconds"].values())
    assert fake_exec.written_on == "mysql-0"
    assert result["writable"] == ["mysql-0"] and result["problems"] == []
    assert all(state["errant_gtids"] == "" for pod, state in result["pods"].items() if pod != "mysql-0")


def test_check_mode_writes_no_sentinel(fake_exec):
    result = run(Module(check_mode=True))
    assert result["failed"] is False
    assert "sentinel" not in result and fake_exec.token is None


def test_broken_replica_is_named_with_its_error(fake_exec):
    fake_exec.outputs["mysql-2"] = fixture("status-10.11-replica-auth-error.txt")
    result = run(Module())
    assert result["failed"] is True
    assert "mysql-2: IO thread Connecting" in result["msg"] and "Access denied" in result["msg"]
    assert "sentinel" not in result


def test_unreachable_pod_is_named(fake_exec):
    fake_exec.broken = {"mysql-1"}
    result = run(Module())
    assert result["failed"] is True
    assert "mysql-1: cannot read its state (exit code 1: ERROR 2002" in result["msg"]


def test_missing_statefulset_is_named_in_one_line(fake_api):
    del fake_api.objects[STATEFULSET]
    result = run(Module(replicas=None))
    assert result["failed"] is True
    assert result["msg"] == ("Cannot read StatefulSet mysql or its record ConfigMap mysql-topology in namespace mysql: "
                             "404 %s not found" % STATEFULSET)


def test_statefulset_scaled_to_zero_fails_in_one_line(fake_api):
    fake_api.scale(0)
    result = run(Module(replicas=None))
    assert result["failed"] is True
    assert result["msg"] == "StatefulSet mysql in namespace mysql has 0 replicas: nothing to check"


def test_zero_replicas_requested_fails_in_one_line():
    result = run(Module(replicas=0))
    assert result["failed"] is True and result["msg"] == "replicas=0: nothing to check"


def test_reconnecting_replica_passes_once_the_sentinel_arrives_and_is_read_again(fake_exec):
    fake_exec.outputs["mysql-1"] = [fixture("status-11.8-replica-reconnecting.txt"), fixture("status-11.8-mysql-1.txt")]
    result = run(Module())
    assert result["failed"] is False
    assert result["pods"]["mysql-1"]["io_running"] == "Yes"


def test_reconnecting_replica_without_the_sentinel_is_named_with_its_io_thread(fake_exec):
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-replica-reconnecting.txt")
    fake_exec.cut_off = {"mysql-1"}
    result = run(Module(timeout=0.3))
    assert result["failed"] is True
    assert "mysql-1: the sentinel row written on mysql-0 did not arrive within 0.3s (IO thread Connecting: error reconnecting" in result["msg"]


def test_reconnecting_replica_fails_when_no_sentinel_is_written(fake_exec):
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-replica-reconnecting.txt")
    result = run(Module(sentinel=False))
    assert result["failed"] is True and "mysql-1: IO thread Connecting" in result["msg"]


def test_a_second_writable_pod_fails_naming_both(fake_exec):
    fake_exec.outputs["mysql-2"] = fixture("status-10.11-mysql-0.txt")  # writable, replicating from nobody
    result = run(Module())
    assert result["failed"] is True and "sentinel" not in result
    assert result["writable"] == ["mysql-0", "mysql-2"]
    assert "2 pods are writable (mysql-0, mysql-2); only the primary mysql-0 may be" in result["msg"]


def test_a_replica_with_an_errant_gtid_is_named_with_it(fake_exec):
    # mysql-1 (server 101) committed a transaction of its own the primary never had.
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-mysql-1.txt").replace(
        "gtid_current_pos: 0-100-15", "gtid_current_pos: 0-101-16")
    result = run(Module())
    assert result["failed"] is True and "sentinel" not in result
    assert "mysql-1: errant GTIDs 0-101-16, not in the history of the primary mysql-0" in result["msg"]
    assert result["pods"]["mysql-1"]["errant_gtids"] == "0-101-16"
    assert result["pods"]["mysql-2"]["errant_gtids"] == ""  # behind, not errant


@pytest.mark.parametrize("replicas", [3, 2, 1])
def test_the_recorded_primary_at_another_ordinal_is_checked_and_written_to(fake_api, fake_exec, replicas):
    fake_api.primary = "mysql-2"
    fake_exec.outputs = {
        "mysql-0": as_replica_of(fixture("status-11.8-mysql-1.txt"), "mysql-2"),
        "mysql-1": as_replica_of(fixture("status-10.11-mysql-1.txt"), "mysql-2"),
        "mysql-2": fixture("status-11.8-mysql-0.txt"),
    }
    result = run(Module(replicas=replicas))
    assert result["failed"] is False, result.get("msg")
    assert result["primary"] == "mysql-2" and fake_exec.written_on == "mysql-2"
    replicas_checked = {"mysql-%d" % i for i in range(replicas)} - {"mysql-2"}
    assert {p: s["role"] for p, s in result["pods"].items()} == dict({"mysql-2": "primary"}, **{p: "replica" for p in replicas_checked})
    assert set(result["sentinel"]["seconds"]) == replicas_checked


def test_replicas_of_the_old_primary_are_named_once_the_record_moved(fake_api, fake_exec):
    fake_api.primary = "mysql-1"
    fake_exec.outputs["mysql-1"] = fixture("status-11.8-mysql-0.txt")
    fake_exec.outputs["mysql-0"] = as_replica_of(fixture("status-11.8-mysql-1.txt"), "mysql-1")
    result = run(Module())
    assert result["failed"] is True
    assert "mysql-2: replicates from mysql-0.mysql instead of mysql-1.mysql" in result["msg"]


def test_without_a_record_the_primary_is_ordinal_0(fake_api, fake_exec):
    fake_api.primary = None  # a cluster deployed before the record existed
    result = run(Module())
    assert result["failed"] is False and result["primary"] == "mysql-0" and fake_exec.written_on == "mysql-0"


def over_verified_tls(output):
    return output.replace("Master_SSL_Allowed: No", "Master_SSL_Allowed: Yes").replace(
        "Master_SSL_Verify_Server_Cert: No", "Master_SSL_Verify_Server_Cert: Yes")


def test_with_tls_each_servers_certificate_and_its_days_left_are_reported(fake_exec):
    for pod in ("mysql-1", "mysql-2"):
        fake_exec.outputs[pod] = over_verified_tls(fake_exec.outputs[pod])
    result = run(Module(tls=True))
    assert result["failed"] is False, result.get("msg")
    assert {pod: state["tls_expires"] for pod, state in result["pods"].items()} == dict.fromkeys(
        ("mysql-0", "mysql-1", "mysql-2"), "2099-12-06 12:00 UTC")
    assert all(state["tls_days_left"] > 365 * 70 for state in result["pods"].values())


@pytest.mark.parametrize("served,problem", [
    ("Ssl_server_not_after\tJan  1 00:00:00 2001 GMT\n",
     "mysql-2: its TLS certificate expired on 2001-01-01 00:00 UTC; renew_tls.yml renews it"),
    ("Ssl_server_not_after\t\n", "mysql-2: serves no TLS certificate; renew_tls.yml issues one"),
])
def test_with_tls_an_expired_or_missing_certificate_fails_naming_the_pod(fake_exec, served, problem):
    for pod in ("mysql-1", "mysql-2"):
        fake_exec.outputs[pod] = over_verified_tls(fake_exec.outputs[pod])
    fake_exec.certificates["mysql-2"] = served
    result = run(Module(tls=True))
    assert result["failed"] is True and result["problems"] == [problem]


def test_without_tls_no_certificate_is_asked_for(fake_exec):
    fake_exec.certificates = {"mysql-0": "not asked"}
    result = run(Module())
    assert result["failed"] is False and all("tls_expires" not in state for state in result["pods"].values())
