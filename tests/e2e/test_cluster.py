"""What the product relies on from the cluster: node, StatefulSet ordering
with per-pod PVCs, pod DNS, Service routing to Ready pods only, stable
identity and data across pod deletion, and exec (kubernetes.core.k8s_exec)."""
import subprocess

import pytest
from kubernetes import client, utils

from tests.harness import ROOT, image, pod_exec, wait_until

NS = "cluster-e2e"

# Each pod answers its hostname on 8080 and is Ready while /tmp/ready exists.
MANIFESTS = [
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "web", "namespace": NS},
     "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]}},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "web-vip", "namespace": NS},
     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet",
     "metadata": {"name": "web", "namespace": NS},
     "spec": {
         "serviceName": "web", "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
         "template": {
             "metadata": {"labels": {"app": "web"}},
             "spec": {
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{
                     "name": "web", "image": image("10.11"), "imagePullPolicy": "IfNotPresent",
                     "command": ["bash", "-c", "touch /tmp/ready; exec socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:hostname"],
                     "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 }],
             },
         },
         "volumeClaimTemplates": [{
             "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
         }],
     }},
]


@pytest.fixture(scope="module")
def web(api, core):
    if core.list_namespace(field_selector="metadata.name=%s" % NS).items:
        core.delete_namespace(NS)
        wait_until("old namespace gone", lambda: not core.list_namespace(field_selector="metadata.name=%s" % NS).items)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    for manifest in MANIFESTS:
        utils.create_from_dict(api, manifest)
    wait_until("2 Ready web pods", lambda: len(ready_pods(core)) == 2, timeout=180)
    yield pod_exec(api, NS, "web")
    core.delete_namespace(NS)


def ready_pods(core):
    pods = core.list_namespaced_pod(NS, label_selector="app=web").items
    return [p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]


def test_node_is_ready(core):
    [node] = core.list_node().items
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]


def test_statefulset_starts_pods_in_order_each_with_its_own_bound_pvc(web, core):
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(NS, label_selector="app=web").items}
    ready_at = [c.last_transition_time for c in pods["web-0"].status.conditions if c.type == "Ready"][0]
    assert pods["web-1"].metadata.creation_timestamp >= ready_at, "web-1 was created before web-0 was Ready"
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert sorted(claims) == ["data-web-0", "data-web-1"]
    assert all(c.status.phase == "Bound" for c in claims.values())
    assert claims["data-web-0"].spec.volume_name != claims["data-web-1"].spec.volume_name


def test_pod_dns_names_resolve_from_another_pod(web, core):
    ip = core.read_namespaced_pod("web-0", NS).status.pod_ip
    for name in ("web-0.web", "web-0.web.%s.svc.cluster.local" % NS):
        assert web.run("web-1", ["getent", "hosts", name]).split()[0] == ip


def test_service_routes_only_to_ready_pods(web, core):
    def answers():
        return {web.run("web-1", ["bash", "-c", "socat -T2 - TCP:web-vip:80 </dev/null"]).strip() for _ in range(12)}

    assert answers() == {"web-0", "web-1"}
    web.run("web-1", ["rm", "/tmp/ready"])
    try:
        wait_until("web-1 not Ready", lambda: [p.metadata.name for p in ready_pods(core)] == ["web-0"], timeout=60)
        # kube-proxy programs the endpoint change within its sync (iptables
        # is shared with the NetworkPolicy firewall, which can delay it).
        wait_until("web-vip answered by web-0 alone", lambda: answers() == {"web-0"}, timeout=30, interval=1)
    finally:
        web.run("web-1", ["touch", "/tmp/ready"])


def test_deleted_pod_returns_with_same_name_and_data(web, core):
    web.run("web-1", ["bash", "-c", "echo survives > /data/marker"])
    old_uid = core.read_namespaced_pod("web-1", NS).metadata.uid
    core.delete_namespaced_pod("web-1", NS)
    wait_until("web-1 recreated and Ready", lambda: any(
        p.metadata.name == "web-1" and p.metadata.uid != old_uid for p in ready_pods(core)), timeout=120)
    assert web.run("web-1", ["cat", "/data/marker"]).strip() == "survives"


def test_kubernetes_core_k8s_exec_works(web):
    proc = subprocess.run(
        ["ansible", "localhost", "-m", "kubernetes.core.k8s_exec",
         "-a", "namespace=%s pod=web-0 command='echo exec-ok'" % NS],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exec-ok" in proc.stdout
