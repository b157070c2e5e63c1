"""Switchover and failover with a fake Cluster: what move_primary checks before
touching anything, the order of the role changes, and the roll-back."""
import threading
import time

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import primary_move, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import RecordMoved
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from ansible_collections.mariadb_k8s.cluster.plugins.modules import move_primary
from captured import read as fixture
from fake_module import Exit, FakeModule

PODS = ["mysql-0", "mysql-1", "mysql-2"]


class Module(FakeModule):
    defaults = dict(namespace="mysql", name="mysql", mode="switchover", target=None, force=False, timeout=30, max_lag=5)


def primary_state(position, binlog_state=None, slave_pos=""):
    state = replication.pod_state(fixture("status-11.8-mysql-0.txt"))
    state.update(gtid_current_pos=position, gtid_binlog_pos=position, gtid_slave_pos=slave_pos,
                 gtid_binlog_state=position if binlog_state is None else binlog_state)
    return state


def replica_state(position, primary="mysql-0", io_pos=None, **changes):
    state = replication.pod_state(fixture("status-11.8-mysql-1.txt"))
    state.update(gtid_current_pos=position, gtid_slave_pos=position, gtid_binlog_pos=position, gtid_binlog_state=position,
                 gtid_io_pos=position if io_pos is None else io_pos, primary_host="%s.mysql" % primary)
    state.update(changes)
    return state


class FakeCluster:
    """The cluster as move_primary sees it. Every change is appended to
    `calls`; MASTER_GTID_WAIT answers `waits[pod]` ("0" by default) and, when
    it succeeds, the pod has applied what it fetched (gtid_io_pos)."""

    def __init__(self, states, primary="mysql-0"):
        self.without_role_script = set()
        self.states = states
        self.primary = primary
        self.calls = []
        self.dead = set()  # no exec answers
        self.waits = {}
        self.fail_role = {}  # (pod, first arg) -> ExecError
        self.sidecar_calls = []  # role.sh run in the sidecar: (pod, args...)
        self.fail_record = None
        self.fence_output = "0-100-20\n"
        self.isolate_output = "0-100-20\n"
        self.crash_output = "crashing\n"
        self.ready = {}
        self.fenced = set()
        self.role_timeouts = {}
        self.recorded = threading.Event()  # record_primary wrote the new primary
        self.crash_waits_for_record = False

    def replicas(self):
        return len(PODS)

    def pods(self, count):
        return ["mysql-%d" % i for i in range(count)]

    def host(self, pod):
        return pod + ".mysql"

    def ordinal(self, pod):
        return int(pod.rsplit("-", 1)[1])

    def has_role_script(self, pod):
        return pod not in self.without_role_script

    def read_record(self):
        return self.primary, 7

    def read_states(self, pods, timeout=30):
        return [(pod, None, "%s: cannot read its state (exit code 1)" % pod) if pod in self.dead
                else (pod, dict(self.states[pod]), None) for pod in pods]

    def sql(self, pod, query, timeout=30):
        if pod in self.dead:
            raise ExecError("exit code 1: ERROR 2002 (HY000): Can't connect to local server")
        if query.startswith("SELECT MASTER_GTID_WAIT"):
            self.calls.append(("wait", pod, query.split("'")[1]))
            answer = self.waits.get(pod, "0")
            if answer == "0" and self.states[pod]["gtid_io_pos"]:
                self.states[pod]["gtid_current_pos"] = self.states[pod]["gtid_io_pos"]
            return answer + "\n"
        if query == "SELECT @@global.read_only":
            return ("1" if pod in self.fenced else "0") + "\n"
        if query != "SELECT 1":
            self.calls.append(("sql", pod, query))
        return "1\n"

    def role(self, pod, *args, timeout=30, container=None):
        args = tuple(str(a) for a in args)
        if container == "sidecar":
            self.sidecar_calls.append((pod,) + args)
            if (pod, args[0]) in self.fail_role:
                raise self.fail_role[(pod, args[0])]
            return ""
        self.calls.append(("role", pod) + args)
        self.role_timeouts[(pod, args[0])] = timeout
        if args[0] == "crash" and self.crash_waits_for_record and not self.recorded.wait(5):
            raise ExecError("timed out: the promotion waited for the crash")
        if (pod, args[0]) in self.fail_role:
            raise self.fail_role[(pod, args[0])]
        if args[0] in ("fence", "isolate", "unfence"):
            getattr(self.fenced, "discard" if args[0] == "unfence" else "add")(pod)
        return {("fence",): self.fence_output, ("isolate",): self.isolate_output,
                ("crash",): self.crash_output}.get(args[:1] if args[0] == "crash" else args, "")

    def record_primary(self, pod, previous, epoch):
        assert (previous, epoch) == (self.primary, 7)
        if self.fail_record:
            raise self.fail_record
        self.calls.append(("record_primary", pod))
        self.recorded.set()
        return epoch + 1

    def point_write_service(self, pod):
        self.calls.append(("service", pod))

    def announce_primary(self, pods, primary):
        self.calls.append(("announce_primary", tuple(pods), primary))
        return []

    def pod_ready(self, pod):
        return self.ready.get(pod, pod not in self.dead)

    def delete_pod(self, pod):
        self.calls.append(("delete_pod", pod))


