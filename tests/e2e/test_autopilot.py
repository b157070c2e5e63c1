"""The autopilot on the real cluster, under the concurrent writer: a primary
frozen on its node (alive but unreachable) and a primary whose pod's network
is cut are failed over without a person, no write they acknowledged is lost,
and back they take no write."""
import re
import subprocess
import threading
import time

import pytest
from kubernetes import client

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import CLIENT
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError

from tests.e2e.writes import WritableChecker, Writer, check_nothing_lost, checksum, create_events_table, recorded_primary, rows
from tests.harness import (AUTOPILOT, autopilot_copies, container_pid, current_uid, destroy_pod_and_volume, drop_namespaces,
                           freeze, freezer_state, fresh_namespaces, is_local_cluster, netns_drop, pod_exec, pod_freezer,
                           pod_netns, run_playbook, server_pid, sql, start_client, wait_guarded, wait_until)

NS = "autopilot"
BASE = {"mariadb_namespace": NS, "replicas": 3}


@pytest.fixture(scope="module")
def runner(api, core):
    if not is_local_cluster():
        pytest.fail("the autopilot's faults need the local cluster: they act on the node's processes")
    fresh_namespaces(core, NS)
    run_playbook("deploy.yml", BASE).check()  # the autopilot is on by default
    runner = start_client(core, api, NS)
    create_events_table(runner)
    yield runner
    drop_namespaces(core, NS)


def autopilot_log(core):
    """What both copies of the autopilot said."""
    return "".join(core.read_namespaced_pod_log(pod.metadata.name, NS)
                   for pod in core.list_namespaced_pod(NS, label_selector=AUTOPILOT).items)


LOCAL_SQL = ["mariadb", "--defaults-file=/etc/mysql/cluster/my.cnf", "--protocol=socket", "--user=mysql", "-N", "-e"]


# root over the socket with its password, from the mounted Secret inside the pod.
AS_ROOT = ["bash", "-c", 'MYSQL_PWD=$(cat /etc/mysql/credentials/root-password) exec mariadb '
           '--defaults-file=/etc/mysql/cluster/my.cnf --protocol=socket --user=root -N -e "$1"', "as-root"]


def read_only(server, pod):
    """Whether the pod's server answers read-only (False while it restarts,
    or is deleted to be cloned back)."""
    try:
        return server.run(pod, LOCAL_SQL + ["SELECT @@global.read_only"], timeout=5).strip() == "1"
    except ExecError:
        return False


def replicates_from(server, pod, primary):
    """Whether the pod's server replicates from the primary, both threads running."""
    try:
        state = replication.pod_state(server.run(pod, CLIENT + ["-e", replication.STATUS_SQL], timeout=5))
    except ExecError:
        return False
    return (state["primary_host"] or "").startswith(primary + ".") and state["io_running"] == state["sql_running"] == "Yes"


def test_the_autopilot_is_on_by_default_and_needs_python_alone(api, core, runner):
    """Deployed without naming it, the autopilot leads from an image whose
    python has no kubernetes client (the local image's contents are those of
    the stock python image it stands for)."""
    def running():
        pods = core.list_namespaced_pod(NS, label_selector=AUTOPILOT).items
        return [pod.metadata.name for pod in pods if pod.status.phase == "Running"]
    pods = wait_until("the autopilot's two pods running", lambda: len(running()) == 2 and running(), timeout=90)
    leases = client.CoordinationV1Api(api)

    def holder():
        held = [lease.spec.holder_identity for lease in leases.list_namespaced_lease(NS).items
                if lease.metadata.name == "mysql-autopilot"]
        return held[0] if held and held[0] in pods else None
    leader = wait_until("a copy of the autopilot holding its Lease", holder, timeout=60)
    with pytest.raises(ExecError, match="No module named 'kubernetes'"):
        pod_exec(api, NS, "autopilot").run(leader, ["python3", "-c", "import kubernetes"])


