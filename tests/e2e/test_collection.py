"""The collection on the real cluster: the README's "Using the playbooks"
commands, exactly as written and in order, sharing one deployment, with the
pods and their images checked after each and the data checked along the way."""
import base64
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
from kubernetes import client

from tests.harness import PODS, ROOT, SELECTOR, Playbook, fresh_namespaces, image, pod_exec, readme_commands, run_playbook, \
    run_readme_command, sql, start_client, wait_until

NS = "mysql"
# Each test builds on the ones before it (conftest.py).
STEPS = True
OLD, NEW = "10.11", "11.8"
RAN = []


def readme(command):
    result = run_readme_command(command).check()
    RAN.append(command)
    return result


def pod_images(core):
    """{pod: image of its server container} for the cluster's pods."""
    pods = core.list_namespaced_pod(NS, label_selector=PODS).items
    return {p.metadata.name: [c.image for c in p.spec.containers if c.name == "mariadb"][0] for p in pods}


def expect_pods(core, *versions):
    """Exactly len(versions) pods, mysql-N running the image of versions[N]."""
    expected = {"mysql-%d" % i: image(v) for i, v in enumerate(versions)}
    wait_until("pods %s" % expected, lambda: pod_images(core) == expected, timeout=120, interval=1)


@pytest.fixture(scope="module")
def deployed(api, core):
    fresh_namespaces(core, NS)
    result = readme("ansible-playbook deploy.yml")
    expect_pods(core, OLD, OLD, OLD)
    yield result


@pytest.fixture(scope="module")
def runner(api, core, deployed):
    yield start_client(core, api, NS)
    core.delete_namespaced_pod("client", NS, grace_period_seconds=0)


def table_state(runner, host):
    return sql(runner, host, "SELECT COUNT(*) FROM shop.orders; CHECKSUM TABLE shop.orders").split()


def test_deploy_reports_every_pod_replicating(deployed):
    assert "mysql-2: replica, server_id 102" in deployed.output
    assert "IO Yes, SQL Yes" in deployed.output


def test_rows_written_through_primary_are_read_everywhere(runner):
    sql(runner, "mysql-primary", "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40));"
        "INSERT INTO shop.orders SELECT seq, CONCAT('item ', seq) FROM shop.seq_1_to_500")
    expected = table_state(runner, "mysql-0.mysql")
    assert expected[0] == "500"
    for host in ("mysql-read", "mysql-1.mysql", "mysql-2.mysql"):
        wait_until("rows on " + host, lambda: table_state(runner, host) == expected, timeout=30, interval=0.5)


def test_commits_are_durable_by_default(runner):
    settings = sql(runner, "mysql-0.mysql", "SELECT @@sync_binlog, @@innodb_flush_log_at_trx_commit")
    assert settings.split() == ["1", "1"]


def test_root_cannot_write_on_a_replica(runner):
    with pytest.raises(Exception, match="read-only|1290"):
        sql(runner, "mysql-1.mysql", "INSERT INTO shop.orders VALUES (9999, 'diverged')")


def test_clone_port_streams_nothing_without_the_token(api, deployed):
    # From a peer pod: the NetworkPolicy refuses the client pod on this port
    # (test_network_policy.py), which would make this test pass unexamined.
    # Over TLS, as the clones connect, so that what arrives is the donor's answer.
    peer = pod_exec(api, NS, "sidecar")
    for probe in ("</dev/null", "<<<wrong-token"):
        received = peer.run("mysql-0", ["bash", "-c", '. /opt/mariadb-k8s/common.sh; socat -T5 - '
                                        '"$(clone_connect_address mysql-1.mysql)" %s | wc -c' % probe])
        assert received.strip() == "0", "the clone port sent %s bytes to a peer without the token" % received.strip()


