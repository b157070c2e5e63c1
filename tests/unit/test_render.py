"""render.yml's manifests (no cluster): the disruption budget and the metrics
exporter fit the StatefulSet they go with, and each switch removes its part."""
import json
import os
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def render_to(out, inventory="cluster", **extra):
    subprocess.run([PLAYBOOK, "-i", "inventories/%s/hosts.yml" % inventory, "render.yml",
                    "-e", json.dumps(dict(extra, render_dir=str(out)))], cwd=ROOT, check=True, capture_output=True)
    return {os.path.relpath(os.path.join(folder, name), out): os.path.join(folder, name)
            for folder, _, files in os.walk(out) for name in files}


def render(tmp_path_factory, inventory="cluster", **extra):
    """{(file, kind, name): document} of every manifest rendered (the
    kustomization aside)."""
    manifests = {}
    for relative, path in render_to(tmp_path_factory.mktemp("manifests"), inventory, **extra).items():
        if relative != "kustomization.yml":
            with open(path) as handle:
                for doc in yaml.safe_load_all(handle):
                    manifests[(relative, doc["kind"], doc["metadata"]["name"])] = doc
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
    return render(tmp_path_factory, mariadb_metrics=False, mariadb_pod_disruption_budget=False, mariadb_autopilot=False)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return render(tmp_path_factory, "local", mariadb_metrics_client_label={"app.kubernetes.io/name": "prometheus"},
                  mariadb_service_monitor_labels={"release": "kube-prometheus-stack"})


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def test_what_selects_the_database_pods_never_selects_the_autopilot_s(local):
    """Its pods once carried the database pods' labels: the read Service sent
    clients to them, and the disruption budget counted them."""
    database = one(local, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    autopilot = one(local, "Deployment", "mysql-autopilot")["spec"]["template"]["metadata"]["labels"]
    selectors = {"Service " + name: one(local, "Service", name)["spec"]["selector"]
                 for name in ("mysql", "mysql-read", "mysql-primary")}
    selectors["PodDisruptionBudget"] = one(local, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    selectors["NetworkPolicy"] = one(local, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    selectors["StatefulSet"] = one(local, "StatefulSet")["spec"]["selector"]["matchLabels"]
    assert [what for what, selector in selectors.items() if selects(selector, autopilot)] == []
    assert [what for what, selector in selectors.items()
            if not selects(selector, dict(database, **{"statefulset.kubernetes.io/pod-name": "mysql-0"}))] == []
    assert selects(one(local, "Deployment", "mysql-autopilot")["spec"]["selector"]["matchLabels"], autopilot)


def test_the_autopilot_is_rendered_by_default_with_the_hook_that_waits_for_it(default, switched_off):
    autopilot = one(default, "Deployment", "mysql-autopilot")["spec"]["template"]["spec"]
    assert autopilot["serviceAccountName"] == "mysql-autopilot"
    assert autopilot["containers"][0]["image"] == "docker.io/library/python:3.13.1-slim-bookworm"
    assert set(one(default, "ConfigMap", "mysql-autopilot")["data"]) >= {"autopilot_controller.py", "kube_api.py"}
    assert containers(default)["mariadb"]["lifecycle"]["preStop"]["exec"]["command"][-2:] == ["hand-over", "30"]
    assert not [key for key in switched_off if key[0].startswith("autopilot-")]
    assert "lifecycle" not in containers(switched_off)["mariadb"]


def test_the_autopilot_is_rendered_alike_from_the_default_and_from_the_record(default, tmp_path_factory):
    """The record holds failover_after as the float its spec declares: the
    next deploy must render the same Deployment as the first (idempotence)."""
    recorded = render(tmp_path_factory, mariadb_autopilot_failover_after=5.0)
    assert one(recorded, "Deployment", "mysql-autopilot") == one(default, "Deployment", "mysql-autopilot")


def test_semi_sync_waits_for_good_only_where_the_autopilot_can_fail_over(default, tmp_path_factory):
    """3 pods: a quorum without the primary exists. 2 pods: none does, so the
    timeout stays (the one replica's restart would stop every write)."""
    two = render(tmp_path_factory, mariadb_replicas=2)
    assert "rpl_semi_sync_master_timeout = 2147483647" in one(default, "ConfigMap")["data"]["server.cnf"]
    assert "rpl_semi_sync_master_timeout = 10000" in one(two, "ConfigMap")["data"]["server.cnf"]


def test_the_autopilots_code_runs_on_python_alone(local, tmp_path):
    """A stock python image is enough: the ConfigMap's modules import with
    no site-packages (neither the kubernetes client nor Ansible)."""
    package = tmp_path / "ansible_collections" / "mariadb_k8s" / "cluster" / "plugins" / "module_utils"
    package.mkdir(parents=True)
    for name, code in one(local, "ConfigMap", "mysql-autopilot")["data"].items():
        (package / name).write_text(code)
    started = subprocess.run(
        [sys.executable, "-S", "-c", "from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot_controller"],
        env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr


def test_the_budget_selects_the_statefulsets_pods(default):
    budget, statefulset = one(default, "PodDisruptionBudget"), one(default, "StatefulSet")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"] == {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                              "selector": statefulset["spec"]["selector"]}


def test_the_exporter_reads_the_servers_socket_as_nobody(default):
    exporter, sidecar = containers(default)["exporter"], containers(default)["sidecar"]
    assert exporter["image"] == "docker.io/prom/mysqld-exporter:v0.15.1"
    assert exporter["command"] == ["/bin/mysqld_exporter"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9104}]
    # The OS user nobody: unix_socket maps it to the monitoring-only account.
    assert exporter["securityContext"] == dict(sidecar["securityContext"], runAsUser=65534, runAsGroup=65534)
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True
    assert "readinessProbe" not in exporter and exporter["livenessProbe"]["httpGet"] == {"path": "/", "port": "metrics"}
    mounts = {m["name"]: m for m in exporter["volumeMounts"]}
    assert set(mounts) == {"config", "run"} and all(m["readOnly"] for m in mounts.values())
    # 0.14 reads the DSN, later versions the file: the same user and socket.
    (dsn,) = [e["value"] for e in exporter["env"] if e["name"] == "DATA_SOURCE_NAME"]
    (cnf,) = [a.split("=", 1)[1] for a in exporter["args"] if a.startswith("--config.my-cnf=")]
    assert os.path.dirname(cnf) == mounts["config"]["mountPath"]
    data = one(default, "ConfigMap")["data"]
    assert data[os.path.basename(cnf)].split("\n") == ["[client]", "user = nobody", "socket = /run/mysqld/mysqld.sock", ""]
    assert dsn == "nobody@unix(/run/mysqld/mysqld.sock)/"
    assert "socket = /run/mysqld/mysqld.sock" in data["server.cnf"]
    assert mounts["run"]["mountPath"] == "/run/mysqld"


def test_the_metrics_are_served_to_everyone_by_default(default):
    service, statefulset = one(default, "Service", "mysql-metrics"), one(default, "StatefulSet")
    assert service["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9104}, {"name": "pod-metrics", "port": 9105}]
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert metrics_rules(default) == [{"ports": [{"port": 9104, "protocol": "TCP"}, {"port": 9105, "protocol": "TCP"}]}]
    sidecar = containers(default)["sidecar"]
    assert {"name": "pod-metrics", "containerPort": 9105} in sidecar["ports"]
    assert {"name": "METRICS_PORT", "value": "9105"} in sidecar["env"]
    monitor = one(default, "ServiceMonitor")
    assert ("prometheus-operator/servicemonitor.yml", "ServiceMonitor", "mysql") in default
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics"}, {"port": "pod-metrics"}]


def test_switched_off_nothing_of_them_is_rendered(switched_off):
    kinds = {(kind, name) for _, kind, name in switched_off}
    assert not kinds & {("PodDisruptionBudget", "mysql"), ("Service", "mysql-metrics"), ("ServiceMonitor", "mysql")}
    assert "exporter" not in containers(switched_off)
    assert "exporter.cnf" not in one(switched_off, "ConfigMap")["data"]
    assert metrics_rules(switched_off) == []
    sidecar = containers(switched_off)["sidecar"]
    assert [p["containerPort"] for p in sidecar["ports"]] == [3307] and "METRICS_PORT" not in str(sidecar["env"])


def test_the_local_cluster_runs_debians_exporter_from_the_server_image(local):
    exporter, server = containers(local)["exporter"], containers(local)["mariadb"]
    assert exporter["image"] == server["image"] == "localhost/mariadb:10.11"
    assert exporter["command"] == ["/usr/bin/prometheus-mysqld-exporter"]
    assert exporter["imagePullPolicy"] == "Never"


def test_labels_narrow_the_scrapers_and_select_the_monitor(local):
    assert metrics_rules(local)[0]["from"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
    assert one(local, "ServiceMonitor")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_two_renders_of_the_same_inputs_are_byte_identical(tmp_path):
    first, second = render_to(tmp_path / "first"), render_to(tmp_path / "second")
    assert sorted(first) == sorted(second)
    for relative in first:
        with open(first[relative], "rb") as one_file, open(second[relative], "rb") as other:
            assert one_file.read() == other.read(), relative


def test_the_kustomization_applies_every_manifest_namespace_first(tmp_path):
    rendered = render_to(tmp_path / "out")
    with open(rendered["kustomization.yml"]) as handle:
        kustomization = yaml.safe_load(handle)
    assert kustomization["kind"] == "Kustomization" and kustomization["resources"][0] == "namespace.yml"
    # The ServiceMonitor's folder is the user's to add: the kind exists only with the Prometheus Operator.
    assert sorted(kustomization["resources"]) == sorted(r for r in rendered if "/" not in r and r != "kustomization.yml")


# The Kubernetes the local cluster runs (scripts/lib/versions.sh).
KUBERNETES = "1.34.0"


@pytest.mark.parametrize("variant", ["default", "switched_off", "local"])
def test_every_manifest_is_valid_for_kubernetes(request, variant):
    manifests = request.getfixturevalue(variant)
    kinds = set()
    for (relative, kind, name), doc in manifests.items():
        if kind == "ServiceMonitor":
            continue  # the Prometheus Operator's kind: not in Kubernetes' schema
        kinds.add(kind)
        # strict: a field Kubernetes does not know is an error, not dropped.
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    assert {"Namespace", "ConfigMap", "Service", "StatefulSet"} <= kinds
