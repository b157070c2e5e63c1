"""Credentials on the real cluster: a Secret the user brings, with passwords
full of characters that break naive quoting; no password in a long-running
process's environment; a changed password takes effect; a deleted Secret is
never replaced by new passwords the data does not know."""
import pytest
from kubernetes import client

from tests.harness import drop_namespaces, fresh_namespaces, pod_exec, run_playbook, sql, start_client, wait_until

NS = "credentials"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_autopilot": False}
PODS = ("mysql-0", "mysql-1")
NASTY = {
    "root-password": "r#o'o\"t \\ pw;--",
    "replication-password": "re#pl 'x' \"y\" \\z",
    "backup-password": "b#a\\ck 'u' p",
    "clone-token": "t#o k'e\"n\\ $(true)",
}


def secret_body(values):
    return client.V1Secret(metadata=client.V1ObjectMeta(name="mysql-credentials"), string_data=values)


@pytest.fixture(scope="module")
def cluster(api, core):
    fresh_namespaces(core, NS)
    if not core.list_namespace(field_selector="metadata.name=" + NS).items:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    core.create_namespaced_secret(NS, secret_body(NASTY))
    deployed = run_playbook("deploy.yml", dict(BASE, replicas=2)).check()
    yield deployed
    drop_namespaces(core, NS)


def test_a_users_secret_with_special_characters_works_end_to_end(api, core, cluster):
    # mysql-1 cloned mysql-0 with the clone token and replicates with the
    # replication password: deploy.yml verified both.
    assert "mysql-1: replica" in cluster.output and "IO Yes, SQL Yes" in cluster.output
    runner = start_client(core, api, NS)
    assert sql(runner, "mysql-primary", "SELECT CURRENT_USER()") == "root@%"
    assert not any(value in cluster.output for value in NASTY.values())


def test_no_password_in_a_long_running_process_environment(api):
    for container in ("mariadb", "sidecar"):
        for pod in PODS:
            environ = pod_exec(api, NS, container).run(pod, ["cat", "/proc/1/environ"])
            leaked = [key for key, value in NASTY.items() if value in environ]
            assert not leaked, "%s/%s: %s in /proc/1/environ" % (pod, container, leaked)


def test_pods_mount_no_service_account_token(api, core):
    for pod in PODS:
        assert core.read_namespaced_pod(pod, NS).spec.automount_service_account_token is False
        listing = pod_exec(api, NS, "mariadb").run(pod, ["bash", "-c", "ls /var/run/secrets/kubernetes.io 2>&1 || true"])
        assert "serviceaccount" not in listing


# Pieces of the passwords before and after the rotation below that SQL
# quoting leaves as they are: what a binary log holding them would show.
PASSWORD_PIECES = ("r#o", "re#pl ", "n3w #root ", 'n3w "repl" #')


def binary_log_text(api, pod):
    """Every local binary log of pod, decoded (rows as pseudo-SQL too)."""
    return pod_exec(api, NS, "mariadb").run(pod, ["bash", "-c", "mariadb-binlog --verbose /var/lib/mysql/mysql-bin.[0-9]*"],
                                            timeout=120)


def test_a_changed_password_takes_effect(api, core, cluster):
    changed = dict(NASTY, **{"root-password": "n3w #root 'pw' \\", "replication-password": "n3w \"repl\" #"})
    core.patch_namespaced_secret("mysql-credentials", NS, {"stringData": changed})
    result = run_playbook("deploy.yml", BASE).check()
    assert "mysql-1: replica" in result.output
    runner = start_client(core, api, NS)
    assert sql(runner, "mysql-primary", "SELECT CURRENT_USER()") == "root@%"
    # Each server set its own accounts: the replica's root takes the new password too.
    assert sql(runner, "mysql-1.mysql", "SELECT CURRENT_USER()") == "root@%"
    # No password, old or new, in any binary log (they reach every replica and the archive).
    for pod in PODS:
        text = binary_log_text(api, pod)
        assert "ALTER USER" not in text and not [p for p in PASSWORD_PIECES if p in text], pod
    # The control: the same search finds a statement the primary did log.
    sql(runner, "mysql-primary", "CREATE DATABASE IF NOT EXISTS probe; CREATE TABLE probe.t (note VARCHAR(40)); "
        "INSERT INTO probe.t VALUES ('n3w #root marker')")
    assert "n3w #root marker" in binary_log_text(api, "mysql-0") and "n3w #root marker" in binary_log_text(api, "mysql-1")
    # The replica reconnects with the new replication password after a restart.
    old = core.read_namespaced_pod("mysql-1", NS).metadata.uid
    core.delete_namespaced_pod("mysql-1", NS)
    wait_until("mysql-1 back", lambda: _ready(core, "mysql-1", old), timeout=300)
    run_playbook("verify.yml", BASE).check()
    again = run_playbook("deploy.yml", BASE).check()
    assert again.changed == 0, again.changed_tasks


def _ready(core, name, old_uid):
    try:
        pod = core.read_namespaced_pod(name, NS)
    except client.ApiException:
        return False
    return pod.metadata.uid != old_uid and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_a_deleted_secret_is_not_regenerated_while_data_exists(core, cluster):
    run_playbook("teardown.yml", BASE).check()
    core.delete_namespaced_secret("mysql-credentials", NS)
    result = run_playbook("deploy.yml", BASE)
    assert result.rc != 0
    message = " ".join(result.output.split())
    assert "The Secret mysql-credentials (mariadb_secret_name) is missing, but the data volumes data-mysql-0, data-mysql-1 exist" in message
    assert not core.list_namespaced_secret(NS, field_selector="metadata.name=mysql-credentials").items
