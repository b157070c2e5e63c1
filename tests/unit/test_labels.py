"""Labels and selectors, without a cluster: every selector of the rendered
manifests selects by name, instance and managed-by, never by the tutorial's
app label; applied over an older release's objects, the app key leaves them;
the migration's patches keep what ran in a form that reads back."""
import copy
import json
import subprocess

import pytest
import yaml
from ansible_collections.kubernetes.core.plugins.module_utils.apply import LAST_APPLIED_CONFIG_ANNOTATION, apply_patch

from fake_api import merge
from test_render import PLAYBOOK, ROOT, one, render

SELECTOR = {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mysql",
            "app.kubernetes.io/managed-by": "mariadb_k8s.cluster"}
LABELS = dict(SELECTOR, **{"app.kubernetes.io/component": "database"})
# The autopilot's pods are no database pods (roles/autopilot/vars/main.yml).
AUTOPILOT = dict(SELECTOR, **{"app.kubernetes.io/name": "mariadb-autopilot", "app.kubernetes.io/component": "autopilot"})


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return render(tmp_path_factory)


def selectors(doc, path=""):
    """(path, labels) of every label selector in doc. A peer with a
    namespaceSelector admits the user's labelled clients, not the cluster's
    pods: left out."""
    if isinstance(doc, list):
        for index, item in enumerate(doc):
            yield from selectors(item, "%s[%d]" % (path, index))
    elif isinstance(doc, dict) and "namespaceSelector" not in doc:
        for key, value in doc.items():
            if key in ("selector", "podSelector", "labelSelector"):
                yield path + "." + key, value.get("matchLabels", value)
            else:
                yield from selectors(value, path + "." + key)


def every_selector(manifests):
    return {(kind, name, where): labels for (_, kind, name), doc in manifests.items() for where, labels in selectors(doc)}


def test_every_selector_selects_by_name_instance_and_managed_by(manifests):
    found = every_selector(manifests)
    assert {(kind, name) for kind, name, _ in found} == {
        ("StatefulSet", "mysql"), ("Service", "mysql"), ("Service", "mysql-read"), ("Service", "mysql-primary"),
        ("Service", "mysql-metrics"), ("NetworkPolicy", "mysql"), ("PodDisruptionBudget", "mysql"), ("ServiceMonitor", "mysql"),
        ("Deployment", "mysql-autopilot")}
    assert len(found) == 13, sorted(found)  # the anti-affinity and the policy's three peers too
    # The autopilot's Deployment selects its own pods, by labels of their own.
    assert found.pop(("Deployment", "mysql-autopilot", ".spec.selector")) == AUTOPILOT
    # The backup Jobs reach the clone port; nothing else selects them.
    backup_jobs = {place: labels for place, labels in found.items() if labels.get("app.kubernetes.io/name") == "mariadb-backup"}
    assert list(backup_jobs.values()) == [dict(SELECTOR, **{"app.kubernetes.io/name": "mariadb-backup"})]
    assert [kind for kind, _, _ in backup_jobs] == ["NetworkPolicy"]
    for place in backup_jobs:
        del found[place]
    for place, labels in found.items():
        assert "app" not in labels and labels.items() >= SELECTOR.items(), place
    extra = {place: {k: v for k, v in labels.items() if k not in SELECTOR} for place, labels in found.items()}
    assert {place: keys for place, keys in extra.items() if keys} == {
        ("Service", "mysql-primary", ".spec.selector"): {"statefulset.kubernetes.io/pod-name": "mysql-0"},
        ("ServiceMonitor", "mysql", ".spec.selector"): {"app.kubernetes.io/component": "metrics"}}


def test_every_object_carries_the_recommended_labels(manifests):
    statefulset = one(manifests, "StatefulSet")
    labelled = [(kind, name, doc["metadata"].get("labels")) for (_, kind, name), doc in manifests.items() if kind != "Namespace"]
    labelled += [("pod template", "mysql", statefulset["spec"]["template"]["metadata"]["labels"])]
    labelled += [("volume claim", t["metadata"]["name"], t["metadata"]["labels"]) for t in statefulset["spec"]["volumeClaimTemplates"]]
    for kind, name, labels in labelled:
        component = "metrics" if (kind, name) in {("Service", "mysql-metrics"), ("ServiceMonitor", "mysql")} else "database"
        expected = AUTOPILOT if (kind, name) == ("Deployment", "mysql-autopilot") else dict(
            SELECTOR, **{"app.kubernetes.io/component": component})
        assert labels == expected, (kind, name)


