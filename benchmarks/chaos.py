"""make chaos: python -m benchmarks.chaos [--faults N] [--seed S] [--kind K]. Not part
of CI: a cluster with the autopilot on takes N faults of the primary, of
random kinds, under a client that writes every 50 ms, while a checker in the
client pod asks every pod every 100 ms whether it is writable. Per kind:
acknowledged writes lost (must be 0), samples with two writable pods (must
be 0), seconds without an acknowledged write around the fault, and whether
a person had to act (an old primary left errant, re-cloned by rebuild.yml).
Writes docs/chaos.md; each fault's autopilot log is appended to chaos-autopilot.log."""
import argparse
import collections
import datetime
import os
import platform
import random
import time

from kubernetes import client

from benchmarks.bench import NS, Bench, log, playbook
from benchmarks.steps.autopilot import FROZEN, delete_at_once, freeze_pod, kill, recorded_primary
from benchmarks.steps.primary import acked_times, longest_gap, start_probe_writer
from tests.e2e.writes import WritableChecker
from tests.harness import AUTOPILOT, ROOT, autopilot_copies, freeze, netns_drop, pod_netns, run_playbook, sql, wait_guarded, wait_until

PODS = ("mysql-0", "mysql-1", "mysql-2")
CUT = []  # network namespaces that drop everything, healed once failed over


def cut(bench, pod):
    CUT.append(pod_netns(bench.core, NS, pod))
    netns_drop(CUT[-1], "-I")


def evict(bench, pod):
    bench.core.create_namespaced_pod_eviction(pod, NS, client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=NS)))


def lease_holder(bench):
    """The copy of the autopilot that holds its Lease, once that is a running
    pod: after an earlier such fault the Lease names the deleted leader until
    another copy takes it over."""
    holder = client.CoordinationV1Api(bench.api).read_namespaced_lease("mysql-autopilot", NS).spec.holder_identity
    return holder if holder in autopilot_copies(bench.core, NS) else None


def kill_with_the_watcher(bench, pod):
    leader = wait_until("the Lease held by a running copy", lambda: lease_holder(bench), timeout=120, interval=1)
    bench.core.delete_namespaced_pod(leader, NS, grace_period_seconds=0)
    kill(bench, pod)


KINDS = {
    "mariadbd killed": kill,
    "pod deleted at once": delete_at_once,
    "pod frozen": freeze_pod,
    "pod's network cut": cut,
    "primary evicted (drain)": evict,
    "leading watcher deleted with mariadbd killed": kill_with_the_watcher,
}


def lost(runner, primary):
    """Acknowledged ids missing on the recorded primary."""
    acked = {int(x) for x in runner.run("client", ["cat", "/tmp/acked-ids"]).split()}
    present = {int(x) for x in sql(runner, primary + ".mysql", "SELECT id FROM m.t").split()}
    return acked - present


def recover(bench):
    """Heal what the fault left (thaw, reconnect), then wait for every pod
    to replicate; an errant old primary is re-cloned by rebuild.yml, the one
    step a person takes. Returns whether a person was needed."""
    for freezer in FROZEN:
        freeze(freezer, "THAWED")
    for netns in CUT:
        netns_drop(netns, "-D")
    FROZEN.clear()
    del CUT[:]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        checked = run_playbook("verify.yml", {"mariadb_namespace": NS, "replicas": 3})
        if checked.rc == 0:
            return False
        errant = [pod for pod in PODS if "%s: errant GTIDs" % pod in checked.output]
        if errant:
            playbook("rebuild.yml", pod=errant[0], mariadb_autopilot=True)
            return True
        time.sleep(5)
    raise TimeoutError("the cluster did not recover within 240 s of the fault")