@pytest.fixture
def cluster(monkeypatch):
    fake = FakeCluster({
        "mysql-0": primary_state("0-100-20"),
        "mysql-1": replica_state("0-100-20"),
        "mysql-2": replica_state("0-100-19"),
    })
    monkeypatch.setattr(move_primary, "Cluster", lambda api, namespace, name: fake)
    return fake


def run(**params):
    with pytest.raises(Exit) as result:
        move_primary.execute_module(Module(**params), api=None)
    return result.value.args[0]


def roles(cluster):
    return [call[1:] for call in cluster.calls if call[0] == "role"]


# Switchover: refusals before any change

@pytest.mark.parametrize("target,message", [
    ("mysql-0", "mysql-0 is already the primary"),
    ("mysql-3", "must be a pod of the cluster, mysql-0, mysql-1, mysql-2, got 'mysql-3'"),
    (None, "target (-e primary) is required for a switchover"),
])
def test_switchover_refuses_a_target_that_is_not_another_pod(cluster, target, message):
    result = run(target=target)
    assert result["failed"] is True and message in result["msg"]
    assert cluster.calls == [] and result["changed"] is False


@pytest.mark.parametrize("changes,reason", [
    (dict(seconds_behind_primary=60), "mysql-2: lag 60s exceeds 5s"),
    (dict(sql_running="No", last_sql_error="Duplicate entry '7'"), "mysql-2: SQL thread No: Duplicate entry '7'"),
    (dict(io_running="No", last_io_error="Access denied"), "mysql-2: IO thread No: Access denied"),
    (dict(primary_host="mysql-1.mysql"), "mysql-2: replicates from mysql-1.mysql instead of mysql-0.mysql"),
    (dict(gtid_current_pos="0-102-21"), "mysql-2: errant GTIDs 0-102-21"),
])
def test_switchover_refuses_a_lagging_or_broken_target_before_any_change(cluster, changes, reason):
    cluster.states["mysql-2"].update(changes)
    result = run(target="mysql-2")
    assert result["failed"] is True
    assert result["msg"].startswith("target (-e primary) mysql-2 is not a healthy, caught-up replica of mysql-0: ")
    assert reason in result["msg"]
    assert cluster.calls == []


def test_switchover_refuses_when_the_primary_does_not_answer(cluster):
    cluster.dead = {"mysql-0"}
    result = run(target="mysql-1")
    assert result["failed"] is True and "the primary mysql-0 does not answer" in result["msg"] and "failover.yml" in result["msg"]
    assert cluster.calls == []


def test_switchover_in_check_mode_changes_nothing(cluster):
    with pytest.raises(Exit) as result:
        move_primary.execute_module(Module(check_mode=True, target="mysql-1"), api=None)
    assert result.value.args[0]["failed"] is False and cluster.calls == []


