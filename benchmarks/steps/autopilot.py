"""Step autopilot: with the autopilot on, from a fault of the primary to the
first acknowledged write, the longest time without one while an evicted
primary hands over, and what the watcher costs; docs/benchmarks-autopilot.md."""
import re
import subprocess
import time

from kubernetes import client

from benchmarks.bench import BASE, NS, log, playbook
from benchmarks.steps.primary import first_write_after, longest_gap, start_probe_writer
from tests.harness import freeze, pod_exec, pod_freezer, run_playbook, server_pid, sql, wait_until

FROZEN = []  # freezer cgroups of the pods freeze_pod() paused, thawed once failed over


def kill(bench, pod):
    subprocess.run(["kill", "-KILL", server_pid(bench.core, NS, pod)], check=True)


def delete_at_once(bench, pod):
    bench.core.delete_namespaced_pod(pod, NS, grace_period_seconds=0)


def freeze_pod(bench, pod):
    FROZEN.append(pod_freezer(bench.core, NS, pod))
    freeze(FROZEN[-1])


FAULTS = {
    "mariadbd killed (SIGKILL from the node)": kill,
    "pod deleted at once (grace period 0, no preStop)": delete_at_once,
    "pod frozen (every container paused from the node; thawed once failed over)": freeze_pod,
}
COST_SECONDS = 120


def recorded_primary(bench):
    return bench.core.read_namespaced_config_map("mysql-topology", NS).data["primary"]


def settle(bench):
    """Every pod back and replicating before the next fault: the old primary
    restarts, then the autopilot points it at the new one."""
    wait_until("every pod replicating (verify.yml)",
               lambda: run_playbook("verify.yml", dict(BASE, replicas=3)).rc == 0, timeout=120, interval=5)


# 10. The autopilot: each fault of FAULTS hits the recorded primary while a
# client writes every 50 ms; measured: the longest time without an
# acknowledged write around the fault (from the last write before it to the
# first after). Then the primary is evicted (kubectl drain's way):
# the longest time without an acknowledged write. Then the watcher's cost
# over COST_SECONDS of a healthy cluster: CPU and memory of the leading
# copy (its cgroup), API requests a minute (its own count).
def autopilot_cost(bench):
    bench.fresh()
    playbook("deploy.yml", replicas=3, mariadb_autopilot=True)
    runner = bench.client()
    sql(runner, "mysql-primary", "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY, at DOUBLE)")
    start_probe_writer(runner)
    for name, inject in FAULTS.items():
        for run in range(bench.runs):
            log("%s, run %d/%d" % (name, run + 1, bench.runs))
            time.sleep(3)
            old = recorded_primary(bench)
            started = time.time()
            inject(bench, old)
            if FROZEN:  # thawed only once another pod is the primary
                wait_until("a new primary recorded", lambda: recorded_primary(bench) != old, timeout=60, interval=0.2)
                for freezer in FROZEN:
                    freeze(freezer, "THAWED")
                FROZEN.clear()
            first_write_after(bench, runner, started + 1)
            time.sleep(2)
            # From the last write acknowledged before the fault to the first after it.
            bench.add(name, longest_gap(bench, runner, started, time.time()))
            settle(bench)
    gaps = []
    for run in range(bench.runs):
        old = recorded_primary(bench)
        started = time.time()
        bench.core.create_namespaced_pod_eviction(old, NS, client.V1Eviction(metadata=client.V1ObjectMeta(name=old, namespace=NS)))
        wait_until("the primary handed over", lambda: recorded_primary(bench) != old, timeout=60, interval=0.2)
        time.sleep(3)
        gaps.append(longest_gap(bench, runner, started, time.time()))
        settle(bench)
    bench.record("eviction of the primary: longest time without an acknowledged write", gaps)
    runner.run("client", ["touch", "/tmp/stop-probe"])
    for name in FAULTS:
        bench.record(name, bench.results[name][0])
    watcher_cost(bench)


def watcher_cost(bench):
    pod = client.CoordinationV1Api(bench.api).read_namespaced_lease("mysql-autopilot", NS).spec.holder_identity
    log("the watcher's cost: %s over %d s" % (pod, COST_SECONDS))
    watcher = pod_exec(bench.api, NS, "autopilot")

    def cgroup(v2, v1):
        """A file of the container's cgroup: cgroup v2's, else v1's."""
        return watcher.run(pod, ["sh", "-c", 'cat "/sys/fs/cgroup/$0" 2>/dev/null || cat "/sys/fs/cgroup/$1"', v2, v1])

    def cpu_seconds():
        usage = cgroup("cpu.stat", "cpuacct/cpuacct.usage")
        found = re.search(r"^usage_usec (\d+)", usage, re.M)
        return int(found.group(1)) / 1e6 if found else int(usage) / 1e9

    before, started = cpu_seconds(), time.monotonic()
    time.sleep(COST_SECONDS)
    bench.record("watcher CPU (the leading copy)", [(cpu_seconds() - before) / (time.monotonic() - started) * 1000],
                 unit="millicores")
    bench.record("watcher memory (the leading copy)", [int(cgroup("memory.current", "memory/memory.usage_in_bytes")) / 2 ** 20], unit="MiB")
    counts = [int(n) for n in re.findall(r"^cost: (\d+) API requests in the last \d+ s$",
                                         bench.core.read_namespaced_pod_log(pod, NS), re.M)]
    bench.record("watcher API requests a minute (the leading copy)", counts[-2:], unit="")


def write_autopilot(bench):
    faults = list(FAULTS)
    bench.write_step("autopilot", "the autopilot", [
        "A cluster of 3 pods (10.11) with `mariadb_autopilot=true` and its defaults. A client pod writes",
        "one row through `mysql-primary` every 50 ms, a new connection each time, and records when each",
        "write was acknowledged. Each fault hits the recorded primary; the cluster settles (verify.yml)",
        "before the next. The eviction is what `kubectl drain` does to the primary's pod."],
        faults + [n for n in bench.results if n.startswith(("eviction of the primary", "watcher "))], [
        ("%s: median seconds without an acknowledged write" % name, bench.median(name), "≤ 10") for name in faults] + [
        ("%s: worst" % name, max(bench.results[name][0]), "≤ 20") for name in faults] + [
        ("eviction of the primary: longest time without an acknowledged write (seconds)",
         bench.median("eviction of the primary: longest time without an acknowledged write"), "≤ 1"),
    ])