def test_a_killed_then_a_deleted_primary_takes_writes_again_without_a_person(api, core, runner, report):
    """mariadbd killed with SIGKILL from the node (it restarts in place, or
    the autopilot fails over, whichever comes first), then the primary's pod
    deleted at once (grace period 0): writes flow again, nothing is lost."""
    moves = []
    with Writer(runner, "killed-deleted") as writer:
        for how in ("killed", "deleted at once"):
            time.sleep(2)
            old = recorded_primary(core, NS)
            uid = core.read_namespaced_pod(old, NS).metadata.uid
            before = len(writer.acknowledged())
            started = time.monotonic()
            if how == "killed":
                pid = server_pid(core, NS, old)
                subprocess.run(["kill", "-KILL", pid], check=True)
            else:
                core.delete_namespaced_pod(old, NS, grace_period_seconds=0)
            wait_until("writes acknowledged again", lambda: len(writer.acknowledged()) >= before + 10, timeout=120,
                       interval=0.5)
            seconds = time.monotonic() - started
            wait_until(old + " back", lambda: run_playbook("verify.yml", BASE).rc == 0, timeout=180, interval=5)
            # Control: the server, or the pod, is a new one.
            if how == "killed":
                assert server_pid(core, NS, old) != pid
            else:
                assert core.read_namespaced_pod(old, NS).metadata.uid != uid
            moves.append("%s %s: writes again within %.1f s, primary %s" % (how, old, seconds, recorded_primary(core, NS)))
    check_nothing_lost(report, runner, core, BASE, "primary's mariadbd killed (SIGKILL), then its pod deleted at once, "
                       "the autopilot", writer, 3, seconds, "; ".join(moves))


def test_a_frozen_primary_is_failed_over_and_never_answers_writable_once_thawed(api, core, runner, report):
    """Every container of the primary's pod paused (its node hung): nothing
    of the pod runs, the failover cannot reach it. Thawed, its stall watch
    kills mariadbd within milliseconds (or the autopilot isolates it): a
    checker asking every pod every 100 ms never sees two writable pods when
    it asked after the thaw. Meanwhile semi-sync acknowledges nothing, since
    no replica is left to it."""
    old = recorded_primary(core, NS)
    wait_guarded(core, NS, old)
    pods = ["mysql-%d" % i for i in range(3)]
    freezer = pod_freezer(core, NS, old)
    server = pod_exec(api, NS, "mariadb")
    checker = WritableChecker(runner, "frozen-primary", pods).start()
    with Writer(runner, "frozen-primary") as writer:
        time.sleep(2)
        started, frozen_at = time.monotonic(), time.time()
        freeze(freezer)
        try:
            wait_until("every container of " + old + " frozen", lambda: freezer_state(freezer) == "FROZEN",
                       timeout=10, interval=0.1)
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=120, interval=0.5)
            seconds = time.monotonic() - started
            time.sleep(3)  # writes reach the new primary
            # Control: frozen all along, the failover included.
            assert freezer_state(freezer) == "FROZEN"
        finally:
            freeze(freezer, "THAWED")
        thawed, thawed_at = time.monotonic(), time.time()
        wait_until(old + " read-only", lambda: read_only(server, old), timeout=60, interval=0.2)
        fenced = time.monotonic() - thawed
        time.sleep(2)
    checker.stop()
    said = previous_log(core, old) + core.read_namespaced_pod_log(old, NS, container="mariadb")
    # Who fenced it first: its stall watch (it stood still for longer than a
    # failover needs), its guard (the record names the new primary), or the
    # autopilot's round (a writable pod that is not the recorded primary is
    # isolated).
    fenced_itself = re.search(r"crashed mariadbd: this pod stood still for \d+ ms|fencing itself: the record names " + new, said)
    by = ("itself" if fenced_itself else
          "the autopilot" if re.search(r"(isolated|crashed) %s\b" % old, autopilot_log(core)) else None)
    assert by, "nothing says who fenced %s: %s" % (old, said[-3000:])
    # Controls: the checker saw the old primary writable before the freeze,
    # no answer from it while frozen, and the new one writable after the
    # failover, so two writable pods would have shown.
    before, during, after = checker.samples(end=frozen_at), checker.samples(frozen_at, thawed_at), checker.samples(start=thawed_at)
    assert any(answers[old] == "0" for _at, answers in before), "before the freeze: %s" % before[-5:]
    assert any(answers[old] == "-" for _at, answers in during), "frozen: %s" % during
    assert any(answers[new] == "0" for _at, answers in after), "after the thaw: %s" % after[:5]
    # A query that reached the frozen server may still be answered in the
    # instant it thaws, before its stall watch kills it (a few ms): counted,
    # not allowed after the thaw. Without the watch the guard's next look
    # fences it, up to a second later.
    both = checker.two_writable(start=frozen_at)
    asked_after = [sample for sample in both if sample[0] >= thawed_at]
    assert asked_after == [], "two writable pods %.2f s after the thaw (%d samples asked after it): %s" % (
        asked_after[0][0] - thawed_at, len(asked_after), said[-3000:])
    # It rejoins without a person: what it never had acknowledged is rolled
    # back (checked below: every pod holds the same rows, verify.yml finds
    # nothing errant).
    wait_until(old + " replicating from " + new, lambda: replicates_from(server, old, new), timeout=180, interval=2)
    check_nothing_lost(report, runner, core, BASE, "primary's pod frozen (every container paused), the autopilot", writer, 3,
                       seconds, "%s promoted without a person; thawed, %s never answered writable to a question asked "
                       "after the thaw (%d samples of the checker; %d asked while it was frozen were answered writable "
                       "as it thawed) and was read-only %.1f s later (fenced by %s), a replica again without a person"
                       % (new, old, len(after), len(both), fenced, by))