# Switchover: the move and its roll-back

def test_switchover_fences_waits_promotes_records_then_repoints_the_others(cluster):
    result = run(target="mysql-1")
    assert result["failed"] is False, result.get("msg")
    assert cluster.calls == [
        ("role", "mysql-0", "fence"),
        ("wait", "mysql-1", "0-100-20"),  # the fenced primary's final position
        ("role", "mysql-1", "promote"),
        ("record_primary", "mysql-1"),
        ("role", "mysql-0", "replicate", "1"),
        ("role", "mysql-2", "replicate", "1"),
        ("announce_primary", tuple(PODS), "mysql-1"),
    ]
    assert (result["changed"], result["previous"], result["primary"], result["problems"]) == (True, "mysql-0", "mysql-1", [])
    assert result["epoch"] == 8


def test_a_switchover_whose_target_does_not_catch_up_rolls_back(cluster):
    cluster.waits["mysql-2"] = "-1"  # MASTER_GTID_WAIT timed out
    result = run(target="mysql-2")
    assert result["failed"] is True and result["changed"] is False and result["primary"] == "mysql-0"
    assert "did not apply the primary's transactions up to 0-100-20" in result["msg"]
    assert "Rolled back" in result["msg"] and "mysql-0 is the primary" in result["msg"]
    # Never promoted: it still replicates from mysql-0; the old primary takes writes again.
    assert roles(cluster) == [("mysql-0", "fence"), ("mysql-0", "unfence")]
    assert not any(call[0] in ("record_primary", "announce_primary") for call in cluster.calls)


def test_a_switchover_whose_record_fails_rolls_the_target_back_to_replicating(cluster):
    cluster.fail_record = RuntimeError("connection reset")
    result = run(target="mysql-1")
    assert result["failed"] is True and result["changed"] is False
    assert "recording mysql-1 as the primary failed (connection reset)" in result["msg"] and "Rolled back" in result["msg"]
    assert roles(cluster)[:2] == [("mysql-0", "fence"), ("mysql-1", "promote")]
    assert roles(cluster)[-2:] == [("mysql-1", "replicate", "0"), ("mysql-0", "unfence")]
    assert not any(call[0] == "announce_primary" for call in cluster.calls)


def test_a_switchover_that_loses_the_record_to_another_move_follows_the_winner(cluster):
    """Two movers at once: the loser's pick and the old primary follow the
    winner; the old primary is not made writable again beside it."""
    cluster.fail_record = RecordMoved("the record names mysql-2 at epoch 8, not mysql-0 at epoch 7", "mysql-2")
    result = run(target="mysql-1")
    assert result["failed"] is True and result["changed"] is False and result["epoch"] == 7
    assert "recording mysql-1 as the primary failed (the record names mysql-2 at epoch 8" in result["msg"]
    assert ("role", "mysql-1", "replicate", "2") in cluster.calls and ("role", "mysql-0", "replicate", "2") in cluster.calls
    assert ("role", "mysql-0", "unfence") not in cluster.calls and ("role", "mysql-1", "replicate", "0") not in cluster.calls
    assert cluster.calls[-1] == ("service", "mysql-2")


def test_a_failed_roll_back_says_so(cluster):
    cluster.waits["mysql-1"] = "-1"
    cluster.fail_role[("mysql-0", "unfence")] = ExecError("exit code 137")
    result = run(target="mysql-1")
    assert result["failed"] is True
    assert "Rolling back failed (exit code 137)" in result["msg"] and "Rolled back:" not in result["msg"]


# Failover

def test_failover_refuses_while_the_primary_answers(cluster):
    result = run(mode="failover")
    assert result["failed"] is True and "the primary mysql-0 still answers" in result["msg"]
    assert cluster.calls == []