def test_containers_run_as_mysql_without_privileges(api):
    for container in ("mariadb", "sidecar"):
        status = pod_exec(api, NS, container).run("mysql-1", ["bash", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"])
        uid, cap_eff, no_new_privs = status.split("\n")[:3]
        assert uid == "999"
        assert cap_eff.split()[1] == "0000000000000000"
        assert no_new_privs.split()[1] == "1"


def test_network_policy_limits_the_clone_port_to_the_cluster(api):
    policy = client.NetworkingV1Api(api).read_namespaced_network_policy("mysql", NS)
    rules = {rule.ports[0].port: rule for rule in policy.spec.ingress}
    # The cluster's pods, and its backup Jobs (which ask a replica for a backup).
    assert [peer.pod_selector.match_labels for peer in rules[3307]._from] == [
        SELECTOR, dict(SELECTOR, **{"app.kubernetes.io/name": "mariadb-backup"})]
    assert {"mariadb-client": "true"} in [peer.pod_selector.match_labels for peer in rules[3306]._from]


def test_secret_passwords_are_generated_and_not_in_output(core, deployed):
    secret = core.read_namespaced_secret("mysql-credentials", NS)
    values = [base64.b64decode(v).decode() for v in secret.data.values()]
    assert len(values) == 4 and all(len(v) == 32 for v in values)
    assert not any(v in deployed.output for v in values)


def test_redeploy_changes_nothing(core, deployed):
    again = readme("ansible-playbook deploy.yml")
    assert again.changed == 0, again.changed_tasks
    expect_pods(core, OLD, OLD, OLD)


def test_check_mode_previews_changes_without_making_them(api, core):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    preview = readme("ansible-playbook deploy.yml --check -e replicas=5")
    assert preview.changed > 0
    assert "mysql-2: replica" in preview.output  # the pods running now were checked
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before
    expect_pods(core, OLD, OLD, OLD)


def test_scale_out_to_five_clones_the_data(core, runner):
    result = readme("ansible-playbook deploy.yml -e replicas=5")
    assert "mysql-4: replica, server_id 104" in result.output
    expect_pods(core, OLD, OLD, OLD, OLD, OLD)
    expected = table_state(runner, "mysql-0.mysql")
    for host in ("mysql-3.mysql", "mysql-4.mysql"):
        assert table_state(runner, host) == expected


def server_versions(runner):
    return {pod: sql(runner, pod + ".mysql", "SELECT VERSION()") for pod in ("mysql-%d" % i for i in range(5))}


def test_canary_upgrade_moves_only_ordinals_from_the_partition(core, runner):
    result = readme("ansible-playbook upgrade.yml -e version=11.8 -e partition=2")
    expect_pods(core, OLD, OLD, NEW, NEW, NEW)
    versions = server_versions(runner)
    assert [p for p, v in sorted(versions.items()) if v.startswith(NEW + ".")] == ["mysql-2", "mysql-3", "mysql-4"]
    assert [p for p, v in sorted(versions.items()) if v.startswith(OLD + ".")] == ["mysql-0", "mysql-1"]
    assert "mysql-2: " + image(NEW) in result.output and "mysql-1: " + image(OLD) in result.output
    sql(runner, "mysql-primary", "INSERT INTO shop.orders VALUES (1001, 'during canary')")
    expected = table_state(runner, "mysql-0.mysql")
    for pod in ("mysql-2", "mysql-4"):
        wait_until("canary row on " + pod, lambda: table_state(runner, pod + ".mysql") == expected, timeout=30)


def test_a_plain_deploy_keeps_what_runs(api, core):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    again = readme("ansible-playbook deploy.yml")
    assert again.changed == 0, again.changed_tasks
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before
    expect_pods(core, OLD, OLD, NEW, NEW, NEW)


def primary(core):
    return core.read_namespaced_config_map("mysql-topology", NS).data["primary"]


def test_partition_zero_completes_the_rollout(api, core, runner):
    result = readme("ansible-playbook upgrade.yml -e partition=0")
    expect_pods(core, NEW, NEW, NEW, NEW, NEW)
    # The primary's pod last: mysql-1 first, then the switchover to it.
    out = result.output
    assert out.index("Apply the StatefulSet (partition 1)") < out.index("fenced mysql-0") < out.index(
        "Apply the StatefulSet (partition 0)"), out[-4000:]
    assert primary(core) == "mysql-1"
    assert all(v.startswith(NEW + ".") for v in server_versions(runner).values())

    # mariadb-upgrade ran on every pod for the new version and recorded it
    # (11.x names the file mariadb_upgrade_info, 10.11 mysql_upgrade_info).
    server = pod_exec(api, NS, "mariadb")
    for pod in ("mysql-%d" % i for i in range(5)):
        recorded = server.run(pod, ["bash", "-c", "cat /var/lib/mysql/mariadb_upgrade_info"])
        assert recorded.startswith(NEW + "."), "%s: system tables recorded for %r" % (pod, recorded)


def test_switchover_moves_the_primary_back(core, runner):
    readme("ansible-playbook switchover.yml -e primary=mysql-0")
    assert primary(core) == "mysql-0"
    assert core.read_namespaced_service("mysql-primary", NS).spec.selector["statefulset.kubernetes.io/pod-name"] == "mysql-0"
    sql(runner, "mysql-primary", "INSERT INTO shop.orders VALUES (1002, 'after switchover')")
    assert sql(runner, "mysql-0.mysql", "SELECT item FROM shop.orders WHERE id = 1002") == "after switchover"
    expect_pods(core, NEW, NEW, NEW, NEW, NEW)


def test_downgrade_is_refused_before_anything_changes(api):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    result = run_playbook("deploy.yml", {"version": OLD})
    assert result.rc != 0
    assert "cannot be downgraded" in result.output
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before


def test_verify_alone(core):
    assert "mysql-4: replica" in readme("ansible-playbook verify.yml").output
    expect_pods(core, NEW, NEW, NEW, NEW, NEW)


def test_rebuild_reclones_the_last_replica(core, runner):
    old_claim = core.read_namespaced_persistent_volume_claim("data-mysql-4", NS).metadata.uid
    readme("ansible-playbook rebuild.yml -e pod=mysql-4")
    assert core.read_namespaced_persistent_volume_claim("data-mysql-4", NS).metadata.uid != old_claim
    assert "cloning from mysql-3" in core.read_namespaced_pod_log("mysql-4", NS, container="clone")
    expect_pods(core, NEW, NEW, NEW, NEW, NEW)
    assert table_state(runner, "mysql-4.mysql") == table_state(runner, "mysql-0.mysql")


def test_scale_in_names_the_pods_and_keeps_the_volumes(core):
    result = readme("ansible-playbook deploy.yml -e replicas=3")
    assert "Scaling in from 5 to 3 pods: removing mysql-3, mysql-4" in " ".join(result.output.split())
    assert "Kept data-mysql-3, data-mysql-4" in result.output
    expect_pods(core, NEW, NEW, NEW)
    claims = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert {"data-mysql-3", "data-mysql-4"} <= claims


def test_render_writes_the_manifests(core):
    out = os.path.join(ROOT, "manifests")
    shutil.rmtree(out, ignore_errors=True)
    try:
        readme("ansible-playbook render.yml -e render_dir=manifests")
        assert {"namespace.yml", "statefulset.yml", "topology.yml"} <= set(os.listdir(out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    expect_pods(core, NEW, NEW, NEW)


def users_playbook():
    """The own-playbook example of the README's quick start, word for word."""
    with open(os.path.join(ROOT, "README.md")) as handle:
        section = handle.read().split("## Quick start", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def packed(name, out):
    """An artifact of the installed collection name (the copy in the pinned
    `ansible` package: Galaxy is not reachable here), as Galaxy serves one.
    That copy lacks a few files its FILES.json lists (pip left them out)."""
    source = list(importlib.import_module("ansible_collections." + name).__path__)[0]
    with open(os.path.join(source, "FILES.json")) as handle:
        listing = json.load(handle)
    listing["files"] = [f for f in listing["files"] if os.path.exists(os.path.join(source, f["name"]))]
    path = os.path.join(out, name.replace(".", "-") + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(listing).encode()
        info = tarfile.TarInfo("FILES.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(os.path.join(source, "MANIFEST.json"), arcname="MANIFEST.json")
        for entry in listing["files"]:
            if entry["name"] != ".":
                tar.add(os.path.join(source, entry["name"]), arcname=entry["name"], recursive=False)
    return path


def test_the_built_collection_installs_with_its_dependencies_and_runs_a_users_playbook(core, tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), ROOT], check=True, capture_output=True)
    (artifact,) = tmp_path.glob("mariadb_k8s-cluster-*.tar.gz")
    with tarfile.open(artifact) as tar:
        declared = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]["dependencies"]
    # Only what the collection sees in its own path: no copy of this
    # repository, none of the `ansible` package's collections.
    installed = tmp_path / "collections"
    alone = {"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}
    install = [galaxy, "collection", "install", "--offline", "-p", str(installed), str(artifact)]
    without = Playbook(install, env=alone, cwd=str(tmp_path))
    assert without.rc != 0 and "dependency of mariadb_k8s.cluster" in without.output
    Playbook(install + [packed(name, str(tmp_path)) for name in declared], env=alone, cwd=str(tmp_path)).check()
    (tmp_path / "site.yml").write_text(users_playbook())
    # --diff: a change shows what the installed copy rendered differently.
    result = Playbook(["ansible-playbook", "--diff", "site.yml"], env=alone, cwd=str(tmp_path)).check()
    assert result.changed == 0, (result.changed_tasks, result.output[:12000])
    assert "mysql-2: replica" in result.output and "IO Yes, SQL Yes" in result.output
    assert str(installed / "ansible_collections" / "mariadb_k8s" / "cluster" / "roles") in result.output
    assert os.path.join(ROOT, ".venv", "collections") not in result.output
    expect_pods(core, NEW, NEW, NEW)


def objects(core, api):
    apps = client.AppsV1Api(api)
    return {
        "statefulsets": [s.metadata.name for s in apps.list_namespaced_stateful_set(NS).items],
        "services": sorted(s.metadata.name for s in core.list_namespaced_service(NS).items),
        "configmaps": sorted(c.metadata.name for c in core.list_namespaced_config_map(NS).items
                             if c.metadata.name.startswith("mysql")),
        "secrets": [s.metadata.name for s in core.list_namespaced_secret(NS).items],
        "claims": sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NS).items),
    }


def test_teardown_keeps_data_unless_asked(api, core, runner):
    readme("ansible-playbook teardown.yml")
    kept = objects(core, api)
    assert kept["statefulsets"] == [] and kept["services"] == [] and kept["configmaps"] == ["mysql-topology"]
    assert kept["secrets"] == ["mysql-credentials", "mysql-tls", "mysql-tls-ca"]
    assert kept["claims"] == ["data-mysql-%d" % i for i in range(5)]
    expect_pods(core)
    readme("ansible-playbook teardown.yml")  # twice is fine
    readme("ansible-playbook teardown.yml -e delete_data=true")
    gone = objects(core, api)
    assert gone["secrets"] == [] and gone["claims"] == [] and gone["configmaps"] == []


def test_every_readme_command_ran_in_order():
    commands = readme_commands()
    ran = iter(RAN)
    assert all(command in ran for command in commands), "README commands %s, ran %s" % (commands, RAN)
