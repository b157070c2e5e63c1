"""The autopilot's rounds, with the cluster and the Lease faked: who acts,
when, and with which quorum the failover runs."""
import threading
import time

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot, autopilot_controller, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.autopilot_controller import RECLONE_EVERY, REJOIN_AFTER, Controller, Driver, watch_rounds
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import RecordMoved
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.lease import Lease
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.primary_move import Move
from captured import read as fixture
from fake_api import FakeApi

PODS = ["mysql-0", "mysql-1", "mysql-2"]


class FakeCluster:
    def __init__(self):
        self.answering = {"mysql-0": replication.pod_state(fixture("status-10.11-mysql-0.txt")),
                          "mysql-1": replication.pod_state(fixture("status-10.11-mysql-1.txt")),
                          "mysql-2": replication.pod_state(fixture("status-10.11-mysql-1.txt"))}
        self.read = 0
        self.deleting = set()

    def terminating(self, pods):
        return self.deleting & set(pods)

    def read_record(self):
        return "mysql-0", 4

    def replicas(self):
        return 3

    def pods(self, count):
        return PODS[:count]

    def host(self, pod):
        return pod + ".mysql"

    def read_states(self, pods, timeout=30, timeouts=None):
        self.read += 1
        return [(pod, self.answering.get(pod), None if pod in self.answering else "no answer") for pod in pods]

    def primary_lost(self):
        del self.answering["mysql-0"]
        for pod in ("mysql-1", "mysql-2"):
            self.answering[pod] = replication.pod_state(fixture("status-11.8-replica-reconnecting.txt"))

    def primary_back(self):
        self.answering["mysql-0"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))
        for pod in ("mysql-1", "mysql-2"):
            self.answering[pod] = replication.pod_state(fixture("status-10.11-mysql-1.txt"))


class FakeMove:
    runs = []

    def __init__(self, driver, cluster):
        self.driver = driver

    def failover(self, target):
        FakeMove.runs.append(("failover", target, self.driver.params))
        self.driver.exit_json(changed=True, primary="mysql-1", epoch=5)

    def switchover(self, target):
        FakeMove.runs.append(("switchover", target, self.driver.params))
        self.driver.exit_json(changed=True, primary=target, epoch=5)


def controller(cluster, held=True):
    FakeMove.runs = []
    return Controller(cluster, lambda: held, failover_after=10, move=FakeMove)


def test_a_copy_without_the_lease_reads_nothing_and_acts_on_nothing():
    cluster = FakeCluster()
    cluster.primary_lost()
    follower = controller(cluster, held=False)
    assert [follower.round(now) for now in (0, 20, 40)] == [None, None, None]
    assert cluster.read == 0 and FakeMove.runs == []


def test_a_healthy_cluster_is_left_alone():
    leader = controller(FakeCluster())
    assert leader.round(0)["state"] == autopilot.HEALTHY and FakeMove.runs == []


def test_the_primary_is_failed_over_after_failover_after_seconds_of_silence():
    cluster = FakeCluster()
    leader = controller(cluster)
    leader.round(0)
    cluster.primary_lost()
    suspect = leader.round(100)
    assert suspect["state"] == autopilot.SUSPECT and suspect["reason"].endswith(" [no answer]")  # why it did not answer
    assert leader.round(109)["state"] == autopilot.SUSPECT
    verdict = leader.round(110.1)  # failover_after after the reads that first missed it
    assert verdict["state"] == autopilot.FAILOVER
    assert verdict["move"] == {"changed": True, "primary": "mysql-1", "epoch": 5, "ok": True, "msg": ""}
    ((mode, target, params),) = FakeMove.runs
    assert mode == "failover" and target is None and params["quorum"] == ["mysql-1", "mysql-2"] and params["force"] is False


