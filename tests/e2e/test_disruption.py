"""Enforced and observable, on one deployment of 3 pods: every pod's exporter
reports its own server, replication and threads, through an account that
can only monitor; the PodDisruptionBudget lets
the Eviction API take one pod at a time; a ServiceMonitor exists where the
Prometheus Operator's CRD does, and teardown removes it."""
import datetime
import time

import pytest
from kubernetes import client

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from tests import metrics
from tests.harness import cluster_wide_change, drop_namespaces, fresh_namespaces, pod_exec, run_playbook, wait_until

NS = "disruption"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "replicas": 3, "mariadb_autopilot": False}
PODS = ["mysql-0", "mysql-1", "mysql-2"]
CRD = "servicemonitors.monitoring.coreos.com"


@pytest.fixture(scope="module")
def deployed(core):
    fresh_namespaces(core, NS)
    run_playbook("deploy.yml", BASE).check()
    yield
    drop_namespaces(core, NS)


def scrape(core, pod, port=9104):
    """The pod's /metrics on port (9104: the exporter's, 9105: the sidecar's)
    through the API server's pod proxy."""
    response = core.connect_get_namespaced_pod_proxy_with_path("%s:%d" % (pod, port), NS, "metrics", _preload_content=False)
    return metrics.parse(response.data.decode())


def test_every_pod_exports_its_own_server(core, deployed):
    pages = {pod: scrape(core, pod) for pod in PODS}
    for ordinal, pod in enumerate(PODS):
        assert metrics.problems(pages[pod], replica=pod != "mysql-0") == [], pod
        assert metrics.value(pages[pod], "mysql_global_variables_server_id") == 100 + ordinal, pod
    for pod in PODS[1:]:
        assert metrics.value(pages[pod], "mysql_slave_status_master_server_id") == 100, pod
    # GTID positions are strings, which the exporter drops; the strict mode shows.
    assert all(metrics.value(pages[pod], "mysql_global_variables_gtid_strict_mode") == 1 for pod in PODS)
    dumps = [v for labels, v in pages["mysql-0"]["mysql_info_schema_processlist_threads"] if labels["command"] == "binlog_dump"]
    assert sum(dumps) == 2, "one binlog dump thread per replica: %s" % dumps


def test_every_pod_reports_when_its_served_certificate_expires(api, core, deployed):
    """What the exporter cannot give (a string status): the sidecar's page
    carries the expiry of the certificate the server presents."""
    sidecar = pod_exec(api, NS, "sidecar")
    for pod in PODS:
        page = scrape(core, pod, 9105)
        served = sidecar.run(pod, ["bash", "-c", ". /opt/mariadb-k8s/common.sh; sql --ssl --skip-ssl-verify-server-cert "
                                   "-N -e \"SHOW STATUS LIKE 'Ssl_server_not_after'\" | cut -f2"]).strip()
        assert served.endswith("GMT"), (pod, served)  # a TLS session: a plain one's status is empty
        expires = metrics.value(page, "mariadb_tls_certificate_expiry_timestamp_seconds")
        assert expires == datetime.datetime.strptime(served, "%b %d %H:%M:%S %Y %Z").replace(
            tzinfo=datetime.timezone.utc).timestamp(), pod
        left = (expires - int(time.time())) // 86400
        assert metrics.value(page, "mariadb_tls_certificate_days_left") in (left, left + 1), pod  # a day may end between


def test_the_metrics_service_lists_every_pod_and_the_port_is_open(api, core, deployed):
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        NS, label_selector="kubernetes.io/service-name=mysql-metrics").items
    assert sorted(e.target_ref.name for s in slices for e in s.endpoints or []) == PODS
    assert {p.name: p.port for s in slices for p in s.ports} == {"metrics": 9104, "pod-metrics": 9105}
    rules = client.NetworkingV1Api(api).read_namespaced_network_policy("mysql", NS).spec.ingress
    assert [(r._from, [p.port for p in r.ports]) for r in rules if r.ports[0].port == 9104] == [(None, [9104, 9105])]
    pod = core.read_namespaced_pod("mysql-1", NS).spec
    exporter, sidecar = ([c for c in pod.containers if c.name == name][0] for name in ("exporter", "sidecar"))
    assert exporter.security_context.read_only_root_filesystem and pod.security_context.run_as_user == 999
    assert (exporter.security_context.run_as_user, sidecar.security_context.run_as_user) == (65534, None)


