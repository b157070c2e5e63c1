"""The write Service follows the primary by its pod-name key alone: the patch
merges into the selector the services role applied, so that it keeps working
on the selector of an older release as well as on this one's."""
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import cluster


class Core:
    def __init__(self, api_client):
        self.patches = []

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
