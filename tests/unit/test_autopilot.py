"""The autopilot's decision table (MOCO's state-table tests are the model):
states parsed from output captured on real servers, then changed as a fault
would change them."""
import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot, replication, rollout
from captured import read as fixture

PODS = ["mysql-0", "mysql-1", "mysql-2"]
HOST = "mysql-0.mysql"


def primary(**changes):
    return dict(replication.pod_state(fixture("status-10.11-mysql-0.txt")), **changes)


def replica(**changes):
    return dict(replication.pod_state(fixture("status-10.11-mysql-1.txt")), **changes)


def lost_it():
    """A replica whose IO thread reconnects to a primary that does not answer."""
    return replication.pod_state(fixture("status-11.8-replica-reconnecting.txt"))


def decide(states, unreachable_for=0, pods=PODS, failover_after=10):
    return autopilot.decide("mysql-0", pods, states, unreachable_for, failover_after, HOST)


def test_the_captured_reconnecting_replica_has_lost_its_primary():
    assert autopilot.has_lost(lost_it(), HOST)
    assert not autopilot.has_lost(replica(), HOST)
    assert not autopilot.has_lost(lost_it(), "mysql-1.mysql")  # it lost another primary, not this one
    assert not autopilot.has_lost(primary(), HOST)
    assert not autopilot.has_lost(replica(io_running="No", last_io_errno=1236), HOST)  # refused by a live primary
    assert autopilot.has_lost(replica(io_running="Connecting", last_io_errno=2013), HOST)


def test_an_answering_primary_is_healthy_while_a_replica_still_reaches_it():
    verdict = decide({"mysql-0": primary(), "mysql-1": lost_it(), "mysql-2": replica()})
    assert verdict["state"] == autopilot.HEALTHY
    assert verdict["reclone"] == [] and verdict["errant"] == {} and verdict["isolate"] == []


def test_an_answering_primary_its_replicas_lost_is_cut_off_and_failed_over():
    """Its pod's network cut: the exec path still reaches it, no replica does."""
    states = {"mysql-0": primary(), "mysql-1": lost_it(), "mysql-2": lost_it()}
    assert autopilot.unreachable("mysql-0", PODS, states, HOST)
    suspect = decide(states, unreachable_for=3)
    assert suspect["state"] == autopilot.SUSPECT and "cannot reach it (mysql-1, mysql-2)" in suspect["reason"]
    verdict = decide(states, unreachable_for=10)
    assert verdict["state"] == autopilot.FAILOVER and verdict["agreeing"] == ["mysql-1", "mysql-2"]


def test_a_read_only_primary_is_left_alone():
    verdict = decide({"mysql-0": primary(read_only=True), "mysql-1": replica(), "mysql-2": replica()}, unreachable_for=60)
    assert verdict["state"] == autopilot.FENCED


def test_a_silent_primary_is_suspect_until_failover_after():
    verdict = decide({"mysql-1": lost_it(), "mysql-2": lost_it()}, unreachable_for=9.5)
    assert verdict["state"] == autopilot.SUSPECT and "(failover after 10 s)" in verdict["reason"]


def test_a_quorum_that_lost_the_primary_fails_over():
    verdict = decide({"mysql-1": lost_it(), "mysql-2": lost_it()}, unreachable_for=10)
    assert verdict["state"] == autopilot.FAILOVER and verdict["agreeing"] == ["mysql-1", "mysql-2"]


@pytest.mark.parametrize("states, why", [
    ({"mysql-1": lost_it()}, "one replica of three answers"),
    ({"mysql-1": lost_it(), "mysql-2": replica()}, "mysql-2 still receives from the primary"),
    ({}, "nobody answers: this side is the minority"),
])
def test_without_a_quorum_nothing_is_promoted(states, why):
    verdict = decide(states, unreachable_for=300)
    assert verdict["state"] == autopilot.LOST, why
    assert "nothing is promoted" in verdict["reason"] and "2 needed" in verdict["reason"]


def test_two_pods_never_fail_over_alone():
    # The replica is one of two pods: never more than half.
    verdict = decide({"mysql-1": lost_it()}, unreachable_for=300, pods=PODS[:2])
    assert verdict["state"] == autopilot.LOST


def test_five_pods_need_three_that_lost_the_primary():
    pods = ["mysql-%d" % i for i in range(5)]
    two = {"mysql-1": lost_it(), "mysql-2": lost_it(), "mysql-3": replica()}
    assert decide(two, unreachable_for=60, pods=pods)["state"] == autopilot.LOST
    three = dict(two, **{"mysql-4": lost_it()})
    assert decide(three, unreachable_for=60, pods=pods)["state"] == autopilot.FAILOVER


def test_a_replica_whose_position_is_gone_is_recloned_unless_errant():
    gone = replica(io_running="No", last_io_errno=rollout.POSITION_GONE)
    source = primary(gtid_binlog_state="0-100-50", gtid_slave_pos="")
    verdict = decide({"mysql-0": source, "mysql-1": dict(gone, gtid_current_pos="0-100-5"),
                      "mysql-2": dict(gone, gtid_current_pos="0-100-5,1-102-3")})
    assert verdict["state"] == autopilot.HEALTHY  # the primary refused them: they reached it
    assert verdict["reclone"] == ["mysql-1"]
    assert verdict["errant"] == {"mysql-2": "1-102-3"}