def keep_autopilot_logs(bench, since, path):
    """Append what every copy of the autopilot logged since the fault: a copy
    that a later fault deletes takes its log with it."""
    copies = bench.core.list_namespaced_pod(NS, label_selector=AUTOPILOT).items
    with open(path, "a") as out:
        for copy in copies:
            try:
                text = bench.core.read_namespaced_pod_log(copy.metadata.name, NS, since_seconds=max(1, int(time.time() - since)))
            except client.ApiException as exc:
                text = "(no log: %s)\n" % exc.reason
            out.write("--- %s, since %s\n%s" % (copy.metadata.name, time.strftime("%H:%M:%S", time.gmtime(since)), text))


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--faults", type=int, default=30)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--kind", action="append", choices=sorted(KINDS),
                        help="only faults of this kind (repeatable): to reproduce one kind's defect")
    parser.add_argument("--autopilot-log", default="chaos-autopilot.log",
                        help="where each fault's autopilot log is appended")
    args = parser.parse_args()
    kinds = sorted(args.kind or KINDS)
    rng = random.Random(args.seed)
    bench = Bench(1)
    bench.fresh()
    playbook("deploy.yml", replicas=3, mariadb_autopilot=True)
    runner = bench.client()
    sql(runner, "mysql-primary", "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY, at DOUBLE)")
    start_probe_writer(runner)
    checker = WritableChecker(runner, "chaos", PODS).start()
    wait_guarded(bench.core, NS, recorded_primary(bench))
    rows = collections.defaultdict(lambda: {"faults": 0, "lost": 0, "two writable": 0, "gaps": [], "person": 0})
    started, missing_before = time.monotonic(), set()
    try:
        for n in range(args.faults):
            kind = rng.choice(kinds)
            old = recorded_primary(bench)
            log("fault %d/%d: %s on %s" % (n + 1, args.faults, kind, old))
            time.sleep(3)
            at = time.time()
            KINDS[kind](bench, old)
            if FROZEN or CUT:  # healed once another pod is the primary, or after a minute
                try:
                    wait_until("a new primary recorded", lambda: recorded_primary(bench) != old, timeout=60, interval=0.5)
                except TimeoutError:
                    log("no failover within 60 s")
            person = recover(bench)
            keep_autopilot_logs(bench, at - 5, args.autopilot_log)
            time.sleep(2)
            row = rows[kind]
            row["faults"] += 1
            row["gaps"].append(longest_gap(bench, runner, at, time.time()))
            row["two writable"] += len(checker.two_writable(at, time.time()))
            missing = lost(runner, recorded_primary(bench))
            row["lost"] += len(missing - missing_before)
            missing_before |= missing
            row["person"] += person
            log("  %.1f s without an acknowledged write; %d acknowledged writes lost in all%s"
                % (row["gaps"][-1], len(missing_before), "; rebuild.yml needed" if person else ""))
            # After every fault: an interrupted run still reports what it did.
            write(rows, args, time.monotonic() - started, len(acked_times(runner)))
    finally:
        runner.run("client", ["touch", "/tmp/stop-probe"])
        checker.stop()
    bench.fresh()


def write(rows, args, seconds, acked):
    md = ["# Chaos run", "",
          "Generated by `make chaos` (`benchmarks/chaos.py`, seed %d) on %s: %s, %d CPUs, %s. %d faults in %.0f min; "
          "%d writes acknowledged." % (args.seed, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                      platform.node(), os.cpu_count(), platform.platform(), sum(r["faults"] for r in rows.values()),
                                      seconds / 60, acked), "",
          "A cluster of 3 pods (10.11) with `mariadb_autopilot=true` and its defaults. A client pod writes one row",
          "through `mysql-primary` every 50 ms (a new connection each time) and records each acknowledged write; a",
          "checker in the same pod asks every pod whether it is writable every 100 ms. Each fault hits the recorded",
          "primary; frozen and cut-off pods are healed once another pod is the primary. A fault's acknowledged",
          "writes lost are the acknowledged rows missing on the primary after it that were not missing before.", "",
          "| fault | times | acknowledged writes lost | samples with two writable pods | seconds without an acknowledged "
          "write (median, worst) | rebuild.yml needed |", "|---|---|---|---|---|---|"]
    for kind, row in sorted(rows.items()):
        gaps = sorted(row["gaps"])
        md.append("| %s | %d | %d | %d | %.1f, %.1f | %d |" % (kind, row["faults"], row["lost"], row["two writable"],
                                                               gaps[len(gaps) // 2], gaps[-1], row["person"]))
    with open(os.path.join(ROOT, "docs", "chaos.md"), "w") as handle:
        handle.write("\n".join(md) + "\n")


main()