def test_the_primary_destroyed_with_its_volume_and_the_leading_autopilot_is_failed_over(api, core, runner, report):
    """The primary's pod and volume gone (no clean shutdown) at the moment
    the leading copy of the autopilot is killed (SIGKILL from the node: it
    cannot hand the Lease over) and its pod deleted: the other copy takes
    the Lease over once it expired and fails over; the primary's pod comes
    back on an empty volume, refuses to start a new empty primary, and
    clones from the new one."""
    old = recorded_primary(core, NS)
    leases = client.CoordinationV1Api(api)
    leader = leases.read_namespaced_lease("mysql-autopilot", NS).spec.holder_identity
    claim = core.read_namespaced_persistent_volume_claim("data-" + old, NS).metadata.uid
    with Writer(runner, "destroyed-primary") as writer:
        time.sleep(2)
        started = time.monotonic()
        subprocess.run(["kill", "-KILL", container_pid(core, NS, leader, "autopilot")], check=True)
        core.delete_namespaced_pod(leader, NS, grace_period_seconds=0)
        destroy_pod_and_volume(core, NS, old)
        # Control: killed, it did not release the Lease.
        assert leases.read_namespaced_lease("mysql-autopilot", NS).spec.holder_identity == leader
        new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                         timeout=120, interval=0.5)
        seconds = time.monotonic() - started
        # Control: the leader is gone (a Deployment's pod comes back under a
        # new name) and another copy moved the primary.
        holder = leases.read_namespaced_lease("mysql-autopilot", NS).spec.holder_identity
        assert holder != leader and holder in autopilot_copies(core, NS)
        # Its verdict is logged once the move has ended, after the record changed.
        wait_until("the failover in the autopilot's log",
                   lambda: "failover: the primary %s has not answered" % old in autopilot_log(core), timeout=60, interval=1)

        def cloned():
            try:
                return rows(runner, old, writer.scenario) != set()
            except ExecError:  # not resolvable, or not answering, until it is Ready
                return False

        wait_until(old + " cloned on a new volume", cloned, timeout=300, interval=3)
        time.sleep(2)
    assert core.read_namespaced_persistent_volume_claim("data-" + old, NS).metadata.uid != claim
    assert "cloning from " + new in core.read_namespaced_pod_log(old, NS, container="clone")
    check_nothing_lost(report, runner, core, BASE, "primary's pod and volume destroyed with the leading autopilot killed, "
                       "the autopilot", writer, 3, seconds, "%s took the Lease over from %s and promoted %s; %s cloned "
                       "back on a new volume without a person" % (holder, leader, new, old))