def older(doc):
    """doc as the release before labelled and selected it: app=mysql in place of
    the app.kubernetes.io labels."""
    if isinstance(doc, list):
        return [older(item) for item in doc]
    if not isinstance(doc, dict):
        return doc
    if doc.items() >= SELECTOR.items():
        return dict({k: v for k, v in doc.items() if not k.startswith("app.kubernetes.io/")}, app="mysql")
    return {key: older(value) for key, value in doc.items()}


@pytest.mark.parametrize("kind,name", [("Service", "mysql"), ("Service", "mysql-read"), ("Service", "mysql-primary"),
                                       ("Service", "mysql-metrics"), ("NetworkPolicy", "mysql"), ("PodDisruptionBudget", "mysql")])
def test_applied_over_the_older_release_the_app_key_leaves_selectors_and_labels(manifests, kind, name):
    new = one(manifests, kind, name)
    live = older(new)
    live["metadata"]["annotations"] = {LAST_APPLIED_CONFIG_ANNOTATION: json.dumps(older(new))}
    assert any(labels == {"app": "mysql"} for _, labels in selectors(live)) or kind == "Service" and name == "mysql-primary"
    _, patch = apply_patch(live, copy.deepcopy(new))
    applied = merge(live, patch)  # RFC 7386, as the API server applies kubernetes.core's apply patch
    assert list(selectors(applied)) == list(selectors(new))
    assert applied["metadata"]["labels"] == new["metadata"]["labels"]


def migration_patches(tmp_path, release):
    """labels.yml.j2 rendered for a running cluster of 2 pods and 3 data volumes."""
    running = {"replicas": 2, "image": "docker.io/library/mariadb:10.11", "selector": {"app": "mysql"}, "rollout_incomplete": False}
    out = tmp_path / "patches.yml"
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars": {"mariadb_offline": True},
        "roles": ["mariadb_k8s.cluster.mariadb"],
        "tasks": [{"ansible.builtin.copy": {
            "dest": str(out), "mode": "0644",
            "content": "{{ lookup('ansible.builtin.template', '%s/roles/statefulset/templates/labels.yml.j2') }}" % ROOT},
            "vars": {"mariadb_running": running, "__statefulset_release": release,
                     "mariadb_claims": [{"metadata": {"name": "data-mysql-%d" % i}} for i in range(3)]}}]}]))
    subprocess.run([PLAYBOOK, "-i", "inventories/cluster/hosts.yml", str(playbook)], cwd=ROOT, check=True, capture_output=True)
    return running, [doc for doc in yaml.safe_load_all(out.read_text()) if doc]


def test_the_pods_keep_the_old_label_until_their_statefulset_is_replaced(tmp_path):
    _, patches = migration_patches(tmp_path, release=False)
    assert [(p["kind"], p["metadata"]["name"], p["metadata"]["labels"]) for p in patches] == [
        ("Pod", "mysql-0", LABELS), ("Pod", "mysql-1", LABELS)]


def test_the_replacement_drops_the_old_label_and_keeps_what_ran_on_the_record(tmp_path):
    running, patches = migration_patches(tmp_path, release=True)
    released = dict(LABELS, app=None)
    assert [(p["kind"], p["metadata"]["name"], p["metadata"]["labels"]) for p in patches] == [
        ("Pod", "mysql-0", released), ("Pod", "mysql-1", released), ("PersistentVolumeClaim", "data-mysql-0", released),
        ("PersistentVolumeClaim", "data-mysql-1", released), ("PersistentVolumeClaim", "data-mysql-2", released),
        ("ConfigMap", "mysql-topology", released)]
    assert json.loads(patches[-1]["metadata"]["annotations"]["mariadb-k8s/replaced-statefulset"]) == running