def test_the_exporters_account_can_only_monitor(api, deployed):
    """The exporter's own connection is nobody@localhost: it reads no table
    and writes nothing, not even on the writable primary; it holds no READ_ONLY
    ADMIN, so no write past a replica's fence either. Control: the local admin
    it connected as before writes on a read-only replica."""
    exporter = pod_exec(api, NS, "exporter")
    connect = ["mariadb", "--defaults-file=/etc/mysql/cluster-config/exporter.cnf", "-N", "-e"]
    assert exporter.run("mysql-1", connect + ["SELECT CURRENT_USER(), @@global.read_only"]).split() == ["nobody@localhost", "1"]
    assert exporter.run("mysql-1", connect + ["SHOW GRANTS"]).splitlines() == [
        "GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `nobody`@`localhost` IDENTIFIED VIA unix_socket"]
    for pod, statement in (("mysql-1", "SELECT COUNT(*) FROM mysql.global_priv"), ("mysql-0", "CREATE DATABASE exporter_wrote")):
        with pytest.raises(ExecError) as denied:
            exporter.run(pod, connect + [statement])
        assert "denied" in str(denied.value) and "user 'nobody'@'localhost'" in str(denied.value), statement
    admin = pod_exec(api, NS, "sidecar")
    local = ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql -N -e "$0"']
    admin.run("mysql-1", local + ["SET SESSION sql_log_bin = 0; CREATE DATABASE exporter_control; DROP DATABASE exporter_control"])


def uid(core, pod):
    found = core.list_namespaced_pod(NS, field_selector="metadata.name=" + pod).items
    return found[0].metadata.uid if found and not found[0].metadata.deletion_timestamp else None


def ready(core, pod):
    found = core.list_namespaced_pod(NS, field_selector="metadata.name=" + pod).items
    return bool(found) and any(c.type == "Ready" and c.status == "True" for c in found[0].status.conditions or [])


def evict(core, pod):
    """Raises ApiException when the API server refuses the eviction."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=NS))
    core.create_namespaced_pod_eviction(pod, NS, body, _preload_content=False)


def allows_one(api):
    """The disruption controller has seen the budget and every pod healthy."""
    budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("mysql", NS)
    status = budget.status
    return (status.observed_generation == budget.metadata.generation
            and status.current_healthy == 3 and status.disruptions_allowed == 1)


def test_the_budget_lets_one_pod_go_at_a_time(api, core, deployed):
    budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("mysql", NS).spec
    selector = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS).spec.selector.match_labels
    assert (budget.max_unavailable, budget.unhealthy_pod_eviction_policy) == (1, "AlwaysAllow")
    assert budget.selector.match_labels == selector
    wait_until("the budget allows one disruption", lambda: allows_one(api), timeout=180)
    first, second = uid(core, "mysql-2"), uid(core, "mysql-1")

    evict(core, "mysql-2")
    with pytest.raises(client.ApiException) as refused:
        evict(core, "mysql-1")
    body = refused.value.body
    assert refused.value.status == 429 and "disruption budget" in (body.decode() if isinstance(body, bytes) else body)
    wait_until("mysql-2 deleted by its eviction", lambda: uid(core, "mysql-2") != first, timeout=90, interval=0.5)
    assert uid(core, "mysql-1") == second

    wait_until("mysql-2 Ready again", lambda: uid(core, "mysql-2") not in (None, first) and ready(core, "mysql-2"))
    wait_until("the budget allows one disruption again", lambda: allows_one(api), timeout=180)
    evict(core, "mysql-1")
    wait_until("mysql-1 deleted by its eviction", lambda: uid(core, "mysql-1") != second, timeout=90, interval=0.5)
    wait_until("mysql-1 Ready again", lambda: uid(core, "mysql-1") not in (None, second) and ready(core, "mysql-1"))


def test_a_service_monitor_where_the_crd_exists_and_teardown_removes_it(api, core, deployed):
    with cluster_wide_change():  # no other module deploys while the CRD comes and goes
        extensions, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
        created = None
        if not extensions.list_custom_resource_definition(field_selector="metadata.name=" + CRD).items:
            created = extensions.create_custom_resource_definition(client.V1CustomResourceDefinition(
                metadata=client.V1ObjectMeta(name=CRD),
                spec=client.V1CustomResourceDefinitionSpec(
                    group="monitoring.coreos.com", scope="Namespaced",
                    names=client.V1CustomResourceDefinitionNames(plural="servicemonitors", singular="servicemonitor",
                                                                 kind="ServiceMonitor", list_kind="ServiceMonitorList"),
                    versions=[client.V1CustomResourceDefinitionVersion(
                        name="v1", served=True, storage=True,
                        schema=client.V1CustomResourceValidation(open_apiv3_schema=client.V1JSONSchemaProps(
                            type="object", x_kubernetes_preserve_unknown_fields=True)))])))
        try:
            wait_until("the CRD established", lambda: any(
                c.type == "Established" and c.status == "True"
                for c in extensions.read_custom_resource_definition(CRD).status.conditions or []), timeout=60)
            run_playbook("deploy.yml", BASE).check()
            monitor = custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "servicemonitors", "mysql")
            service = core.read_namespaced_service("mysql-metrics", NS).metadata.labels
            assert monitor["spec"]["selector"]["matchLabels"].items() <= service.items()
            assert monitor["spec"]["endpoints"] == [{"port": "metrics"}, {"port": "pod-metrics"}]
            run_playbook("teardown.yml", dict(BASE, delete_data=True)).check()
            listed = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "servicemonitors")["items"]
            assert listed == []
        finally:
            if created:
                extensions.delete_custom_resource_definition(CRD)
                wait_until("the CRD gone", lambda: not extensions.list_custom_resource_definition(
                    field_selector="metadata.name=" + CRD).items, timeout=60)