def test_failover_picks_the_most_advanced_replica_after_its_relay_log(cluster):
    cluster.dead = {"mysql-0"}
    # mysql-2 has applied more, but mysql-1 has fetched more: once applied, mysql-1 holds everything.
    cluster.states["mysql-1"] = replica_state("0-100-17", io_pos="0-100-20")
    cluster.states["mysql-2"] = replica_state("0-100-19")
    cluster.ready["mysql-0"] = False
    result = run(mode="failover")
    assert result["failed"] is False, result.get("msg")
    assert result["primary"] == "mysql-1" and result["changed"] is True
    calls = cluster.calls
    # No pod takes writes through the Service while no replica fetches from the old primary.
    assert calls.index(("service", None)) < calls.index(("sql", "mysql-1", "STOP SLAVE IO_THREAD"))
    assert calls.index(("sql", "mysql-1", "STOP SLAVE IO_THREAD")) < calls.index(("wait", "mysql-1", "0-100-20"))
    assert calls[calls.index(("role", "mysql-1", "promote")):] == [
        ("role", "mysql-1", "promote"),
        ("record_primary", "mysql-1"),
        ("role", "mysql-2", "replicate", "1"),
        ("announce_primary", tuple(PODS), "mysql-1"),
        ("delete_pod", "mysql-0"),  # not Ready: it starts again as a replica
    ]


def test_failover_refuses_a_target_that_is_behind(cluster):
    cluster.dead = {"mysql-0"}
    result = run(mode="failover", target="mysql-2")
    assert result["failed"] is True
    assert "mysql-2 is behind mysql-1 (0-100-19 against 0-100-20)" in result["msg"]
    assert roles(cluster) == [] and not any(call[0] == "record_primary" for call in cluster.calls)


def test_failover_promotes_a_target_that_is_not_behind(cluster):
    cluster.dead = {"mysql-0"}
    cluster.states["mysql-2"] = replica_state("0-100-20")
    result = run(mode="failover", target="mysql-2")
    assert result["failed"] is False and result["primary"] == "mysql-2"


def test_failover_refuses_diverged_replicas(cluster):
    cluster.dead = {"mysql-0"}
    cluster.states["mysql-1"] = replica_state("0-100-20,1-100-3")
    cluster.states["mysql-2"] = replica_state("0-100-19,1-100-4")
    result = run(mode="failover")
    assert result["failed"] is True and "diverged" in result["msg"]
    assert roles(cluster) == []


def test_failover_skips_a_broken_replica(cluster):
    cluster.dead = {"mysql-0"}
    cluster.states["mysql-1"].update(sql_running="No", last_sql_error="Duplicate entry", gtid_io_pos="0-100-19")
    result = run(mode="failover")
    assert result["failed"] is False and result["primary"] == "mysql-2"
    result = run(mode="failover", target="mysql-1")
    assert result["failed"] is True and "mysql-1: not a candidate (replication configured, SQL thread No: Duplicate entry)" in result["msg"]


def test_forced_failover_fences_the_answering_primary_first(cluster):
    result = run(mode="failover", force=True)
    assert result["failed"] is False, result.get("msg")
    assert result["primary"] == "mysql-1"
    assert roles(cluster)[0] == ("mysql-0", "fence")
    # Still Ready, answering and fenced: it replicates from the new primary.
    assert roles(cluster)[-1] == ("mysql-0", "replicate", "1")


def test_pods_of_an_older_release_without_role_sh_are_named_before_anything_changes(cluster, monkeypatch):
    monkeypatch.setattr(primary_move.time, "sleep", lambda seconds: None)
    clock = iter(range(0, 100000, 10))
    monkeypatch.setattr(primary_move.time, "monotonic", lambda: next(clock))
    cluster.without_role_script = {"mysql-0"}
    result = run(target="mysql-1", timeout=10000)
    assert result["failed"] is True
    assert "role.sh is not mounted in mysql-0 yet" in result["msg"]
    assert roles(cluster) == []
    assert ("announce_primary", ("mysql-0",), "mysql-0") in cluster.calls