def test_a_replica_stopped_on_another_error_is_not_recloned():
    verdict = decide({"mysql-0": primary(), "mysql-1": replica(io_running="No", last_io_errno=1045)})
    assert verdict["reclone"] == [] and verdict["errant"] == {}


def test_a_writable_server_that_is_not_the_recorded_primary_is_isolated():
    # The old primary, thawed after a failover to mysql-1: still writable.
    verdict = autopilot.decide("mysql-1", PODS, {"mysql-0": primary(), "mysql-1": primary(), "mysql-2": replica()},
                               0, 10, "mysql-1.mysql")
    assert verdict["state"] == autopilot.HEALTHY and verdict["isolate"] == ["mysql-0"]


def test_a_terminating_primary_hands_over_to_a_healthy_replica_not_terminating():
    states = {"mysql-0": primary(), "mysql-1": replica(gtid_current_pos="0-100-999999"), "mysql-2": replica()}
    assert decide(states)["state"] == autopilot.HEALTHY
    verdict = autopilot.decide("mysql-0", PODS, states, 0, 10, HOST, terminating={"mysql-0", "mysql-1"})
    assert verdict["state"] == autopilot.HANDOVER and verdict["target"] == "mysql-2" and verdict["isolate"] == []


def test_a_terminating_primary_with_nobody_to_take_over_is_only_fenced():
    # Not isolated: it stays the primary when the cluster is deployed again.
    states = {"mysql-0": primary(), "mysql-1": lost_it(), "mysql-2": replica(io_running="No", last_io_errno=1236)}
    verdict = autopilot.decide("mysql-0", PODS, states, 0, 10, HOST, terminating={"mysql-0"})
    assert verdict["state"] == autopilot.HANDOVER and verdict["target"] is None and verdict["fence"] == ["mysql-0"]
    assert verdict["isolate"] == []


def test_a_read_only_primary_its_replicas_lost_is_failed_over():
    states = {"mysql-0": primary(read_only=True), "mysql-1": lost_it(), "mysql-2": lost_it()}
    assert decide(states, unreachable_for=10)["state"] == autopilot.FAILOVER


def test_a_fenced_pod_replicating_from_nobody_rejoins_unless_errant():
    """An old primary the failover could not point at the new one (its
    network was cut then): read-only, no replication configured."""
    source = primary(gtid_binlog_state="0-100-50", gtid_slave_pos="")
    idle = dict(primary(), read_only=True, replicating=False)
    verdict = decide({"mysql-0": source, "mysql-1": dict(idle, gtid_current_pos="0-100-40"),
                      "mysql-2": dict(idle, gtid_current_pos="0-100-40,0-101-3")})
    assert verdict["state"] == autopilot.HEALTHY
    assert verdict["rejoin"] == ["mysql-1"] and verdict["reclone"] == []
    assert verdict["errant"] == {"mysql-2": "0-101-3"}


def self_fenced(**changes):
    """The recorded primary after self-fence.sh isolated it: read-only, marked, replicating from nobody."""
    return primary(read_only=True, fenced=True, gtid_binlog_state="0-100-5", **changes)


def test_a_primary_that_fenced_itself_is_writable_again_once_a_quorum_replicates_from_it():
    verdict = decide({"mysql-0": self_fenced(), "mysql-1": replica(), "mysql-2": replica(io_running="Connecting")})
    assert verdict["state"] == autopilot.RESUME
    assert "2 of 3 pods replicate from it again (mysql-1)" in verdict["reason"]


def test_a_primary_that_fenced_itself_stays_fenced_without_a_quorum():
    """One replica down, the other not connected yet: not enough to outvote a promotion."""
    verdict = decide({"mysql-0": self_fenced(), "mysql-1": replica(io_running="Connecting")})
    assert verdict["state"] == autopilot.FENCED and "fenced itself" in verdict["reason"]


def test_a_primary_that_fenced_itself_is_failed_over_when_a_replica_holds_more():
    """The replica received a transaction whose acknowledgement never
    arrived; the crash rolled it back on the primary."""
    ahead = replica(gtid_current_pos="0-100-999999")
    verdict = decide({"mysql-0": self_fenced(), "mysql-1": replica(), "mysql-2": ahead})
    assert verdict["state"] == autopilot.FAILOVER and verdict["answered"] is True
    assert "mysql-2 hold transactions it lacks" in verdict["reason"]


@pytest.mark.parametrize("fenced_primary", [
    primary(read_only=True),  # a switchover under way fences without the mark: never undone by the autopilot
    primary(read_only=True, fenced=True, replicating=True),  # marked, but already a replica
])
def test_only_a_marked_primary_replicating_from_nobody_is_unfenced(fenced_primary):
    verdict = decide({"mysql-0": fenced_primary, "mysql-1": replica(), "mysql-2": replica()})
    assert verdict["state"] == autopilot.FENCED


def test_a_terminating_primary_that_fenced_itself_is_not_unfenced():
    verdict = autopilot.decide("mysql-0", PODS, {"mysql-0": self_fenced(), "mysql-1": replica(), "mysql-2": replica()},
                               0, 10, HOST, terminating={"mysql-0"})
    assert verdict["state"] == autopilot.FENCED
