"""The replication check's logic, on output captured from real MariaDB servers."""
import datetime

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import replication
from captured import names, read as fixture


def primary_fixtures():
    return names("-mysql-0.txt")


def replica_fixtures():
    return names("-mysql-1.txt")


def test_fixtures_cover_both_engine_versions():
    versions = {name.split("-")[1] for name in primary_fixtures() + replica_fixtures()}
    assert versions == {"10.11", "11.8"}


@pytest.mark.parametrize("name", primary_fixtures())
def test_primary_state(name):
    state = replication.pod_state(fixture(name))
    assert state["server_id"] == 100
    assert state["read_only"] is False
    assert state["replicating"] is False
    assert state["io_running"] is None
    assert replication.problems("mysql-0", state, True, "mysql-0.mysql") == []


@pytest.mark.parametrize("name", replica_fixtures())
def test_healthy_replica_state(name):
    state = replication.pod_state(fixture(name))
    assert state["server_id"] == 101
    assert state["read_only"] is True
    assert state["replicating"] is True
    assert (state["io_running"], state["sql_running"]) == ("Yes", "Yes")
    assert state["primary_host"] == "mysql-0.mysql"
    assert state["using_gtid"] == "Slave_Pos"
    assert state["seconds_behind_primary"] == 0
    assert state["gtid_slave_pos"] and state["gtid_slave_pos"].startswith("0-100-")
    assert state["version"].startswith(name.split("-")[1] + ".")
    assert replication.problems("mysql-1", state, False, "mysql-0.mysql") == []


def test_replica_with_wrong_password_is_reported_with_its_error():
    state = replication.pod_state(fixture("status-10.11-replica-auth-error.txt"))
    assert state["io_running"] == "Connecting"
    assert state["seconds_behind_primary"] is None
    [problem] = replication.problems("mysql-2", state, False, "mysql-0.mysql")
    assert problem.startswith("mysql-2: IO thread Connecting: error connecting to master")
    assert "Access denied for user 'repl'" in problem


def test_primary_that_is_read_only_or_replicating_is_reported():
    state = replication.pod_state(fixture("status-10.11-mysql-1.txt"))
    assert replication.problems("mysql-0", state, True, "mysql-0.mysql") == [
        "mysql-0: the primary is read-only",
        "mysql-0: the primary is configured as a replica of mysql-0.mysql",
    ]


def test_replica_problems_wrong_primary_lag_and_writable():
    state = replication.pod_state(fixture("status-10.11-mysql-1.txt"))
    state.update(read_only=False, primary_host="mysql-1.mysql", seconds_behind_primary=42)
    assert replication.problems("mysql-2", state, False, "mysql-0.mysql", max_lag=10) == [
        "mysql-2: the replica is not read-only",
        "mysql-2: replicates from mysql-1.mysql instead of mysql-0.mysql",
        "mysql-2: lag 42s exceeds 10s",
    ]


def test_unconfigured_replica():
    state = replication.pod_state(fixture("status-10.11-mysql-0.txt"))
    state["read_only"] = True
    assert replication.problems("mysql-3", state, False, "mysql-0.mysql") == [
        "mysql-3: replication is not configured"
    ]


def test_multiline_values_are_joined():
    rows = replication.parse_vertical(
        "*************************** 1. row ***************************\n"
        "  Last_SQL_Error: Error 'Duplicate entry'\n"
        "on query. Default database: 'test'\n"
        "  Using_Gtid: Slave_Pos\n"
    )
    assert rows == [{"Last_SQL_Error": "Error 'Duplicate entry'\non query. Default database: 'test'",
                     "Using_Gtid": "Slave_Pos"}]


def test_output_without_server_variables_is_an_error():
    with pytest.raises(ValueError):
        replication.pod_state("ERROR 2002 (HY000): Can't connect to local server")


def test_sentinel_sql_and_detection():
    sql = replication.sentinel_write_sql("5c8e0f7e-5d1b")
    assert "REPLACE INTO mariadb_k8s.sentinel VALUES (1, '5c8e0f7e-5d1b', NOW(6))" in sql
    assert replication.sentinel_seen("5c8e0f7e-5d1b\n", "5c8e0f7e-5d1b")
    assert not replication.sentinel_seen("older-token\n", "5c8e0f7e-5d1b")


def test_sentinel_token_cannot_inject_sql():
    with pytest.raises(ValueError):
        replication.sentinel_write_sql("x'); DROP DATABASE test; --")


# status-11.8-replica-reconnecting.txt is status-11.8-mysql-1.txt with the IO
# thread fields a replica showed on the real cluster right after its primary
# restarted (errno 2003, "Connection refused").
def test_reconnecting_replica_is_a_problem_unless_allowed():
    state = replication.pod_state(fixture("status-11.8-replica-reconnecting.txt"))
    assert replication.reconnecting(state) and state["last_io_errno"] == 2003
    assert replication.problems("mysql-1", state, False, "mysql-0.mysql", allow_reconnecting=True) == []
    [problem] = replication.problems("mysql-1", state, False, "mysql-0.mysql")
    assert problem.startswith("mysql-1: IO thread Connecting: error reconnecting") and "Connection refused" in problem