def test_failover_refuses_to_leave_behind_what_only_a_broken_replica_received(cluster):
    cluster.dead = {"mysql-0"}
    # mysql-1 acknowledged 0-100-20 (semi-sync acks on receipt) but cannot apply it.
    cluster.states["mysql-1"].update(sql_running="No", last_sql_error="Duplicate entry", gtid_io_pos="0-100-20")
    result = run(mode="failover")
    assert result["failed"] is True
    assert "mysql-2 (at 0-100-19) lacks transactions that only broken replicas received (mysql-1 received up to 0-100-20)" in result["msg"]
    assert not any(call[0] == "record_primary" for call in cluster.calls)
    assert ("sql", "mysql-2", "START SLAVE IO_THREAD") in cluster.calls
    forced = run(mode="failover", force=True)
    assert forced["failed"] is False and forced["primary"] == "mysql-2"


def test_failover_refuses_the_old_primary_as_target(cluster):
    cluster.dead = {"mysql-0"}
    result = run(mode="failover", target="mysql-0")
    assert result["failed"] is True and "mysql-0 is the primary being failed over from" in result["msg"]
    assert cluster.calls == []


def test_failover_stops_when_a_candidate_cannot_be_read_after_stopping_its_io_thread(cluster, monkeypatch):
    cluster.dead = {"mysql-0"}
    reads = {"n": 0}
    original = cluster.read_states

    def flaky(pods, timeout=30):
        reads["n"] += 1
        if reads["n"] == 2:  # the read after STOP SLAVE IO_THREAD
            return [(pod, None, "%s: cannot read its state (timed out)" % pod) for pod in pods]
        return original(pods, timeout)

    monkeypatch.setattr(cluster, "read_states", flaky)
    result = run(mode="failover")
    assert result["failed"] is True and "failover stopped before promoting anyone" in result["msg"]
    assert roles(cluster) == []
    assert ("sql", "mysql-1", "START SLAVE IO_THREAD") in cluster.calls


def test_failover_refuses_while_a_replica_cannot_be_read_unless_forced(cluster):
    # mysql-1 may hold the acknowledged write 0-100-20 that mysql-2 lacks.
    cluster.dead = {"mysql-0", "mysql-1"}
    result = run(mode="failover")
    assert result["failed"] is True
    assert "mysql-1: cannot read its state" in result["msg"] and "-e force=true" in result["msg"]
    assert cluster.calls == []
    forced = run(mode="failover", force=True)
    assert forced["failed"] is False and forced["primary"] == "mysql-2"


def test_failover_gives_up_when_the_old_primary_comes_back(cluster, monkeypatch):
    cluster.dead = {"mysql-0"}
    # The old primary's container restarts while the replicas apply their relay logs.
    original = cluster.sql

    def restarted(pod, query, timeout=30):
        if query.startswith("SELECT MASTER_GTID_WAIT"):
            cluster.dead.discard("mysql-0")
        return original(pod, query, timeout)

    monkeypatch.setattr(cluster, "sql", restarted)
    result = run(mode="failover")
    assert result["failed"] is True and "the primary mysql-0 came back during the failover" in result["msg"]
    assert roles(cluster) == [] and not any(call[0] == "record_primary" for call in cluster.calls)
    assert cluster.calls[-1] == ("service", "mysql-0")
    assert ("sql", "mysql-1", "START SLAVE IO_THREAD") in cluster.calls


def test_a_roll_back_after_a_broken_fence_stream_waits_out_the_fence(cluster, monkeypatch):
    slept = []
    monkeypatch.setattr(primary_move.time, "sleep", slept.append)
    cluster.fail_role[("mysql-0", "fence")] = ExecError("stream closed")
    result = run(target="mysql-1")
    assert result["failed"] is True and "Rolled back" in result["msg"]
    assert roles(cluster) == [("mysql-0", "fence"), ("mysql-0", "unfence")]
    assert slept and slept[0] > primary_move.FENCE_LOCK_WAIT