def previous_log(core, pod, container="mariadb"):
    """The log of the container's instance before its last restart ("" when it never restarted)."""
    try:
        return core.read_namespaced_pod_log(pod, NS, container=container, previous=True)
    except client.ApiException:
        return ""


def process_state(pid):
    """The node's ps state of a process ("T" stopped), "" once it is gone."""
    return subprocess.run(["ps", "-o", "stat=", "-p", pid], capture_output=True, text=True).stdout.strip()


def reachable(runner, pod):
    try:
        runner.run("client", ["mariadb", "--defaults-file=/tmp/client.cnf", "--connect-timeout=3", "-h", pod + ".mysql",
                              "-N", "-e", "SELECT 1"], timeout=15)
        return True
    except ExecError:
        return False


def test_a_primary_cut_off_the_network_is_failed_over_and_takes_no_write(api, core, runner, report):
    old = recorded_primary(core, NS)
    netns = pod_netns(core, NS, old)
    server = pod_exec(api, NS, "mariadb")
    local_write = {}

    def write_on_the_cut_primary():
        # Over its socket, from inside the pod: the partition does not stop
        # the write reaching the server, only its acknowledgement.
        try:
            local_write["output"] = server.run(old, LOCAL_SQL + ["INSERT INTO app.events VALUES ('cut-local', 1)"], timeout=40)
        except ExecError as exc:
            local_write["error"] = str(exc)

    assert reachable(runner, old)
    with Writer(runner, "cut-primary") as writer:
        time.sleep(2)
        started = time.monotonic()
        netns_drop(netns, "-I")
        try:
            attempt = threading.Thread(target=write_on_the_cut_primary)
            attempt.start()
            # Control: the partition drops traffic; the server itself runs.
            assert not reachable(runner, old)
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=120, interval=0.5)
            seconds = time.monotonic() - started
            time.sleep(3)  # writes reach the new primary
        finally:
            netns_drop(netns, "-D")
        attempt.join()
    # The server took the local write and never acknowledged it: no replica
    # could, and semi-sync did not fall back; the exec ended as the server
    # went away with it (control: it was in flight). A fence crashed the
    # server with the commit waiting, its own guard (self-fence.sh) or the
    # autopilot, whichever came first (under load the autopilot may also
    # delete the pod that restarts): the row is on no pod.
    assert "output" not in local_write and "error" in local_write, local_write
    wait_until(old + " replicating from " + new, lambda: replicates_from(server, old, new), timeout=180, interval=2)
    assert server.run(old, LOCAL_SQL + ["SELECT COUNT(*) FROM app.events WHERE scenario = 'cut-local'"]).strip() == "0"
    assert rows(runner, new, "cut-local") == set()
    check_nothing_lost(report, runner, core, BASE, "primary cut off the network (its netns drops all but loopback), "
                       "the autopilot", writer, 3, seconds,
                       "%s promoted without a person; %s's own write never acknowledged, rolled back as the fence "
                       "crashed it, then a replica again without a person" % (new, old))


def scale_autopilot(api, core, copies):
    """Scale the autopilot's Deployment; at 0, wait until no copy runs (a
    terminating copy still acts)."""
    client.AppsV1Api(api).patch_namespaced_deployment_scale("mysql-autopilot", NS, {"spec": {"replicas": copies}})
    if copies == 0:
        wait_until("no autopilot running", lambda: not core.list_namespaced_pod(
            NS, label_selector=AUTOPILOT).items, timeout=90, interval=1)


def record(core):
    data = core.read_namespaced_config_map("mysql-topology", NS).data
    return data["primary"], int(data.get("epoch") or 0)


def answers_writable(server, pod):
    try:
        return server.run(pod, LOCAL_SQL + ["SELECT @@global.read_only"], timeout=5).strip() == "0"
    except ExecError:
        return False