def test_the_silence_is_counted_between_the_ends_of_the_reads(monkeypatch):
    """A frozen primary holds every round's reads for the probe's timeout:
    counted from when the first failing reads ended (the fault may have come
    during them), to when this round's reads ended (it was silent through
    them), so the round whose reads reach failover_after fails over."""
    cluster, clock = FakeCluster(), [0.0]
    monkeypatch.setattr(autopilot_controller.time, "monotonic", lambda: clock[0])
    reads = cluster.read_states

    def slow_reads(pods, timeout=30, timeouts=None):
        clock[0] += 0 if "mysql-0" in cluster.answering else timeouts["mysql-0"]
        return reads(pods, timeout)

    cluster.read_states = slow_reads
    leader = Controller(cluster, lambda: True, failover_after=5, primary_timeout=2, move=FakeMove)
    FakeMove.runs = []
    cluster.primary_lost()
    said = []
    for _round in range(4):
        said.append(leader.round(clock[0])["reason"].split(" [")[0])
    assert said[:3] == ["the primary mysql-0 has not answered for 0 s (failover after 5 s)",
                        "the primary mysql-0 has not answered for 2 s (failover after 5 s)",
                        "the primary mysql-0 has not answered for 4 s (failover after 5 s)"]
    assert said[3].startswith("the primary mysql-0 has not answered for 6 s and 2 of 3 pods have lost it")
    assert clock[0] == 8.0 and len(FakeMove.runs) == 1  # the reads of its first round ended at 2


@pytest.mark.parametrize("read_takes", [0.5, 0.2])  # frozen: the primary's read timeout; cut off: it answers the exec
def test_the_round_whose_reads_reach_failover_after_is_not_a_round_late(monkeypatch, read_takes):
    cluster, clock = FakeCluster(), [0.0]
    monkeypatch.setattr(autopilot_controller.time, "monotonic", lambda: clock[0])
    reads = cluster.read_states

    def timed_reads(pods, timeout=30, timeouts=None):
        clock[0] += read_takes
        return reads(pods, timeout)

    cluster.read_states = timed_reads
    leader = Controller(cluster, lambda: True, failover_after=5, move=FakeMove)
    FakeMove.runs = []
    cluster.primary_lost()
    rounds = 0
    while not FakeMove.runs:
        started = clock[0]
        leader.round(started)
        if not FakeMove.runs:
            clock[0] += leader.pause(2, started)
        rounds += 1
        assert rounds < 10
    # Counted from the end of the first round's reads: failover_after later.
    assert clock[0] == pytest.approx(read_takes + 5) and rounds <= 5
    healthy = Controller(FakeCluster(), lambda: True, failover_after=5, move=FakeMove)
    healthy.round(0)
    assert healthy.pause(2, 0, now=0.3) == pytest.approx(1.7)  # a healthy cluster: every interval


def test_a_primary_that_answers_again_resets_the_count():
    cluster = FakeCluster()
    leader = controller(cluster)
    cluster.primary_lost()
    leader.round(0)
    cluster.primary_back()
    assert leader.round(8)["state"] == autopilot.HEALTHY
    del cluster.answering["mysql-0"]
    assert leader.round(12)["state"] == autopilot.SUSPECT
    assert FakeMove.runs == []


@pytest.mark.parametrize("answer,said", [("0-100-9\n", "isolated mysql-0"), ("crashing\n", "crashed mysql-0")])
def test_a_thawed_old_primary_is_isolated(answer, said):
    cluster = FakeCluster()
    isolated = []

    def role(pod, *args, timeout=30):
        isolated.append((pod, args))
        return answer

    cluster.role = role
    cluster.read_record = lambda: ("mysql-1", 5)
    cluster.answering["mysql-1"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))  # promoted: writable
    verdict = controller(cluster).round(0)
    assert isolated == [("mysql-0", ("isolate",))]
    assert said in verdict["reason"]


def test_a_primary_being_deleted_hands_over_to_the_most_advanced_replica():
    cluster = FakeCluster()
    cluster.deleting = {"mysql-0"}
    cluster.answering["mysql-2"] = dict(cluster.answering["mysql-2"], gtid_current_pos="0-100-999999")
    verdict = controller(cluster).round(0)
    assert verdict["state"] == autopilot.HANDOVER and verdict["target"] == "mysql-2"
    ((mode, target, params),) = FakeMove.runs
    assert (mode, target) == ("switchover", "mysql-2") and params["max_lag"] == 5 and params["quorum"] is None


def test_a_replica_whose_position_is_gone_is_recloned_once():
    cluster = FakeCluster()
    recloned = []
    cluster.reclone = recloned.append
    cluster.answering["mysql-0"]["gtid_binlog_state"] = "0-100-9"
    cluster.answering["mysql-2"] = dict(cluster.answering["mysql-2"], io_running="No", last_io_errno=1236)
    leader = controller(cluster)
    assert "re-cloning mysql-2" in leader.round(0)["reason"]
    assert "mysql-2 re-cloning" in leader.round(30)["reason"]
    assert recloned == ["mysql-2"]
    leader.round(RECLONE_EVERY + 1)
    assert recloned == ["mysql-2", "mysql-2"]