@pytest.mark.parametrize("params,message", [
    (dict(timeout=0), "timeout (primary_timeout) must be a positive number of seconds, got 0"),
    (dict(max_lag=-1), "max_lag (primary_max_lag) must be 0 or more seconds, got -1"),
])
def test_limits_out_of_range_are_refused_before_any_change(cluster, params, message):
    result = run(target="mysql-1", **params)
    assert result["failed"] is True and message in result["msg"]
    assert cluster.calls == []


def test_failover_with_the_autopilots_quorum_fences_a_primary_that_still_answers(cluster):
    """Its pod's network cut: the exec path reaches it, its replicas do not."""
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"])
    assert result["failed"] is False, result.get("msg")
    assert result["primary"] == "mysql-1"
    calls = cluster.calls
    assert calls.index(("role", "mysql-0", "isolate")) < calls.index(("service", None)) < calls.index(("role", "mysql-1", "promote"))
    assert any(step.endswith("fenced mysql-0 (its replicas lost it)") for step in result["steps"])


def test_failover_leaves_an_old_primary_that_isolate_crashed_to_restart(cluster):
    """It had commits waiting for acknowledgements: crashed, it restarts
    read-only and rolls them back; pointing it anywhere now would race that."""
    cluster.isolate_output = "crashing\n"
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"])
    assert result["failed"] is False, result.get("msg")
    assert any(step.endswith("crashed mysql-0 (its replicas lost it)") for step in result["steps"])
    assert not [call for call in cluster.calls if call[:2] == ("role", "mysql-0") and call[2] != "isolate"]
    assert result["restarted"] == []


def test_failover_trusts_the_autopilots_reading_of_a_silent_primary(cluster, monkeypatch):
    """A frozen server would hold a second probe for its whole timeout."""
    probed = []
    original = cluster.sql
    monkeypatch.setattr(cluster, "sql", lambda pod, query, timeout=30: (probed.append(pod) if query == "SELECT 1" else None)
                        or original(pod, query, timeout))
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"], answered=False)
    assert result["failed"] is False, result.get("msg")
    assert "mysql-0" not in probed and ("role", "mysql-0", "isolate") not in cluster.calls


def test_failover_crashes_a_silent_old_primary_without_holding_the_promotion(cluster):
    """Frozen, it would be writable again the moment it thaws: killed
    without SQL, it restarts read-only; nothing else is asked of it. A pod
    whose exec hangs (every container frozen) holds the crash for its whole
    timeout: the promotion goes on meanwhile."""
    cluster.ready = {"mysql-0": True}
    cluster.crash_waits_for_record = True
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"], answered=False)
    assert result["failed"] is False and result["primary"] == "mysql-1", result.get("msg")
    (crash,) = [call for call in cluster.calls if call[:2] == ("role", "mysql-0")]
    assert crash[2] == "crash" and 0 < int(crash[3]) - time.time() <= 3  # never after its own timeout
    assert cluster.role_timeouts[("mysql-0", "crash")] <= 3
    assert any(step.endswith(" crashed mysql-0, which does not answer") for step in result["steps"]), result["steps"]
    assert result["steps"][-1].endswith(" mysql-0 restarts read-only, its unacknowledged commits rolled back")


@pytest.mark.parametrize("output,step", [
    ("", "mysql-0 does not answer: its mariadbd is PID 1 (an earlier release), only marked to start read-only"),
    (ExecError("timed out after 3 s"),
     "could not crash mysql-0, which does not answer (timed out after 3 s); marked to start read-only"),
])
def test_failover_leaves_a_silent_old_primary_it_could_not_crash_to_the_autopilot(cluster, output, step):
    """Frozen, its pod reads Ready for a while: role.sh replicate would wait
    out its timeout there, and hold up the autopilot's round."""
    cluster.ready = {"mysql-0": True}
    if isinstance(output, ExecError):
        cluster.fail_role[("mysql-0", "crash")] = output
    else:
        cluster.crash_output = output
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"], answered=False)
    assert result["failed"] is False and result["primary"] == "mysql-1", result.get("msg")
    assert any(said.endswith(" " + step) for said in result["steps"])
    assert [call[:3] for call in cluster.calls if call[:2] == ("role", "mysql-0")] == [("role", "mysql-0", "crash")]
    assert cluster.sidecar_calls == [("mysql-0", "mark")]
    assert result["steps"][-1].endswith("mysql-0 did not answer the autopilot: left to it")


