"""render.yml's manifests (no cluster): the disruption budget and the metrics
exporter fit the StatefulSet they go with, and each switch removes its part."""
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def render(tmp_path_factory, inventory="cluster", **extra):
    out = tmp_path_factory.mktemp("manifests")
    subprocess.run([PLAYBOOK, "-i", "inventories/%s/hosts.yml" % inventory, "render.yml",
                    "-e", json.dumps(dict(extra, render_dir=str(out)))], cwd=ROOT, check=True, capture_output=True)
    manifests = {}
    for folder, _, files in os.walk(out):
        for name in files:
            with open(os.path.join(folder, name)) as handle:
                for doc in yaml.safe_load_all(handle):
                    manifests[(os.path.relpath(os.path.join(folder, name), out), doc["kind"], doc["metadata"]["name"])] = doc
    return manifests


def one(manifests, kind, name="mysql"):
    (doc,) = [d for (_, k, n), d in manifests.items() if (k, n) == (kind, name)]
    return doc


def containers(manifests):
    return {c["name"]: c for c in one(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"]}


def metrics_rules(manifests):
    return [r for r in one(manifests, "NetworkPolicy")["spec"]["ingress"] if r["ports"][0]["port"] == 9104]


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return render(tmp_path_factory)


@pytest.fixture(scope="module")
def switched_off(tmp_path_factory):
    return render(tmp_path_factory, mariadb_metrics=False, mariadb_pod_disruption_budget=False)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return render(tmp_path_factory, "local", mariadb_metrics_client_label={"app.kubernetes.io/name": "prometheus"},
                  mariadb_service_monitor_labels={"release": "kube-prometheus-stack"})


def test_the_budget_selects_the_statefulsets_pods(default):
    budget, statefulset = one(default, "PodDisruptionBudget"), one(default, "StatefulSet")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                              "selector": statefulset["spec"]["selector"]}


def test_the_exporter_reads_the_servers_socket_as_mysql(default):
    exporter, sidecar = containers(default)["exporter"], containers(default)["sidecar"]
    assert exporter["image"] == "docker.io/prom/mysqld-exporter:v0.15.1"
    assert exporter["command"] == ["/bin/mysqld_exporter"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9104}]
    assert exporter["securityContext"] == sidecar["securityContext"]
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True
    assert "readinessProbe" not in exporter and exporter["livenessProbe"]["httpGet"] == {"path": "/", "port": "metrics"}
    mounts = {m["name"]: m for m in exporter["volumeMounts"]}
    assert set(mounts) == {"config", "run"} and all(m["readOnly"] for m in mounts.values())
    # 0.14 reads the DSN, later versions the file: the same user and socket.
    (dsn,) = [e["value"] for e in exporter["env"] if e["name"] == "DATA_SOURCE_NAME"]
    (cnf,) = [a.split("=", 1)[1] for a in exporter["args"] if a.startswith("--config.my-cnf=")]
    assert os.path.dirname(cnf) == mounts["config"]["mountPath"]
    data = one(default, "ConfigMap")["data"]
    assert data[os.path.basename(cnf)].split("\n") == ["[client]", "user = mysql", "socket = /run/mysqld/mysqld.sock", ""]
    assert dsn == "mysql@unix(/run/mysqld/mysqld.sock)/"
    assert "socket = /run/mysqld/mysqld.sock" in data["server.cnf"]
    assert mounts["run"]["mountPath"] == "/run/mysqld"


def test_the_metrics_are_served_to_everyone_by_default(default):
    service, statefulset = one(default, "Service", "mysql-metrics"), one(default, "StatefulSet")
    assert service["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9104}]
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert metrics_rules(default) == [{"ports": [{"port": 9104, "protocol": "TCP"}]}]
    monitor = one(default, "ServiceMonitor")
    assert ("prometheus-operator/servicemonitor.yml", "ServiceMonitor", "mysql") in default
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics"}]


def test_switched_off_nothing_of_them_is_rendered(switched_off):
    kinds = {(kind, name) for _, kind, name in switched_off}
    assert not kinds & {("PodDisruptionBudget", "mysql"), ("Service", "mysql-metrics"), ("ServiceMonitor", "mysql")}
    assert "exporter" not in containers(switched_off)
    assert "exporter.cnf" not in one(switched_off, "ConfigMap")["data"]
    assert metrics_rules(switched_off) == []


def test_the_local_cluster_runs_debians_exporter_from_the_server_image(local):
    exporter, server = containers(local)["exporter"], containers(local)["mariadb"]
    assert exporter["image"] == server["image"] == "localhost/mariadb:10.11"
    assert exporter["command"] == ["/usr/bin/prometheus-mysqld-exporter"]
    assert exporter["imagePullPolicy"] == "Never"


def test_labels_narrow_the_scrapers_and_select_the_monitor(local):
    assert metrics_rules(local)[0]["from"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
    assert one(local, "ServiceMonitor")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
