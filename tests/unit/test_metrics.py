"""The exporter's page as the e2e tests read it (tests/metrics.py), on pages
captured from the exporters of Debian's packages (0.14 in bookworm with
MariaDB 10.11, 0.17 in trixie with 11.8) run as the pods run them: uid 999,
mysql@localhost over the socket, a primary and its replica. The fixtures keep
the metric families the tests read."""
import pytest

from captured import read
from tests import metrics

PAGES = ["exporter-0.14-10.11", "exporter-0.17-11.8"]


def page(name, role):
    return metrics.parse(read("metrics/%s-%s.txt" % (name, role)))


@pytest.mark.parametrize("name", PAGES)
def test_a_healthy_primary_and_replica_pass(name):
    primary, replica = page(name, "primary"), page(name, "replica")
    assert metrics.problems(primary, replica=False) == []
    assert metrics.problems(replica, replica=True) == []
    assert metrics.value(primary, "mysql_global_variables_server_id") == 100
    assert metrics.value(replica, "mysql_slave_status_master_server_id") == 100
    dumps = [v for labels, v in primary["mysql_info_schema_processlist_threads"] if labels["command"] == "binlog_dump"]
    assert dumps == [1.0]


@pytest.mark.parametrize("name", PAGES)
def test_each_role_fails_as_the_other(name):
    assert metrics.problems(page(name, "replica"), replica=False) == [
        "the primary exports replication status: mysql_slave_status_connect_retry, "
        "mysql_slave_status_exec_master_log_pos, mysql_slave_status_executed_log_entries"]
    assert metrics.problems(page(name, "primary"), replica=True) == [
        "mysql_slave_status_slave_io_running is None", "mysql_slave_status_slave_sql_running is None",
        "mysql_slave_status_seconds_behind_master is None"]


def test_labels_keep_their_values():
    replica = page("exporter-0.17-11.8", "replica")
    (labels, _), = replica["mysql_version_info"]
    assert labels["version"] == "11.8.9-MariaDB-0+deb13u1 from Debian-log"
    assert replica["mysql_slave_status_slave_io_running"][0][0]["master_host"] == "127.0.0.1"
    (labels, number), = metrics.parse('m{a="x\\"}{,\\\\",b="line\\nbreak",} -1.5e+03 1700000000\n')["m"]
    assert labels == {"a": 'x"}{,\\', "b": "line\nbreak"} and number == -1500.0


def test_a_broken_replica_is_named():
    text = read("metrics/exporter-0.14-10.11-replica.txt")
    for healthy, broken, problem in (
        ("slave_sql_running{", "1\n", "mysql_slave_status_slave_sql_running is 0.0"),
        ("seconds_behind_master{", "0\n", "mysql_slave_status_seconds_behind_master is 3600.0"),
    ):
        line = next(line for line in text.splitlines(True) if healthy in line and line.endswith(broken))
        changed = line[:-len(broken)] + ("0\n" if broken == "1\n" else "3600\n")
        assert metrics.problems(metrics.parse(text.replace(line, changed)), replica=True) == [problem]
    assert metrics.problems(metrics.parse(text.replace("mysql_up 1", "mysql_up 0")), replica=True) == ["mysql_up is 0.0"]


@pytest.mark.parametrize("text", ["<html><body>MySQLd exporter</body></html>", "mysql_up", "mysql_up one",
                                  'mysql_up{a=1} 1', 'mysql_up{a="1" b="2"} 1'])
def test_what_is_not_metrics_is_refused(text):
    with pytest.raises(ValueError):
        metrics.parse(text)