def test_an_errant_replica_is_named_not_recloned():
    cluster = FakeCluster()
    cluster.reclone = lambda pod: pytest.fail("an errant replica must not lose its volume")
    cluster.answering["mysql-0"]["gtid_binlog_state"] = "0-100-9"
    cluster.answering["mysql-2"] = dict(cluster.answering["mysql-2"], io_running="No", last_io_errno=1236,
                                        gtid_current_pos="0-100-5,7-102-3")
    assert "mysql-2 is errant (7-102-3): rebuild.yml -e pod=mysql-2" in controller(cluster).round(0)["reason"]


def test_a_fenced_pod_replicating_from_nobody_is_pointed_at_the_primary():
    cluster = FakeCluster()
    pointed = []
    cluster.role = lambda pod, *args, timeout=30: pointed.append((pod, args))
    cluster.ordinal = lambda pod: int(pod[-1])
    cluster.answering["mysql-0"]["gtid_binlog_state"] = "0-100-9"
    cluster.answering["mysql-2"] = dict(cluster.answering["mysql-2"], replicating=False, read_only=True)
    leader = controller(cluster)
    leader.round(0)
    leader.round(REJOIN_AFTER - 1)
    assert pointed == []  # a pod just started: its sidecar sets replication up
    verdict = leader.round(REJOIN_AFTER)
    assert pointed == [("mysql-2", ("replicate", 0))]
    assert "mysql-2 replicates from mysql-0 again" in verdict["reason"]


def test_an_old_primary_restarted_behind_its_fence_mark_is_pointed_at_the_primary_at_once():
    """Crashed by a failover, its server restarted alone: its sidecar, long
    started, sets nothing up."""
    cluster = FakeCluster()
    pointed = []
    cluster.role = lambda pod, *args, timeout=30: pointed.append((pod, args))
    cluster.ordinal = lambda pod: int(pod[-1])
    cluster.answering["mysql-0"]["gtid_binlog_state"] = "0-100-9"
    cluster.answering["mysql-2"] = dict(cluster.answering["mysql-2"], replicating=False, read_only=True, fenced=True)
    assert "mysql-2 replicates from mysql-0 again" in controller(cluster).round(0)["reason"]
    assert pointed == [("mysql-2", ("replicate", 0))]


def test_a_slow_round_is_told_with_where_it_waits():
    told, current = [], {"started": None}

    def stuck_in_a_move():
        current["started"] = time.monotonic()
        time.sleep(0.6)
        current["started"] = None

    worker = threading.Thread(target=stuck_in_a_move)
    worker.start()
    watch_rounds(current, worker.ident, told.append, slow=0.2)
    worker.join()
    time.sleep(0.2)
    assert len(told) == 1 and told[0].startswith("slow round: 0 s so far, at ") and "stuck_in_a_move" in told[0]


def test_a_moves_steps_are_told_as_they_happen():
    told = []
    move = Move(Driver({}, told.append), FakeCluster())
    move.step("promoted mysql-1")
    assert len(told) == 1 and told[0].endswith(" promoted mysql-1") and move.result["steps"] == told


def self_fenced_cluster():
    cluster = FakeCluster()
    cluster.calls = []
    cluster.role = lambda pod, *args, timeout=30: cluster.calls.append(("role", pod) + args) or "\n"
    cluster.record_primary = lambda pod, previous, epoch: cluster.calls.append(("record", pod, previous, epoch))
    cluster.answering["mysql-0"] = dict(cluster.answering["mysql-0"], read_only=True, fenced=True,
                                       gtid_binlog_state="0-100-5")
    return cluster


def test_a_primary_that_fenced_itself_is_recorded_again_then_unfenced_once_its_replicas_are_back():
    cluster = self_fenced_cluster()
    verdict = controller(cluster).round(0)
    assert verdict["state"] == autopilot.RESUME and FakeMove.runs == []
    # The compare-and-swap first: a playbook's move that started meanwhile loses it, or wins it.
    assert cluster.calls == [("record", "mysql-0", "mysql-0", 4), ("role", "mysql-0", "unfence")]
    assert "unfenced mysql-0, the primary at epoch 5" in verdict["reason"]


