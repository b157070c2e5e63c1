"""The write Service follows the primary by its pod-name key alone: the patch
merges into the selector the services role applied, so that it keeps working
on the selector of an older release as well as on this one's; the record of
what deploy.yml last applied follows too, so its next run changes nothing."""
import json
import types

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import cluster

APPLIED = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mysql-primary"},
           "spec": {"selector": {"app.kubernetes.io/instance": "mysql", cluster.POD_NAME_LABEL: "mysql-0"}}}


class Core:
    def __init__(self, api_client):
        self.patches = []
        self.annotations = None

    def read_namespaced_service(self, name, namespace):
        return types.SimpleNamespace(metadata=types.SimpleNamespace(annotations=self.annotations))

    def patch_namespaced_service(self, name, namespace, body):
        self.patches.append((name, namespace, body))


def test_the_write_service_patch_names_only_the_pod(monkeypatch):
    monkeypatch.setattr(cluster, "CoreV1Api", Core)
    monkeypatch.setattr(cluster, "AppsV1Api", lambda api_client: None)
    monkeypatch.setattr(cluster, "PodExec", lambda api_client, namespace, container: None)
    target = cluster.Cluster(None, "db", "mysql")
    target.point_write_service("mysql-1")
    target.point_write_service(None)
    assert target._core.patches == [
        ("mysql-primary", "db", {"spec": {"selector": {"statefulset.kubernetes.io/pod-name": "mysql-1"}}}),
        ("mysql-primary", "db", {"spec": {"selector": {"statefulset.kubernetes.io/pod-name": ""}}}),
    ]


def test_the_last_applied_selector_follows_the_pod(monkeypatch):
    monkeypatch.setattr(cluster, "CoreV1Api", Core)
    monkeypatch.setattr(cluster, "AppsV1Api", lambda api_client: None)
    monkeypatch.setattr(cluster, "PodExec", lambda api_client, namespace, container: None)
    target = cluster.Cluster(None, "db", "mysql")
    target._core.annotations = {cluster.LAST_APPLIED: json.dumps(APPLIED)}
    target.point_write_service("mysql-2")
    (_, _, body), = target._core.patches
    assert body["spec"] == {"selector": {cluster.POD_NAME_LABEL: "mysql-2"}}
    applied = json.loads(body["metadata"]["annotations"][cluster.LAST_APPLIED])
    assert applied == dict(APPLIED, spec={"selector": {"app.kubernetes.io/instance": "mysql", cluster.POD_NAME_LABEL: "mysql-2"}})


class Record:
    """The record's ConfigMap as the API server keeps it: each write a new
    resource version; a patch naming another version is refused (409)."""

    def __init__(self, api_client=None, data=None):
        self.data, self.version, self.patches = dict(data or {"primary": "mysql-0"}), 1, []
        self.before_patch = None

    def read_namespaced_config_map(self, name, namespace):
        return types.SimpleNamespace(data=dict(self.data), metadata=types.SimpleNamespace(resource_version=str(self.version)))

    def patch_namespaced_config_map(self, name, namespace, body):
        if self.before_patch:
            self.before_patch(self)
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise cluster.ApiException(status=409, reason="Conflict")
        self.data.update(body["data"])
        self.version += 1
        self.patches.append(dict(body["data"]))


def record_cluster(monkeypatch, record):
    monkeypatch.setattr(cluster, "CoreV1Api", lambda api_client: record)
    monkeypatch.setattr(cluster, "AppsV1Api", lambda api_client: None)
    monkeypatch.setattr(cluster, "PodExec", lambda api_client, namespace, container: None)
    target = cluster.Cluster(None, "db", "mysql")
    target.point_write_service = lambda pod: None
    return target


def test_a_record_before_the_epoch_is_epoch_zero(monkeypatch):
    assert record_cluster(monkeypatch, Record()).read_record() == ("mysql-0", 0)


def test_each_move_increments_the_epoch(monkeypatch):
    record = Record(data={"primary": "mysql-0", "epoch": "4"})
    target = record_cluster(monkeypatch, record)
    assert target.record_primary("mysql-1", "mysql-0", 4) == 5
    assert target.read_record() == ("mysql-1", 5)


def test_a_move_started_from_an_older_record_is_refused(monkeypatch):
    record = Record(data={"primary": "mysql-2", "epoch": "5"})
    with pytest.raises(cluster.RecordMoved) as moved:
        record_cluster(monkeypatch, record).record_primary("mysql-1", "mysql-0", 4)
    assert moved.value.primary == "mysql-2" and record.patches == []


def test_a_move_recorded_between_read_and_write_wins(monkeypatch):
    """Two movers read epoch 4; the other writes first: the version check refuses ours."""
    record = Record(data={"primary": "mysql-0", "epoch": "4"})

    def other_move(record):
        record.before_patch = None
        record.data.update(primary="mysql-2", epoch="5")
        record.version += 1
    record.before_patch = other_move
    with pytest.raises(cluster.RecordMoved) as moved:
        record_cluster(monkeypatch, record).record_primary("mysql-1", "mysql-0", 4)
    assert moved.value.primary == "mysql-2" and record.data == {"primary": "mysql-2", "epoch": "5"}


def test_another_key_written_meanwhile_does_not_stop_the_move(monkeypatch):
    record = Record(data={"primary": "mysql-0", "epoch": "4"})

    def settings_written(record):
        record.before_patch = None
        record.data["settings"] = "{}"
        record.version += 1
    record.before_patch = settings_written
    assert record_cluster(monkeypatch, record).record_primary("mysql-1", "mysql-0", 4) == 5
    assert record.data == {"primary": "mysql-1", "epoch": "5", "settings": "{}"}


def test_a_write_service_that_cannot_move_records_the_previous_primary_again(monkeypatch):
    record = Record(data={"primary": "mysql-0", "epoch": "4"})
    target = record_cluster(monkeypatch, record)

    def fail(pod):
        raise RuntimeError("connection reset")
    target.point_write_service = fail
    with pytest.raises(RuntimeError):
        target.record_primary("mysql-1", "mysql-0", 4)
    assert record.patches == [{"primary": "mysql-1", "epoch": "5"}, {"primary": "mysql-0", "epoch": "6"}]
