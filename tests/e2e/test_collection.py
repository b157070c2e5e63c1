"""The collection on the real cluster, in one ordered story sharing one
deployment: deploy, data through every endpoint, idempotence, scale out,
canary upgrade 10.11 -> 11.8, scale in, teardown with and without data."""
import base64

import pytest
from kubernetes import client

from harness import image, pod_exec, run_playbook, sql, start_client, wait_until

NS = "mysql"
OLD, NEW = "10.11", "11.8"


@pytest.fixture(scope="module")
def deployed(api, core):
    run_playbook("teardown.yml", {"delete_data": True}).check()
    result = run_playbook("deploy.yml", {"version": OLD}).check()
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


def test_root_cannot_write_on_a_replica(runner):
    with pytest.raises(Exception, match="read-only|1290"):
        sql(runner, "mysql-1.mysql", "INSERT INTO shop.orders VALUES (9999, 'diverged')")


def test_clone_port_streams_nothing_without_the_token(runner):
    for probe in ("</dev/null", "<<<wrong-token"):
        received = runner.run("client", ["bash", "-c", "socat -T5 - TCP:mysql-1.mysql:3307 %s | wc -c" % probe])
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
    assert [peer.pod_selector.match_labels for peer in rules[3307]._from] == [{"app": "mysql"}]
    assert {"mariadb-client": "true"} in [peer.pod_selector.match_labels for peer in rules[3306]._from]


def test_secret_passwords_are_generated_and_not_in_output(core, deployed):
    secret = core.read_namespaced_secret("mysql-credentials", NS)
    values = [base64.b64decode(v).decode() for v in secret.data.values()]
    assert len(values) == 4 and all(len(v) == 32 for v in values)
    assert not any(v in deployed.output for v in values)


def test_redeploy_changes_nothing(deployed):
    assert run_playbook("deploy.yml", {"version": OLD}).check().changed == 0


def test_check_mode_previews_changes_without_making_them(api):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    preview = run_playbook("deploy.yml", {"version": OLD, "replicas": 5}, check=True).check()
    assert preview.changed > 0
    assert "mysql-2: replica" in preview.output  # the pods running now were checked
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before


def test_scale_out_to_five_clones_the_data(runner):
    result = run_playbook("deploy.yml", {"version": OLD, "replicas": 5}).check()
    assert "mysql-4: replica, server_id 104" in result.output
    expected = table_state(runner, "mysql-0.mysql")
    for host in ("mysql-3.mysql", "mysql-4.mysql"):
        assert table_state(runner, host) == expected


def server_versions(runner):
    return {pod: sql(runner, pod + ".mysql", "SELECT VERSION()") for pod in ("mysql-%d" % i for i in range(5))}


def test_canary_upgrade_moves_only_ordinals_from_the_partition(runner):
    result = run_playbook("upgrade.yml", {"version": NEW, "replicas": 5, "partition": 2}).check()
    versions = server_versions(runner)
    assert [p for p, v in sorted(versions.items()) if v.startswith(NEW + ".")] == ["mysql-2", "mysql-3", "mysql-4"]
    assert [p for p, v in sorted(versions.items()) if v.startswith(OLD + ".")] == ["mysql-0", "mysql-1"]
    assert "mysql-2: " + image(NEW) in result.output and "mysql-1: " + image(OLD) in result.output
    sql(runner, "mysql-primary", "INSERT INTO shop.orders VALUES (1001, 'during canary')")
    expected = table_state(runner, "mysql-0.mysql")
    for pod in ("mysql-2", "mysql-4"):
        wait_until("canary row on " + pod, lambda: table_state(runner, pod + ".mysql") == expected, timeout=30)


def test_partition_zero_completes_the_rollout(api, runner):
    run_playbook("upgrade.yml", {"version": NEW, "replicas": 5, "partition": 0}).check()
    assert all(v.startswith(NEW + ".") for v in server_versions(runner).values())

    # mariadb-upgrade ran on every pod for the new version and recorded it
    # (11.x names the file mariadb_upgrade_info, 10.11 mysql_upgrade_info).
    server = pod_exec(api, NS, "mariadb")
    for pod in ("mysql-%d" % i for i in range(5)):
        recorded = server.run(pod, ["bash", "-c", "cat /var/lib/mysql/mariadb_upgrade_info"])
        assert recorded.startswith(NEW + "."), "%s: system tables recorded for %r" % (pod, recorded)


def test_downgrade_is_refused_before_anything_changes(api):
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version
    result = run_playbook("deploy.yml", {"version": OLD, "replicas": 5})
    assert result.rc != 0
    assert "cannot be downgraded" in result.output
    assert apps.read_namespaced_stateful_set("mysql", NS).metadata.resource_version == before


def test_scale_in_keeps_the_volumes(core, runner):
    result = run_playbook("deploy.yml", {"version": NEW, "replicas": 3}).check()
    assert "Kept data-mysql-3, data-mysql-4" in result.output
    claims = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert {"data-mysql-3", "data-mysql-4"} <= claims


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
    run_playbook("teardown.yml", {"version": NEW}).check()
    kept = objects(core, api)
    assert kept["statefulsets"] == [] and kept["services"] == [] and kept["configmaps"] == []
    assert kept["secrets"] == ["mysql-credentials"]
    assert kept["claims"] == ["data-mysql-%d" % i for i in range(5)]
    run_playbook("teardown.yml", {"version": NEW}).check()  # twice is fine
    run_playbook("teardown.yml", {"version": NEW, "delete_data": True}).check()
    gone = objects(core, api)
    assert gone["secrets"] == [] and gone["claims"] == []