def test_a_primary_that_fenced_itself_stays_fenced_when_a_move_changed_the_record():
    cluster = self_fenced_cluster()

    def moved(pod, previous, epoch):
        raise RecordMoved("the record names mysql-1 at epoch 5, not mysql-0 at epoch 4: another move ran meanwhile",
                          "mysql-1")

    cluster.record_primary = moved
    verdict = controller(cluster).round(0)
    assert cluster.calls == [] and "not unfenced: the record names mysql-1 at epoch 5" in verdict["reason"]


def test_a_primary_that_answers_again_after_a_silence_restarts_the_count():
    """Frozen without a quorum to promote, then thawed: its replicas still
    reconnect, and their votes date from the silence."""
    cluster = FakeCluster()
    leader = controller(cluster)
    cluster.primary_lost()
    assert leader.round(0)["state"] == autopilot.SUSPECT
    cluster.answering["mysql-0"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))  # thawed, replicas reconnecting
    assert leader.round(30)["state"] == autopilot.SUSPECT
    assert leader.round(35)["state"] == autopilot.SUSPECT and FakeMove.runs == []
    assert leader.round(40.1)["state"] == autopilot.FAILOVER  # still cut off from them after failover_after


def test_a_majority_that_answers_again_restarts_the_count():
    """The primary and a replica frozen, then thawed: the thawed primary
    misses the first read, but the count starts again with the majority."""
    cluster = FakeCluster()
    leader = controller(cluster)
    cluster.primary_lost()
    frozen = cluster.answering.pop("mysql-1")
    assert leader.round(0)["state"] == autopilot.SUSPECT
    assert leader.round(30)["state"] == autopilot.LOST and FakeMove.runs == []
    cluster.answering["mysql-1"] = frozen  # back, and it lost the primary too
    assert leader.round(31)["state"] == autopilot.SUSPECT
    assert leader.round(40)["state"] == autopilot.SUSPECT and FakeMove.runs == []
    assert leader.round(41.1)["state"] == autopilot.FAILOVER  # silent failover_after seconds in the majority's sight


def test_a_primary_that_falls_silent_keeps_the_count():
    """Cut off, then crashed by its own guard: the count goes on."""
    cluster = FakeCluster()
    leader = controller(cluster)
    cluster.primary_lost()
    cluster.answering["mysql-0"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))  # answers, replicas lost it
    assert leader.round(0)["state"] == autopilot.SUSPECT
    del cluster.answering["mysql-0"]
    assert leader.round(10.1)["state"] == autopilot.FAILOVER


def test_a_stopped_copy_releases_the_lease_and_exits(monkeypatch):
    exits, told = [], []
    monkeypatch.setattr(autopilot_controller.os, "_exit", exits.append)

    class Held:
        def release(self):
            return True

    class Unreachable:
        def release(self):
            raise ConnectionError("API server unreachable")

    autopilot_controller.stop(Held(), told.append)
    autopilot_controller.stop(Unreachable(), told.append)
    assert exits == [0, 0]
    assert told == ["stopping: the Lease released", "stopping: the Lease not released (API server unreachable)"]


def test_a_released_leadership_stops_renewing_before_it_gives_the_lease_up():
    """The renewal thread, still running, would take the freed Lease back."""
    api = FakeApi()
    leadership = autopilot_controller.Leadership(Lease(api, "shop", "mysql-autopilot", "autopilot-a", duration=15), 0.01)
    wait_for(leadership.leading)
    assert leadership.release()
    time.sleep(0.05)
    spec = api.objects["/apis/coordination.k8s.io/v1/namespaces/shop/leases/mysql-autopilot"]["spec"]
    assert spec.get("holderIdentity") is None and not leadership._thread.is_alive()


def test_a_lease_that_cannot_be_renewed_says_why():
    class Unreachable:
        duration = 15

        def hold(self):
            raise ConnectionError("API server unreachable")

    leadership = autopilot_controller.Leadership(Unreachable(), 0.01)
    wait_for(lambda: leadership.error)
    assert not leadership.leading() and leadership.error == "ConnectionError: API server unreachable"


def wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