def test_a_primary_cut_off_while_the_autopilot_is_down_fences_itself(api, core, runner, report):
    """Safety that does not depend on the watcher: with no autopilot running,
    a primary whose pod's network is cut, a commit of its own waiting for an
    acknowledgement, stops being writable within failover_after
    (self-fence.sh crashes it: the commit rolls back as it restarts
    read-only), so a promotion on the other side could never meet a writable
    old primary. Healed, its replicas back, the autopilot makes it writable
    again: no failover, the same primary recorded again at the next epoch."""
    old, epoch = record(core)
    server = pod_exec(api, NS, "mariadb")
    replicas = sorted(pod for pod in ("mysql-0", "mysql-1", "mysql-2") if pod != old)
    netns = pod_netns(core, NS, old)
    local_write = {}

    def write_on_the_cut_primary():
        # The pods' local admin passes read_only: only the crash stops it.
        try:
            local_write["output"] = server.run(old, LOCAL_SQL + ["INSERT INTO app.events VALUES ('self-fence-local', 1)"],
                                               timeout=40)
        except ExecError as exc:
            local_write["error"] = str(exc)

    scale_autopilot(api, core, 0)
    try:
        assert answers_writable(server, old)
        started = time.monotonic()
        netns_drop(netns, "-I")
        try:
            attempt = threading.Thread(target=write_on_the_cut_primary)
            attempt.start()
            wait_until(old + " no longer writable", lambda: not answers_writable(server, old), timeout=30, interval=0.2)
            seconds = time.monotonic() - started
            # Control: the partition drops traffic (no client reaches it) ...
            assert not reachable(runner, old)
            # ... and its replicas lost it.
            wait_until("the replicas lost " + old, lambda: not any(replicates_from(server, pod, old) for pod in replicas),
                       timeout=30, interval=1)
            attempt.join()
            wait_until(old + " back, read-only", lambda: read_only(server, old), timeout=120, interval=1)
            # Up again, it refuses a user's write at once instead of making
            # it wait for an acknowledgement no replica can send (root, as
            # users: no READ_ONLY ADMIN).
            with pytest.raises(ExecError, match="read-only"):
                server.run(old, AS_ROOT + ["INSERT INTO app.events VALUES ('refused', 1)"], timeout=10)
        finally:
            netns_drop(netns, "-D")
        said = previous_log(core, old)
        assert "fencing itself: only 0 of the 2 other pods answered" in said and "crashing" in said, said[-2000:]
        recovery = core.read_namespaced_pod_log(old, NS, container="mariadb")
        assert "truncated binlog file" in recovery.lower(), recovery[-3000:]  # control: there was a commit to roll back
        assert "output" not in local_write, local_write  # never acknowledged
        assert seconds < 7, "writable %.1f s after the cut: the autopilot may promote after failover_after (5 s)" % seconds
        for pod in replicas:
            wait_until(pod + " replicating from " + old, lambda: replicates_from(server, pod, old), timeout=60, interval=1)
        assert read_only(server, old), "nobody but the autopilot makes it writable again"
    finally:
        scale_autopilot(api, core, 2)
    with Writer(runner, "self-fenced") as writer:
        wait_until(old + " writable again", lambda: not read_only(server, old), timeout=60, interval=0.5)
        resumed = time.monotonic() - started
        time.sleep(3)  # writes reach it
    assert record(core) == (old, epoch + 1), "the autopilot moved the primary instead of unfencing it"
    assert "fenced itself" in autopilot_log(core) and "unfenced " + old in autopilot_log(core)
    for scenario in ("refused", "self-fence-local"):
        assert server.run(old, LOCAL_SQL + ["SELECT COUNT(*) FROM app.events WHERE scenario = '%s'" % scenario]
                          ).strip() == "0", scenario
    check_nothing_lost(report, runner, core, BASE, "primary cut off the network with the autopilot down", writer, 3,
                       resumed, "%s not writable %.1f s after the cut (crashed by its own guard, its waiting commit "
                       "rolled back); healed and the autopilot back, writable again, the same primary" % (old, seconds))


