"""Step primary: moving the primary as a client writing every 50 ms sees it
(switchover, failover.yml), and what semi-sync costs; docs/benchmarks-primary.md."""
import time

from benchmarks.bench import NS, commits_per_second, playbook
from tests.harness import sql, wait_until


# 8. Moving the primary, seen by a client that writes through
# mysql-primary every 50 ms (a new connection each time, as a pool that
# reconnects would): the longest time without an acknowledged write
# during a switchover; the time from failover.yml's start to the first
# acknowledged write after the primary's pod and volume are destroyed;
# single-row commits per second with semi-sync on and off (3 pods).
def primary_moves(bench, rows=3000):
    bench.fresh()
    playbook("deploy.yml", replicas=3)
    runner = bench.client()
    sql(runner, "mysql-primary", "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY, at DOUBLE)")
    start_probe_writer(runner)
    gaps = []
    for target in ("mysql-1", "mysql-2", "mysql-0"):
        started = time.time()
        playbook("switchover.yml", primary=target)
        time.sleep(2)
        gaps.append(longest_gap(bench, runner, started, time.time()))
    bench.record("switchover: longest time without an acknowledged write", gaps)
    firsts = []
    for _ in range(bench.runs):
        primary = bench.core.read_namespaced_config_map("mysql-topology", NS).data["primary"]
        bench.core.delete_namespaced_persistent_volume_claim("data-" + primary, NS)
        bench.core.delete_namespaced_pod(primary, NS, grace_period_seconds=0)
        time.sleep(3)
        started = time.time()
        playbook("failover.yml")
        firsts.append(first_write_after(bench, runner, started) - started)
    bench.record("failover.yml start to the first acknowledged write", firsts)
    runner.run("client", ["touch", "/tmp/stop-probe"])
    for label, semi_sync in (("on", True), ("off", False)):
        playbook("deploy.yml", mariadb_semi_sync=semi_sync)
        samples = [commits_per_second(runner, "m.s_%s_%d" % (label, run), rows) for run in range(bench.runs)]
        bench.record("single-row commits, 3 pods, semi-sync %s" % label, samples, unit=" rows/s")


def start_probe_writer(runner):
    """In the client pod: every 50 ms an insert through mysql-primary; each
    acknowledged one appends its completion time to /tmp/acked and its id to
    /tmp/acked-ids."""
    runner.run("client", ["bash", "-c", (
        "rm -f /tmp/stop-probe /tmp/acked /tmp/acked-ids; setsid bash -c 'i=0; while [ ! -f /tmp/stop-probe ]; do "
        "i=$((i+1)); mariadb --defaults-file=/tmp/client.cnf -h mysql-primary --connect-timeout=1 "
        "-e \"INSERT INTO m.t VALUES ($i, UNIX_TIMESTAMP(NOW(6)))\" 2>/dev/null && date +%s.%N >> /tmp/acked "
        "&& echo $i >> /tmp/acked-ids; sleep 0.05; done' </dev/null >/dev/null 2>&1 &")])
    time.sleep(2)


def acked_times(runner):
    return [float(x) for x in runner.run("client", ["cat", "/tmp/acked"]).split()]


def longest_gap(bench, runner, start, end):
    times = [t for t in acked_times(runner) if start - 1 <= t <= end]
    return max(b - a for a, b in zip(times, times[1:]))


def first_write_after(bench, runner, start):
    return wait_until("a write acknowledged by the new primary",
                      lambda: next((t for t in acked_times(runner) if t > start), None), timeout=120, interval=0.5)


def write_primary(bench):
    bench.write_step("primary", "moving the primary", [
        "A client pod writes one row through `mysql-primary` every 50 ms, a new connection each time, and",
        "records when each write was acknowledged. Switchovers go mysql-0 -> 1 -> 2 -> 0; each failover",
        "follows the destruction (SIGKILL) of the primary's pod and volume."],
        [n for n in bench.results if n.startswith(("switchover:", "failover.yml", "single-row commits, 3 pods"))], [
        ("switchover: longest time without an acknowledged write (seconds)",
         bench.median("switchover: longest time without an acknowledged write"), "≤ 3"),
        ("failover.yml start to the first acknowledged write (seconds)",
         bench.median("failover.yml start to the first acknowledged write"), "≤ 15"),
        ("semi-sync on / off commits per second (3 pods)",
         bench.median("single-row commits, 3 pods, semi-sync on") / bench.median("single-row commits, 3 pods, semi-sync off"),
         "(cost, no target)"),
    ])
