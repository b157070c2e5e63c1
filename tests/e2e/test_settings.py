"""Every setting is kept: each cluster is deployed with a value other than the
default for every setting of the table tests/e2e/settings_kept.yml, then
plain playbooks run with an inventory that sets nothing (not even the local
cluster's images): the settings record must supply each value, a plain
deploy.yml must change nothing, and what MariaDB and the cluster run must
still be what was asked. A cluster of the previous release, deployed without
the record, is carried over by reading its settings where it kept them."""
import json
import os

import pytest
import yaml
from kubernetes import client

from tests.e2e import object_store
from tests.harness import drop_namespaces, fresh_namespaces, pod_exec, release, run_playbook

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings_kept.yml")) as handle:
    TABLE = yaml.safe_load(handle)
NS = {"with_tls": "settings", "without_tls": "settings-notls", "earlier": "settings-earlier"}
# The release before the settings record.
EARLIER = "ab37244f59d2498b7dc34048b74d2eae6d0b4762"
# What the local cluster needs that its inventory normally gives: the
# cluster without TLS is deployed with these, then upgraded without them.
LOCAL = {k: TABLE["with_tls"][k] for k in (
    "mariadb_image_repository", "mariadb_image_pull_policy", "mariadb_storage_class", "mariadb_volume_permissions_init",
    "mariadb_exporter_command", "mariadb_backup_client_binary", "mariadb_autopilot_image")}


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """An inventory that sets no variable: the kubeconfig comes from K8S_AUTH_KUBECONFIG."""
    hosts = tmp_path_factory.mktemp("bare") / "hosts.yml"
    hosts.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
    return {"ANSIBLE_INVENTORY": str(hosts)}


@pytest.fixture(scope="module")
def earlier_release(tmp_path_factory):
    return release(tmp_path_factory, EARLIER)


@pytest.fixture(scope="module")
def clusters(api, core):
    store = object_store.deploy(api)
    fresh_namespaces(core, NS["with_tls"], NS["without_tls"])
    if not core.list_namespace(field_selector="metadata.name=" + NS["with_tls"]).items:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS["with_tls"])))
    store.store_secret(NS["with_tls"], TABLE["with_tls"]["mariadb_backup_store_secret"], prefix="settings")
    yield
    drop_namespaces(core, NS["with_tls"], NS["without_tls"])


def record(core, namespace):
    return json.loads(core.read_namespaced_config_map("mysql-topology", namespace).data["settings"])


def server(api, namespace, query):
    return pod_exec(api, namespace, "sidecar").run(
        "mysql-0", ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql -N -e "$0"', query]).split()


def test_a_cluster_with_every_setting_changed_keeps_each_one(api, core, clusters, bare):
    values, namespace = TABLE["with_tls"], NS["with_tls"]
    run_playbook("deploy.yml", dict(values, mariadb_namespace=namespace)).check()
    kept = record(core, namespace)
    assert {name: kept.get(name) for name in values} == values

    plain = run_playbook("deploy.yml", {"mariadb_namespace": namespace}, env=bare).check()
    assert plain.changed == 0, plain.changed_tasks
    assert record(core, namespace) == kept

    apps, policy, net = client.AppsV1Api(api), client.PolicyV1Api(api), client.NetworkingV1Api(api)
    sts = apps.read_namespaced_stateful_set("mysql", namespace)
    assert (sts.spec.replicas, sts.spec.update_strategy.rolling_update.partition) == (2, 1)
    containers = {c.name: c for c in sts.spec.template.spec.containers}
    assert "exporter" not in containers
    assert containers["mariadb"].image == "localhost/mariadb:11.8"
    assert containers["mariadb"].resources.requests == {"cpu": "120m", "memory": "200Mi"}
    assert not policy.list_namespaced_pod_disruption_budget(namespace).items
    assert not net.list_namespaced_network_policy(namespace).items
    assert client.BatchV1Api(api).read_namespaced_cron_job("mysql-backup", namespace).spec.schedule == "0 4 * * *"
    assert server(api, namespace, "SELECT @@max_connections, @@require_secure_transport, @@rpl_semi_sync_master_enabled") == [
        "77", "1", "0"]


def test_a_cluster_without_tls_keeps_its_repository_through_an_upgrade(api, core, clusters, bare):
    values, namespace = TABLE["without_tls"], NS["without_tls"]
    run_playbook("deploy.yml", dict(values, replicas=1, version="10.11", mariadb_namespace=namespace,
                                    **LOCAL)).check()
    kept = record(core, namespace)
    assert {name: kept.get(name) for name in values} == values

    # The repository given once (here, the local images) is not forgotten
    # by a later upgrade that names only the version.
    run_playbook("upgrade.yml", {"mariadb_namespace": namespace, "version": "11.8"}, env=bare).check()
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", namespace)
    assert [c.image for c in sts.spec.template.spec.containers if c.name == "mariadb"] == ["localhost/mariadb:11.8"]
    plain = run_playbook("deploy.yml", {"mariadb_namespace": namespace}, env=bare).check()
    assert plain.changed == 0, plain.changed_tasks
    assert "tls" not in [v.name for v in sts.spec.template.spec.volumes]
    assert record(core, namespace) == dict(kept, mariadb_version="11.8", mariadb_image="localhost/mariadb:11.8")


def test_a_cluster_of_the_release_before_the_record_keeps_what_it_kept(api, core, earlier_release):
    """What the release before the record kept (replica count, partition,
    image, TLS Secret and requirement, clone timeout) is read once from the
    StatefulSet, recorded, and kept from then on."""
    namespace = NS["earlier"]
    given = {"mariadb_replicas": 2, "mariadb_tls_required": True, "mariadb_clone_idle_timeout": 77}
    try:
        run_playbook("teardown.yml", {"mariadb_namespace": namespace, "delete_data": True}).check()
        run_playbook("deploy.yml", dict(given, mariadb_namespace=namespace), **earlier_release).check()
        assert "settings" not in core.read_namespaced_config_map("mysql-topology", namespace).data

        run_playbook("deploy.yml", {"mariadb_namespace": namespace}).check()
        kept = record(core, namespace)
        assert {name: kept[name] for name in given} == given
        assert (kept["mariadb_version"], kept["mariadb_tls"]) == ("10.11", True)
        again = run_playbook("deploy.yml", {"mariadb_namespace": namespace}).check()
        assert again.changed == 0, again.changed_tasks
    finally:
        run_playbook("teardown.yml", {"mariadb_namespace": namespace, "delete_data": True}).check()
