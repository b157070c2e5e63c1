"""Selectors no neighbour joins by accident, on a cluster of 2 pods that the
previous release deployed: beside it, a foreign pod and volume carry the
tutorial's app=mysql, MariaDB's name and the cluster's instance, but not its
managed-by. This release's deploy, stopped half-way once (a quota refuses the
new StatefulSet) and run again, carries the cluster over: the same volumes,
every row on every pod, replication verified, and no Service, NetworkPolicy
or PodDisruptionBudget of the cluster selects the foreign pod; teardown
deletes the cluster's volumes, not the foreign one."""
import types

import pytest
from kubernetes import client

from tests.harness import PODS, SELECTOR, drop_namespaces, fresh_namespaces, image, inventory_vars, release, run_playbook, sql, \
    start_client, wait_until

NS = "labels"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_autopilot": False}
# The previous release, whose selectors are app=<name>: the tip of
# issue-12-pdb-metrics, where this change started.
PREVIOUS = "0999d14e33aa891717d915cd5a4a942dff22cdc6"
FOREIGN = {"app": "mysql", "app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mysql",
           "app.kubernetes.io/managed-by": "Helm"}
QUOTA = "no-statefulsets"


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    return release(tmp_path_factory, PREVIOUS)


def create_foreign_objects(core):
    """A Ready pod, with a volume, that every old selector of the cluster selects."""
    core.create_namespaced_persistent_volume_claim(NS, {
        "metadata": {"name": "neighbour-data", "labels": FOREIGN},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": inventory_vars().get("mariadb_storage_class") or None,
                 "resources": {"requests": {"storage": "64Mi"}}}})
    core.create_namespaced_pod(NS, {
        "metadata": {"name": "neighbour", "labels": FOREIGN},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "neighbour", "image": image("10.11"), "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "infinity"], "ports": [{"name": "mysql", "containerPort": 3306}],
                                 "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "neighbour-data"}}]}})


@pytest.fixture(scope="module")
def cluster(api, core, previous):
    fresh_namespaces(core, NS)
    run_playbook("deploy.yml", dict(BASE, replicas=2), **previous).check()
    runner = start_client(core, api, NS)
    sql(runner, "mysql-primary", "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40));"
        "INSERT INTO shop.orders SELECT seq, CONCAT('item ', seq) FROM shop.seq_1_to_300")
    create_foreign_objects(core)
    claims = {c.metadata.name: c.metadata.uid for c in core.list_namespaced_persistent_volume_claim(NS).items}
    yield types.SimpleNamespace(runner=runner, claims=claims)
    drop_namespaces(core, NS)


def members(api, service):
    """Names of the pods behind a Service, Ready or not."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(NS, label_selector="kubernetes.io/service-name=" + service)
    return sorted(e.target_ref.name for s in slices.items for e in s.endpoints or [])


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def healthy(api):
    """The Ready pods the budget selects, once the disruption controller saw its spec."""
    budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("mysql", NS)
    return budget.status.current_healthy if budget.status.observed_generation == budget.metadata.generation else None


def table_state(runner, host):
    return sql(runner, host, "SELECT COUNT(*) FROM shop.orders; CHECKSUM TABLE shop.orders").split()


def test_the_previous_release_selects_the_foreign_pod(api, cluster):
    assert client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS).spec.selector.match_labels == {"app": "mysql"}
    for service in ("mysql", "mysql-read"):
        wait_until("neighbour behind " + service, lambda: "neighbour" in members(api, service), timeout=120)
    wait_until("the budget counting the neighbour", lambda: healthy(api) == 3, timeout=120)


def test_check_mode_changes_nothing(api, core, cluster):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    preview = run_playbook("deploy.yml", BASE, check=True).check()
    assert "Check mode does not preview that" in " ".join(preview.output.split())
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before
    assert core.read_namespaced_service("mysql-read", NS).spec.selector == {"app": "mysql"}
    assert all("app.kubernetes.io/instance" not in core.read_namespaced_pod(p, NS).metadata.labels for p in ("mysql-0", "mysql-1"))


def test_a_deploy_stopped_half_way_leaves_the_pods_serving(api, core, cluster):
    core.create_namespaced_resource_quota(NS, {"metadata": {"name": QUOTA}, "spec": {"hard": {"count/statefulsets.apps": "0"}}})
    wait_until("the quota counted", lambda: core.read_namespaced_resource_quota(QUOTA, NS).status.used is not None, timeout=60)
    stopped = run_playbook("deploy.yml", BASE)
    assert stopped.rc != 0 and "exceeded quota" in stopped.output, stopped.output[-3000:]
    core.delete_namespaced_resource_quota(QUOTA, NS)
    assert client.AppsV1Api(api).list_namespaced_stateful_set(NS).items == []
    pods = core.list_namespaced_pod(NS, label_selector=PODS).items
    assert sorted(p.metadata.name for p in pods) == ["mysql-0", "mysql-1"]
    assert all(not p.metadata.owner_references and "app" not in p.metadata.labels for p in pods)
    sql(cluster.runner, "mysql-primary", "INSERT INTO shop.orders VALUES (301, 'while no StatefulSet existed')")


def test_the_next_deploy_completes_the_replacement(api, core, cluster):
    result = run_playbook("deploy.yml", BASE).check()  # no replicas given: the 2 that ran
    assert ": replica, server_id" in result.output and "IO Yes, SQL Yes" in result.output
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS)
    assert sts.spec.selector.match_labels == SELECTOR
    pods = core.list_namespaced_pod(NS, label_selector=PODS).items
    assert sorted(p.metadata.name for p in pods) == ["mysql-0", "mysql-1"]
    for pod in pods:
        assert [o.uid for o in pod.metadata.owner_references] == [sts.metadata.uid], pod.metadata.name
        assert "app" not in pod.metadata.labels and pod.metadata.labels["app.kubernetes.io/component"] == "database"
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert {name: claims[name].metadata.uid for name in cluster.claims} == cluster.claims  # the same volumes
    assert all(selects(SELECTOR, claims[name].metadata.labels) for name in ("data-mysql-0", "data-mysql-1"))
    record = core.read_namespaced_config_map("mysql-topology", NS).metadata
    assert selects(SELECTOR, record.labels) and "mariadb-k8s/replaced-statefulset" not in (record.annotations or {})
    revisions = client.AppsV1Api(api).list_namespaced_controller_revision(NS).items
    assert revisions and all([o.uid for o in r.metadata.owner_references or []] == [sts.metadata.uid] for r in revisions)
    expected = table_state(cluster.runner, "mysql-0.mysql")
    assert expected[0] == "301"
    assert table_state(cluster.runner, "mysql-1.mysql") == expected


def test_no_selector_of_the_cluster_selects_the_foreign_pod(api, core, cluster):
    for service in ("mysql", "mysql-read", "mysql-primary", "mysql-metrics"):
        assert "neighbour" not in members(api, service), service
    wait_until("mysql-read behind both pods", lambda: members(api, "mysql-read") == ["mysql-0", "mysql-1"], timeout=60)
    ours = core.read_namespaced_pod("mysql-0", NS).metadata.labels
    policy = client.NetworkingV1Api(api).read_namespaced_network_policy("mysql", NS).spec
    peers = [peer.pod_selector for rule in policy.ingress for peer in rule._from or []]
    assert all(s.match_expressions is None for s in peers + [policy.pod_selector])
    assert selects(policy.pod_selector.match_labels, ours) and not selects(policy.pod_selector.match_labels, FOREIGN)
    assert not any(selects(s.match_labels, FOREIGN) for s in peers)
    assert sum(selects(s.match_labels, ours) for s in peers) == 2  # 3306 and the clone port 3307
    budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("mysql", NS).spec.selector
    assert budget.match_expressions is None and not selects(budget.match_labels, FOREIGN)
    wait_until("the budget counting the cluster's pods only", lambda: healthy(api) == 2, timeout=120)


def test_a_redeploy_changes_nothing(cluster):
    result = run_playbook("deploy.yml", BASE).check()
    assert result.changed == 0, result.changed_tasks


def test_teardown_deletes_the_clusters_volumes_only(core, cluster):
    run_playbook("teardown.yml", dict(BASE, delete_data=True)).check()
    assert [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NS).items] == ["neighbour-data"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items if p.metadata.name != "client"] == ["neighbour"]
