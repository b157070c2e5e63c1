"""The write Service follows the primary by its pod-name key alone: the patch
merges into the selector the services role applied, so that it keeps working
on the selector of an older release as well as on this one's; the record of
what deploy.yml last applied follows too, so its next run changes nothing."""
import json
import types

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