def test_refused_credentials_are_never_only_reconnecting():
    state = replication.pod_state(fixture("status-10.11-replica-auth-error.txt"))
    assert not replication.reconnecting(state)
    assert replication.problems("mysql-1", state, False, "mysql-0.mysql", allow_reconnecting=True)


def test_a_replica_without_verified_tls_is_a_problem_only_when_tls_is_required():
    text = fixture("status-11.8-mysql-1.txt")
    plain = replication.pod_state(text)
    assert (plain["tls"], plain["tls_verified"]) == (False, False)
    assert replication.problems("mysql-1", plain, False, "mysql-0.mysql") == []
    assert replication.problems("mysql-1", plain, False, "mysql-0.mysql", tls=True) == [
        "mysql-1: replicates without TLS verifying the primary's certificate "
        "(Master_SSL_Allowed No, Master_SSL_Verify_Server_Cert No)"]
    unverified = replication.pod_state(text.replace("Master_SSL_Allowed: No", "Master_SSL_Allowed: Yes"))
    assert "Master_SSL_Allowed Yes, Master_SSL_Verify_Server_Cert No" in replication.problems(
        "mysql-1", unverified, False, "mysql-0.mysql", tls=True)[0]
    verified = replication.pod_state(text.replace("Master_SSL_Allowed: No", "Master_SSL_Allowed: Yes")
                                     .replace("Master_SSL_Verify_Server_Cert: No", "Master_SSL_Verify_Server_Cert: Yes"))
    assert (verified["tls"], verified["tls_verified"]) == (True, True)
    assert replication.problems("mysql-1", verified, False, "mysql-0.mysql", tls=True) == []


@pytest.mark.parametrize("io, io_errno, sql, sql_errno, fix", [
    ("No", 1236, "Yes", 0, True),     # its position gone from the primary's binary logs
    ("Yes", 0, "No", 1062, True),     # stopped applying on an error
    ("Connecting", 1045, "Yes", 0, False),  # refused credentials: a rotation or the Secret fixes it
    ("Yes", 0, "No", 0, False),       # stopped without an error: replication restarts it
])
def test_a_replica_no_wait_heals_is_named_with_the_playbook_that_fixes_it(io, io_errno, sql, sql_errno, fix):
    state = replication.pod_state(fixture("status-10.11-mysql-1.txt"))
    state.update(io_running=io, last_io_errno=io_errno, sql_running=sql, last_sql_errno=sql_errno)
    [problem] = replication.problems("mysql-3", state, False, state["primary_host"])
    assert problem.endswith("; rebuild.yml -e pod=mysql-3 re-clones it") == fix, problem


@pytest.mark.parametrize("output,expires", [
    ("Ssl_server_not_after\tDec  6 12:00:00 2027 GMT\n", datetime.datetime(2027, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)),
    ("Ssl_server_not_after\tMar 25 01:02:03 2030 GMT", datetime.datetime(2030, 3, 25, 1, 2, 3, tzinfo=datetime.timezone.utc)),
    ("Ssl_server_not_after\t\n", None),
    ("", None),
])
def test_the_served_certificates_end_of_validity_is_read(output, expires):
    assert replication.certificate_expiry(output) == expires


def test_a_served_certificate_that_is_no_date_is_an_error():
    with pytest.raises(ValueError, match="not a certificate's end of validity: 'soon'"):
        replication.certificate_expiry("Ssl_server_not_after\tsoon\n")


def test_a_certificate_is_a_problem_once_expired_or_missing():
    now = datetime.datetime(2026, 12, 6, tzinfo=datetime.timezone.utc)
    assert replication.certificate_problem("mysql-0", now + datetime.timedelta(days=1), now) is None
    assert replication.certificate_problem("mysql-0", now, now) == (
        "mysql-0: its TLS certificate expired on 2026-12-06 00:00 UTC; renew_tls.yml renews it")
    assert replication.certificate_problem("mysql-0", None, now) == "mysql-0: serves no TLS certificate; renew_tls.yml issues one"


def test_the_fence_mark_is_read_from_the_status():
    """fenced: LOAD_FILE of the datadir's mark (role.sh isolate, crash);
    output of a server read before the column existed has none."""
    output = fixture("status-10.11-mysql-0.txt")
    assert replication.pod_state(output)["fenced"] is False
    marked = output.replace("  gtid_slave_pos: \n", "  gtid_slave_pos: \n          fenced: 1\n", 1)
    assert replication.pod_state(marked)["fenced"] is True
    assert "LOAD_FILE(CONCAT(@@datadir, '.fenced-primary')) IS NOT NULL AS fenced" in replication.STATUS_SQL


def test_the_sentinel_runs_no_ddl_once_its_table_exists():
    """CREATE ... IF NOT EXISTS would be binary-logged on every verify, and a
    DDL statement behind an unacknowledged commit keeps an old primary's crash
    recovery from rolling that commit back: it does not start again."""
    sql = replication.sentinel_write_sql("5c8e0f7e-5d1b")
    assert sql.count("PREPARE mariadb_k8s_ddl FROM @mariadb_k8s_ddl") == 2 and sql.count("'DO 0'") == 2
    assert "= 0, 'CREATE DATABASE IF NOT EXISTS mariadb_k8s'" in sql
    assert "= 0, 'CREATE TABLE IF NOT EXISTS mariadb_k8s.sentinel (" in sql
