"""GTID positions and states: parsing, comparing, choosing a failover target, errant transactions."""
import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid


@pytest.mark.parametrize("text,parsed", [
    ("", []),
    (None, []),
    ("0-100-12", [(0, 100, 12)]),
    ("0-100-12,1-101-3", [(0, 100, 12), (1, 101, 3)]),
    # As @@gtid_binlog_state may print it: spaces and a line break after commas.
    ("0-100-12, 0-101-40,\n1-101-3", [(0, 100, 12), (0, 101, 40), (1, 101, 3)]),
])
def test_parse(text, parsed):
    assert gtid.parse(text) == parsed


@pytest.mark.parametrize("text", ["x", "0-100", "0-100-1-2", "0-100-x", "[]"])
def test_parse_rejects_what_is_not_a_gtid(text):
    with pytest.raises(ValueError):
        gtid.parse(text)


def test_format_sorts_and_round_trips():
    assert gtid.format_gtids([(1, 101, 3), (0, 100, 12)]) == "0-100-12,1-101-3"
    assert gtid.format_gtids(gtid.parse("1-101-3,0-100-12")) == "0-100-12,1-101-3"
    assert gtid.format_gtids([]) == ""


@pytest.mark.parametrize("position,other,covered", [
    ("0-100-12", "0-100-12", True),
    ("0-100-12", "0-100-11", True),
    ("0-100-11", "0-100-12", False),
    ("0-101-12", "0-100-11", True),  # the sequence counts within a domain, whichever server wrote it
    ("0-100-12", "", True),
    ("", "0-100-1", False),
    ("0-100-12", "0-100-12,1-101-1", False),  # a domain it never saw
    ("0-100-12,1-101-5", "0-100-12,1-101-4", True),
])
def test_covers(position, other, covered):
    assert gtid.covers(position, other) is covered


def test_most_advanced_single_domain():
    assert gtid.most_advanced({"mysql-1": "0-100-10", "mysql-2": "0-100-12", "mysql-3": "0-100-11"}) == "mysql-2"


def test_most_advanced_ties_go_to_the_lowest_name():
    assert gtid.most_advanced({"mysql-2": "0-100-12", "mysql-1": "0-100-12"}) == "mysql-1"


def test_most_advanced_multi_domain_needs_every_domain_covered():
    # Each of the others is behind mysql-2 in one domain only.
    assert gtid.most_advanced({"mysql-1": "0-100-12,1-101-4", "mysql-2": "0-100-12,1-101-5",
                               "mysql-3": "0-100-11,1-101-5"}) == "mysql-2"
    assert gtid.most_advanced({"mysql-1": "0-100-12", "mysql-2": "0-100-12,1-101-1"}) == "mysql-2"


def test_most_advanced_of_diverged_histories_is_none():
    assert gtid.most_advanced({"mysql-1": "0-100-12,1-101-3", "mysql-2": "0-100-10,1-101-5"}) is None


def test_most_advanced_with_empty_positions():
    assert gtid.most_advanced({"mysql-1": "", "mysql-2": "0-100-1"}) == "mysql-2"
    assert gtid.most_advanced({}) is None


def test_a_lagging_replica_is_not_errant():
    assert gtid.errant("0-100-50", "0-100-57", "") == []


def test_a_replica_in_step_with_a_promoted_primary_is_not_errant():
    # The primary moved from server 100 to 101; both servers are in its binlog state.
    assert gtid.errant("0-101-60", "0-100-57,0-101-60", "0-100-57") == []
    assert gtid.errant("0-100-57", "0-100-57,0-101-60", "0-100-57") == []


def test_an_old_primary_with_a_transaction_the_new_one_lacks_is_errant():
    # mysql-0 (server 100) wrote 0-100-58 after mysql-1 was promoted at 0-100-57.
    assert gtid.errant("0-100-58", "0-100-57,0-101-60", "0-100-57") == [(0, 100, 58)]


def test_a_write_by_a_server_the_primary_never_heard_of_is_errant():
    assert gtid.errant("0-102-61", "0-100-57,0-101-60", "0-100-57") == [(0, 102, 61)]


def test_a_cloned_then_promoted_primary_knows_the_history_from_before_its_binlog():
    # mysql-1 was cloned at 0-100-57 (no binlog of its own before that) and
    # then promoted: its binlog state only has its own writes; its
    # gtid_slave_pos holds the old primary's history.
    assert gtid.errant("0-100-57", "0-101-60", "0-100-57") == []
    assert gtid.errant("0-100-57", "0-101-60", "") == [(0, 100, 57)]
    assert gtid.errant("0-100-58", "0-101-60", "0-100-57") == [(0, 100, 58)]


def test_errant_per_domain():
    assert gtid.errant("0-100-5,1-100-9", "0-100-5,1-100-8", "") == [(1, 100, 9)]