def test_evicting_or_deleting_the_primary_switches_over_before_it_stops(api, core, runner, report):
    moves = []
    with Writer(runner, "hand-over") as writer:
        for how in ("evicted", "deleted"):
            old = recorded_primary(core, NS)
            uid = core.read_namespaced_pod(old, NS).metadata.uid
            started = time.monotonic()
            if how == "evicted":  # what kubectl drain does to each pod
                core.create_namespaced_pod_eviction(old, NS, client.V1Eviction(
                    metadata=client.V1ObjectMeta(name=old, namespace=NS)))
            else:
                core.delete_namespaced_pod(old, NS)
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=60, interval=0.2)
            seconds = time.monotonic() - started
            # Control: the same pod, being deleted, was still there, held by
            # its preStop hook until the primary had moved away.
            held = core.read_namespaced_pod(old, NS).metadata
            assert held.uid == uid and held.deletion_timestamp is not None
            wait_until(old + " back as a replica", lambda: current_uid(core.read_namespaced_pod, old, NS) not in (None, uid)
                       and read_only(pod_exec(api, NS, "mariadb"), old), timeout=180, interval=2)
            moves.append("%s %s: %s recorded after %.1f s" % (how, old, new, seconds))
            time.sleep(2)
    check_nothing_lost(report, runner, core, BASE, "primary evicted (as kubectl drain does), then deleted, "
                       "the autopilot", writer, 3, seconds, "; ".join(moves) + "; switched over before it stopped")


def test_a_replica_whose_position_is_gone_is_recloned_by_itself(api, core, runner, report):
    primary = recorded_primary(core, NS)
    replica = max(pod for pod in ("mysql-0", "mysql-1", "mysql-2") if pod != primary)
    server = pod_exec(api, NS, "mariadb")
    claim = core.read_namespaced_persistent_volume_claim("data-" + replica, NS).metadata.uid
    server.run(replica, LOCAL_SQL + ["STOP SLAVE"])
    for n in range(3):
        sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('gone', %d); FLUSH BINARY LOGS" % n)
    current = sql(runner, primary + ".mysql", "SHOW MASTER STATUS").split()[0]
    sql(runner, primary + ".mysql", "PURGE BINARY LOGS TO '%s'" % current)
    started = time.monotonic()
    server.run(replica, LOCAL_SQL + ["START SLAVE"])
    wait_until(replica + " on a new volume", lambda: current_uid(
        core.read_namespaced_persistent_volume_claim, "data-" + replica, NS) not in (None, claim), timeout=60, interval=1)
    # Control: the primary refused the position (as after a scale-in whose
    # volume came back late), which the autopilot read before acting.
    assert "re-cloning %s (its position is gone from the primary's binary logs)" % replica in autopilot_log(core)
    def cloned():
        try:
            return rows(runner, replica, "gone") == {0, 1, 2}
        except ExecError:  # not resolvable, or not answering, until it is Ready
            return False

    wait_until(replica + " cloned and replicating", cloned, timeout=300, interval=3)
    seconds = time.monotonic() - started
    assert checksum(runner, replica) == checksum(runner, primary)
    run_playbook("verify.yml", BASE).check()
    report.fault("a replica whose position the primary purged (error 1236), the autopilot", 3,
                 {replica: len(rows(runner, replica, "gone"))}, seconds,
                 "%s re-cloned on a new volume without a person; its rows and checksum equal the primary's" % replica)


def received(server, pod):
    """The GTID position a replica's IO thread has received."""
    return replication.pod_state(server.run(pod, CLIENT + ["-e", replication.STATUS_SQL], timeout=10))["gtid_io_pos"]