def test_failover_says_when_a_silent_old_primary_could_be_neither_crashed_nor_marked(cluster):
    """Its node gone: neither container answers an exec."""
    cluster.ready = {"mysql-0": True}
    cluster.fail_role[("mysql-0", "crash")] = ExecError("timed out after 3 s")
    cluster.fail_role[("mysql-0", "mark")] = ExecError("timed out after 3 s")
    result = run(mode="failover", quorum=["mysql-1", "mysql-2"], answered=False)
    assert result["failed"] is False and result["primary"] == "mysql-1", result.get("msg")
    assert any(said.endswith(" could not crash mysql-0, which does not answer (timed out after 3 s); not marked either "
                             "(timed out after 3 s)") for said in result["steps"])


def test_a_failover_that_loses_the_record_to_a_move_with_the_same_pick_leaves_it_the_primary(cluster):
    cluster.dead = {"mysql-0"}
    cluster.fail_record = RecordMoved("the record names mysql-1 at epoch 8, not mysql-0 at epoch 7", "mysql-1")
    result = run(mode="failover")
    assert result["failed"] is True and result["primary"] == "mysql-1"
    assert ("role", "mysql-1", "replicate", "0") not in cluster.calls and ("role", "mysql-2", "replicate", "1") in cluster.calls
    assert ("service", "mysql-0") not in cluster.calls and cluster.calls[-1] == ("service", "mysql-1")


def test_a_promotion_that_times_out_is_undone_and_gets_its_own_time(cluster):
    """The deadline nearly spent: role.sh promote still gets 30 s, and when
    its exec fails anyway the pick is made to replicate (read-only) again,
    since the script may have finished in the pod."""
    cluster.dead = {"mysql-0"}
    cluster.fail_role[("mysql-1", "promote")] = ExecError("timed out after 30.0s")
    result = run(mode="failover", timeout=1)
    assert result["failed"] is True and result["changed"] is False
    assert "promoting mysql-1 failed (timed out after 30.0s); mysql-1 replicates from mysql-0 again" in result["msg"]
    assert cluster.role_timeouts[("mysql-1", "promote")] >= 30 and cluster.role_timeouts[("mysql-1", "replicate")] >= 30
    assert roles(cluster)[-1] == ("mysql-1", "replicate", "0")
    assert not any(call[0] == "record_primary" for call in cluster.calls)


def test_failover_counts_an_old_primary_whose_pod_is_gone_as_restarting(cluster):
    """Deleted with its volume, the pod is created again by the StatefulSet:
    failover.yml waits for it before verifying, instead of reading a pod
    that is not there."""
    cluster.dead = {"mysql-0"}
    cluster.ready = {"mysql-0": None}
    result = run(mode="failover")
    assert result["failed"] is False, result.get("msg")
    assert result["restarted"] == ["mysql-0"] and not any(call[0] == "delete_pod" for call in cluster.calls)


def test_failover_stops_the_io_threads_in_parallel(cluster, monkeypatch):
    """Against a frozen primary each STOP waits out a connection attempt:
    one after the other they would add up."""
    cluster.dead = {"mysql-0"}
    both = threading.Barrier(2, timeout=5)
    original = cluster.sql

    def sql(pod, query, timeout=30):
        if query == "STOP SLAVE IO_THREAD":
            both.wait()  # broken (an error) unless the other STOP runs meanwhile
        return original(pod, query, timeout)

    monkeypatch.setattr(cluster, "sql", sql)
    result = run(mode="failover")
    assert result["failed"] is False, result.get("msg")
