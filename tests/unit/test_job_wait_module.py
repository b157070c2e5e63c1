"""The Job wait with a scripted cluster: it returns as the Job ends, either
way, with the newest pod's log; it fails only when the Job is missing or
still runs at the deadline."""
import pytest
from kubernetes.client.exceptions import ApiException

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import job
from ansible_collections.mariadb_k8s.cluster.plugins.modules import job_wait
from fake_module import Exit, FakeModule

RUNNING = {"metadata": {"name": "mysql-backup-1"}, "status": {"active": 1}}
SUCCEEDED = {"metadata": {"name": "mysql-backup-1"}, "status": {"succeeded": 1}}
FAILED = {"metadata": {"name": "mysql-backup-1"}, "status": {"failed": 1}}


class Module(FakeModule):
    defaults = dict(namespace="mysql", name="mysql-backup-1", container="backup", timeout=5)


class ScriptedCluster:
    """Each read returns the next Job (the last one repeats; None: not
    found); an exception in the script is raised instead."""

    def __init__(self, jobs, watch_errors=(), log=("BACKUP OK {}",)):
        self.jobs = list(jobs)
        self.watch_errors = list(watch_errors)
        self.reads = 0
        self.lines = log if isinstance(log, Exception) else list(log)
        self.log_container = None

    def read(self):
        self.reads += 1
        found = self.jobs.pop(0) if len(self.jobs) > 1 else self.jobs[0]
        if isinstance(found, Exception):
            raise found
        return found, "42"

    def next_job_event(self, resource_version, seconds):
        assert resource_version == "42" and 0 < seconds <= job_wait.WATCH_SECONDS
        if self.watch_errors:
            raise self.watch_errors.pop(0)

    def log(self, container):
        self.log_container = container
        if isinstance(self.lines, Exception):
            raise self.lines
        return self.lines


def run(cluster, **params):
    with pytest.raises(Exit) as result:
        job_wait.execute_module(Module(**params), cluster)
    return result.value.args[0]


@pytest.mark.parametrize("ended,succeeded", [(SUCCEEDED, True), (FAILED, False)])
def test_returns_as_the_job_ends_with_its_log(ended, succeeded):
    cluster = ScriptedCluster([RUNNING, RUNNING, ended])
    result = run(cluster)
    assert result["failed"] is False and result["changed"] is False
    assert result["succeeded"] is succeeded and result["log_lines"] == ["BACKUP OK {}"]
    assert cluster.reads == 3 and cluster.log_container == "backup"


def test_a_missing_job_is_named():
    result = run(ScriptedCluster([None]))
    assert result["failed"] is True and result["msg"] == "Job mysql-backup-1 not found in namespace mysql."


def test_times_out_with_the_job_still_running(monkeypatch):
    monkeypatch.setattr(job_wait.time, "sleep", lambda seconds: None)
    result = run(ScriptedCluster([RUNNING]), timeout=0.05)
    assert result["failed"] is True and result["msg"] == "Job mysql-backup-1 still running after 0.05s."


def test_transient_api_and_watch_errors_are_retried(monkeypatch):
    monkeypatch.setattr(job_wait.time, "sleep", lambda seconds: None)
    cluster = ScriptedCluster([ApiException(status=503, reason="Service Unavailable"), RUNNING, SUCCEEDED],
                              watch_errors=[ApiException(status=410, reason="Gone")])
    assert run(cluster)["succeeded"] is True and cluster.reads == 3


def test_an_api_error_until_the_deadline_is_reported(monkeypatch):
    monkeypatch.setattr(job_wait.time, "sleep", lambda seconds: None)
    result = run(ScriptedCluster([ConnectionRefusedError("connection refused")]), timeout=0.05)
    assert result["failed"] is True and "(connection refused)" in result["msg"]


def test_a_log_that_cannot_be_read_is_said_in_its_place():
    cluster = ScriptedCluster([FAILED], log=ApiException(status=400, reason="Bad Request"))
    result = run(cluster)
    assert result["succeeded"] is False
    assert result["log_lines"] == ["(the Job's log could not be read: 400 Bad Request)"]


@pytest.mark.parametrize("status,ended", [({}, None), ({"active": 1}, None), ({"succeeded": 1}, True),
                                          ({"failed": 1}, False), (None, None)])
def test_outcome(status, ended):
    assert job.outcome({"status": status}) is ended


def test_the_newest_pod_is_the_one_created_last():
    pods = [{"metadata": {"name": name, "creationTimestamp": created}}
            for name, created in (("b", "2026-12-06T12:00:05Z"), ("a", "2026-12-06T12:00:09Z"), ("c", "2026-12-06T12:00:01Z"))]
    assert job.newest_pod(pods) == "a" and job.newest_pod([]) is None


def test_the_containers_with_a_log_are_those_that_started():
    pod = {"metadata": {"name": "p"}, "status": {
        "initContainerStatuses": [{"name": "backup-tools", "state": {"terminated": {"exitCode": 0}}},
                                  {"name": "source", "state": {"terminated": {"exitCode": 1}}},
                                  {"name": "plan", "state": {"waiting": {"reason": "PodInitializing"}}}],
        "containerStatuses": [{"name": "verify", "state": {"waiting": {"reason": "PodInitializing"}}}]}}
    assert job.started_containers(pod) == ["backup-tools", "source"]
    running = {"metadata": {"name": "p"}, "status": {"containerStatuses": [{"name": "verify", "state": {"running": {}}}]}}
    assert job.started_containers(running) == ["verify"]
    assert job.started_containers({"metadata": {"name": "p"}}) == []
