"""The settings record: every setting of the mariadb role's argument spec is
either recorded (and then has a row in the e2e table tests/e2e/settings_kept.yml
with a value other than its default) or belongs to one run; the record's
values are cast to the spec's types, so writing it again changes nothing."""
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.mariadb_k8s.cluster.plugins.filter.settings_record import settings_record

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(*path):
    with open(os.path.join(ROOT, *path)) as handle:
        return yaml.safe_load(handle)


OPTIONS = load("roles", "mariadb", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
NOT_RECORDED = load("roles", "mariadb", "vars", "main.yml")["mariadb_settings_not_recorded"]
TABLE = load("tests", "e2e", "settings_kept.yml")
ROWS = [(cluster, name, value) for cluster, values in TABLE.items() for name, value in values.items()]


def test_every_recorded_setting_has_exactly_one_row():
    recorded = sorted(set(OPTIONS) - set(NOT_RECORDED))
    rows = sorted(name for _, name, _ in ROWS)
    assert rows == recorded, "settings without a row: %s; rows of no recorded setting: %s" % (
        sorted(set(recorded) - set(rows)), sorted(set(rows) - set(recorded)))


def test_settings_that_belong_to_one_run_are_options():
    assert set(NOT_RECORDED) <= set(OPTIONS)


@pytest.mark.parametrize("cluster, name, value", ROWS, ids=[name for _, name, _ in ROWS])
def test_each_row_differs_from_the_default(cluster, name, value):
    assert value != OPTIONS[name].get("default"), "%s's row in %s is its default" % (name, cluster)
    assert settings_record({name: value}, OPTIONS) == {name: value}, "%s's row is not of its spec's type" % name


@pytest.mark.parametrize("values, record", [
    # The command line's strings and the inventory's values record alike.
    ({"mariadb_replicas": "5"}, {"mariadb_replicas": 5}),
    ({"mariadb_replicas": 5}, {"mariadb_replicas": 5}),
    ({"mariadb_metrics": "false"}, {"mariadb_metrics": False}),
    ({"mariadb_metrics": "yes"}, {"mariadb_metrics": True}),
    ({"mariadb_semi_sync_timeout": "2"}, {"mariadb_semi_sync_timeout": 2.0}),
    ({"mariadb_version": 11.8}, {"mariadb_version": "11.8"}),
    ({"mariadb_server_settings": {"max_connections": 77}}, {"mariadb_server_settings": {"max_connections": 77}}),
    ({"mariadb_exporter_command": ["/x", "-y"]}, {"mariadb_exporter_command": ["/x", "-y"]}),
])
def test_values_are_cast_to_the_spec_type(values, record):
    assert settings_record(values, OPTIONS) == record


def test_a_value_that_cannot_be_cast_names_the_setting():
    with pytest.raises(AnsibleFilterError, match="mariadb_replicas"):
        settings_record({"mariadb_replicas": "five"}, OPTIONS)
