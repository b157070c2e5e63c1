"""Bad input is rejected before anything in the cluster changes, with a
message naming the variable."""
import os
import tempfile

import pytest
from kubernetes import client

from tests.harness import drop_namespaces, fresh_namespaces, run_playbook

NS = "inputs"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "replicas": 1, "mariadb_autopilot": False}

UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: nobody, user: {token: none}}]
contexts: [{name: gone, context: {cluster: gone, user: nobody}}]
current-context: gone
"""

# (playbook, extra vars, text the error must contain)
CASES = [
    ("deploy.yml", {"replicas": 0}, "mariadb_replicas (-e replicas) must be an integer from 1 to 64"),
    ("deploy.yml", {"replicas": -1}, "mariadb_replicas (-e replicas) must be an integer from 1 to 64"),
    ("deploy.yml", {"replicas": "abc"}, "mariadb_replicas"),
    ("deploy.yml", {"replicas": 100000}, "mariadb_replicas (-e replicas) must be an integer from 1 to 64"),
    ("deploy.yml", {"partition": -1}, "mariadb_partition (-e partition) must be an integer from 0"),
    ("deploy.yml", {"partition": "half"}, "mariadb_partition"),
    ("deploy.yml", {"partition": 3}, "mariadb_partition (-e partition) must be an integer from 0 to mariadb_replicas - 1"),
    ("deploy.yml", {"image": "Not A/Valid::Image"}, "mariadb_image (-e image) must be an image reference"),
    ("deploy.yml", {"mariadb_storage_size": "10 GB"}, "mariadb_storage_size must be a positive Kubernetes quantity"),
    ("deploy.yml", {"mariadb_storage_size": "0"}, "mariadb_storage_size must be a positive Kubernetes quantity"),
    ("deploy.yml", {"mariadb_namespace": "Bad_Namespace"}, "mariadb_namespace must be a DNS-1123 label"),
    ("deploy.yml", {"mariadb_name": "x" * 60}, "mariadb_name must be a DNS-1123 label of at most 40 characters"),
    ("deploy.yml", {"version": "9.9"}, "mariadb_version"),
    ("deploy.yml", {"mariadb_clone_idle_timeout": -5}, "mariadb_clone_idle_timeout must be a positive number of seconds"),
    ("deploy.yml", {"mariadb_semi_sync_timeout": 0}, "mariadb_semi_sync_timeout must be a positive number of seconds"),
    ("deploy.yml", {"mariadb_semi_sync": "sometimes"}, "argument 'mariadb_semi_sync' is of type str and we were unable to convert to bool"),
    ("deploy.yml", {"mariadb_metrics": "sometimes"}, "argument 'mariadb_metrics' is of type str and we were unable to convert to bool"),
    ("deploy.yml", {"mariadb_pod_disruption_budget": "maybe"},
     "argument 'mariadb_pod_disruption_budget' is of type str and we were unable to convert to bool"),
    ("deploy.yml", {"mariadb_backup_verify_schedule": "weekly"},
     "mariadb_backup_verify_schedule must be a cron schedule such as '0 5 * * 0' or empty, got 'weekly'"),
    ("deploy.yml", {"mariadb_backup_verify_schedule": "0 5 * * 0"},
     "mariadb_backup_verify_schedule needs mariadb_backup_store_secret"),
    ("verify_backup.yml", {}, "mariadb_backup_store_secret is empty: name the Secret"),
    ("deploy.yml", {"mariadb_backup_throttle": -1}, "mariadb_backup_throttle must be a number of operations a second, 0 for no limit, got '-1'"),
    ("deploy.yml", {"mariadb_exporter_image": "Not An Image"}, "mariadb_exporter_image must be an image reference"),
    ("deploy.yml", {"mariadb_exporter_command": [""]}, "mariadb_exporter_command must be a list of strings"),
    # A new cluster: on this TLS one, turning TLS off is refused first.
    ("deploy.yml", {"mariadb_namespace": "inputs-new", "mariadb_tls": False, "mariadb_tls_required": True},
     "mariadb_tls_required needs mariadb_tls"),
    ("deploy.yml", {"mariadb_tls": False, "mariadb_tls_required": True}, "mariadb_tls is false, but this cluster was created with TLS on"),
    ("deploy.yml", {"mariadb_tls_secret": "Not A Secret"}, "mariadb_tls_secret must be a Secret name"),
    ("deploy.yml", {"mariadb_cluster_domain": "cluster..local"}, "mariadb_cluster_domain must be a DNS domain"),
    ("deploy.yml", {"mariadb_tls_days": 0}, "mariadb_tls_days must be a positive number of days"),
    ("deploy.yml", {"mariadb_server_settings": {"max_connections": 50, "GTID-Strict-Mode": "OFF", "loose_binlog_format": "MIXED"}},
     "mariadb_server_settings may not set GTID-Strict-Mode, loose_binlog_format: the cluster's replication"),
    ("failover.yml", {"force": "maybe"}, "primary_force (-e force) must be a boolean"),
    ("switchover.yml", {"primary": "db-1"}, "primary_target (-e primary) must name the pod to promote"),
    ("deploy.yml", {"mariadb_storage_size": "2Gi"}, "mariadb_storage_size is 2Gi, but the cluster's volumes were created with 1Gi"),
    ("deploy.yml", {"mariadb_kubeconfig": "/nonexistent/kubeconfig"}, "mariadb_kubeconfig points at '/nonexistent/kubeconfig', which does not exist"),
    ("deploy.yml", {"mariadb_kubeconfig": "UNREACHABLE"}, "Cannot reach the Kubernetes API (mariadb_kubeconfig="),
    ("teardown.yml", {"delete_data": "maybe"}, "teardown_delete_data (-e delete_data) must be a boolean"),
    ("rebuild.yml", {"pod": "mysql-0"}, "rebuild_pod (-e pod) must name a replica"),
    ("upgrade.yml", {"mariadb_namespace": "nowhere"}, "No StatefulSet mysql in namespace nowhere (mariadb_name"),
]


@pytest.fixture(scope="module")
def deployed(api, core):
    fresh_namespaces(core, NS)
    run_playbook("deploy.yml", BASE).check()
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as handle:
        handle.write(UNREACHABLE_KUBECONFIG)
    yield handle.name
    os.unlink(handle.name)
    drop_namespaces(core, NS)


def snapshot(api, namespaces):
    """Every object the collection could touch for a play naming these
    namespaces, with its version. Other test modules run meanwhile in their
    own namespaces: theirs are not compared."""
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    objects = {("Namespace", n.metadata.name): n.metadata.resource_version
               for n in core.list_namespace().items if n.metadata.name in namespaces}
    for kind, items in (
        ("StatefulSet", apps.list_stateful_set_for_all_namespaces().items),
        ("Service", core.list_service_for_all_namespaces().items),
        ("ConfigMap", core.list_config_map_for_all_namespaces().items),
        ("Secret", core.list_secret_for_all_namespaces().items),
        ("PersistentVolumeClaim", core.list_persistent_volume_claim_for_all_namespaces().items),
        ("NetworkPolicy", net.list_network_policy_for_all_namespaces().items),
        ("Pod", core.list_pod_for_all_namespaces().items),
    ):
        objects.update({(kind, o.metadata.namespace, o.metadata.name): o.metadata.resource_version
                        for o in items if o.metadata.namespace in namespaces})
    return objects


@pytest.mark.parametrize("playbook, extra, message", CASES, ids=["%s %s" % (c[0], c[1]) for c in CASES])
def test_bad_input_is_rejected_before_any_change(api, deployed, report, playbook, extra, message):
    extra = {k: (deployed if v == "UNREACHABLE" else v) for k, v in extra.items()}
    namespaces = {NS, extra.get("mariadb_namespace", NS)}
    before = snapshot(api, namespaces)
    result = run_playbook(playbook, dict(BASE, **extra))
    after = snapshot(api, namespaces)
    assert result.rc != 0
    assert message in " ".join(result.output.split()), result.output[-3000:]
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    report.bad_input("%s -e %s" % (playbook, extra), message, not changed)
    assert not changed, "the cluster changed: %s" % sorted(changed)


def test_one_bad_value_gives_one_message(deployed):
    result = run_playbook("deploy.yml", dict(BASE, replicas=0))
    output = " ".join(result.output.split())
    assert result.rc != 0
    assert output.count("fatal:") == 1 and "mariadb_replicas (-e replicas) must be an integer from 1 to 64" in output, \
        result.output[-3000:]
    assert "mariadb_partition" not in output, result.output[-3000:]


def test_an_argument_spec_error_names_the_variable_without_dumping_the_spec(deployed):
    result = run_playbook("deploy.yml", dict(BASE, mariadb_tls="maybe"))
    output = " ".join(result.output.split())
    assert result.rc != 0
    assert output.count("fatal:") == 1 and "argument 'mariadb_tls' is of type str" in output, result.output[-3000:]
    # Control: the spec's own text (a description from meta/argument_specs.yml) is not printed.
    assert "argument_spec_data" not in output and "Seconds to wait for pods to become Ready" not in output, \
        result.output[-3000:]