def test_a_lagging_replica_is_not_promoted_over_a_more_advanced_one(api, core, runner, report):
    """One replica's IO thread stopped for 4 s under the writer: it misses
    what the other acknowledged (a frozen one would not: the kernel buffers
    its socket). The primary frozen next and that thread started again,
    both replicas have lost the primary; the more advanced one is promoted."""
    old = recorded_primary(core, NS)
    lagging, ahead = sorted(pod for pod in ("mysql-0", "mysql-1", "mysql-2") if pod != old)
    server = pod_exec(api, NS, "mariadb")
    freezer = pod_freezer(core, NS, old)
    with Writer(runner, "lagging-replica") as writer:
        time.sleep(2)
        server.run(lagging, LOCAL_SQL + ["STOP SLAVE IO_THREAD"])
        try:
            time.sleep(4)  # acknowledged by the other replica alone
            started = time.monotonic()
            freeze(freezer)
        finally:
            server.run(lagging, LOCAL_SQL + ["START SLAVE IO_THREAD"])
        try:
            # Control: the lagging replica received less than the other, and
            # nothing more can reach either while the primary is frozen.
            behind, front = received(server, lagging), received(server, ahead)
            assert gtid.covers(front, behind) and not gtid.covers(behind, front), (behind, front)
            new = wait_until("a new primary recorded", lambda: recorded_primary(core, NS) != old and recorded_primary(core, NS),
                             timeout=120, interval=0.5)
            seconds = time.monotonic() - started
            time.sleep(3)  # writes reach the new primary
        finally:
            freeze(freezer, "THAWED")
    assert new == ahead, "%s promoted, though %s had received %s and %s only %s" % (new, ahead, front, lagging, behind)
    for pod in (old, lagging):
        wait_until(pod + " replicating from " + new, lambda: replicates_from(server, pod, new), timeout=180, interval=2)
    check_nothing_lost(report, runner, core, BASE, "a replica's IO thread stopped 4 s under the writer, then the primary "
                       "frozen, the autopilot", writer, 3, seconds,
                       "%s (received %s) promoted, not %s (received %s); both others replicate from it" % (ahead, front, lagging, behind))


def test_without_a_quorum_nothing_is_promoted(api, core, runner, report):
    """The primary's and one replica's servers frozen: the one replica left is no
    majority of three, so it is not promoted, however long it waits."""
    run_playbook("verify.yml", BASE).check()  # every replica answers and replicates
    old = recorded_primary(core, NS)
    replica = min(pod for pod in ("mysql-0", "mysql-1", "mysql-2") if pod != old)
    # Their servers, not their whole pods: a whole pod frozen for long once
    # left containerd refusing every exec into it. Shorter than the liveness
    # probe's three failures (at least 25 s), so neither server restarts.
    pids = [server_pid(core, NS, pod) for pod in (old, replica)]
    subprocess.run(["kill", "-STOP"] + pids, check=True)
    try:
        time.sleep(15)  # three times failover_after
        # Control: both really stopped all along.
        states = [process_state(pid) for pid in pids]
        assert all(state.startswith("T") for state in states), states
        assert recorded_primary(core, NS) == old
    finally:
        subprocess.run(["kill", "-CONT"] + pids, check=False)
    said = autopilot_log(core)
    assert "but only 1 of 3 pods answer and have lost it" in said and "nothing is promoted" in said
    wait_until("every pod replicating again", lambda: run_playbook("verify.yml", BASE).rc == 0, timeout=120, interval=5)
    # Thawed, not restarted: the count starts again with the majority back,
    # and the primary answers within it.
    assert [server_pid(core, NS, pod) for pod in (old, replica)] == pids
    assert recorded_primary(core, NS) == old
    report.fault("the primary's and one replica's servers frozen (quorum lost), the autopilot", 0, {}, 15,
                 "nothing promoted in 15 s (the autopilot said why); the same primary after the thaw")


def test_teardown_removes_the_autopilot_and_keeps_the_data(api, core, runner, report):
    core.delete_namespaced_pod("client", NS, grace_period_seconds=0)
    started = time.monotonic()
    run_playbook("teardown.yml", BASE).check()
    seconds = time.monotonic() - started
    assert not client.AppsV1Api(api).list_namespaced_deployment(NS).items
    assert not client.CoordinationV1Api(api).list_namespaced_lease(NS).items
    assert not [pod for pod in core.list_namespaced_pod(NS).items if pod.metadata.name in ("mysql-0", "mysql-1", "mysql-2")]
    assert len(core.list_namespaced_persistent_volume_claim(NS).items) == 3
    report.fault("teardown.yml with the autopilot on", 0, {}, seconds,
                 "the autopilot's Deployment and Lease and every pod gone, the 3 volumes kept")
