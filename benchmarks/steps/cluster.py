"""Step all: deploy.yml against kubectl apply of the same manifests, a no-op
re-run and the verify module on 5 pods, catch-up after a burst, scale-out by
data size against a raw copy, and what durable commits cost; docs/benchmarks.md
and docs/benchmarks-scale-out.png."""
import datetime
import os
import platform
import shutil
import tempfile
import time

from benchmarks.bench import NS, commits_per_second, fill, kubectl, log, playbook, profiled, timed
from tests.harness import ROOT, pod_exec, sql, wait_until

SIZES_MIB = (256, 512, 1024)
# Scale-out against a raw copy: no NetworkPolicy, no TLS on either side.
PLAIN = {"mariadb_network_policy": False, "mariadb_tls": False}
RELAXED = {"sync_binlog": 0, "innodb_flush_log_at_trx_commit": 2}


# 1. deploy.yml against the same manifests applied with kubectl.
def deploy_vs_plain(bench):
    manifests = tempfile.mkdtemp(prefix="manifests-")
    # Both without TLS: the rendered manifests need a TLS Secret made by
    # hand, and kubectl has no certificate generator.
    playbook("render.yml", render_dir=manifests, mariadb_tls=False)
    ours, plain = [], []
    for run in range(bench.runs):
        log("deploy run %d/%d" % (run + 1, bench.runs))
        bench.fresh()
        ours.append(profiled("deploy.yml", mariadb_tls=False))
        bench.fresh()
        plain.append(timed(plain_deploy, bench, manifests))
    bench.record_profiled("deploy 3 pods: deploy.yml", ours)
    bench.record("deploy 3 pods: kubectl apply", plain)
    shutil.rmtree(manifests)


def plain_deploy(bench, manifests):
    kubectl("apply", "-f", os.path.join(manifests, "namespace.yml"))
    with tempfile.NamedTemporaryFile("w") as env:
        for key in ("root-password", "replication-password", "backup-password", "clone-token"):
            env.write("%s=%s\n" % (key, os.urandom(16).hex()))
        env.flush()
        kubectl("create", "secret", "generic", "mysql-credentials", "--from-env-file=" + env.name)
    kubectl("apply", "-f", manifests)
    kubectl("rollout", "status", "statefulset/mysql", "--timeout=600s")
    admin = pod_exec(bench.api, NS, "mariadb")
    cli = ["mariadb", "--defaults-file=/etc/mysql/cluster/my.cnf", "--protocol=socket", "--user=mysql", "-N", "-e"]
    admin.run("mysql-0", cli + ["CREATE DATABASE plain; CREATE TABLE plain.t (id INT PRIMARY KEY); INSERT INTO plain.t VALUES (1)"])
    for pod in ("mysql-1", "mysql-2"):
        wait_until("row on " + pod, lambda: admin.run(pod, cli + ["SELECT COUNT(*) FROM plain.t"]).strip() == "1",
                   timeout=60, interval=0.1)


# 2. A no-op re-run on 5 pods, and 6. the verify module on 5 pods.
def noop_and_verify(bench):
    bench.fresh()
    first = timed(playbook, "deploy.yml", replicas=5)
    bench.record("first deploy, 5 pods", [first])
    bench.record_profiled("no-op re-run, 5 pods", [profiled("deploy.yml", replicas=5) for _ in range(bench.runs)])
    bench.record("verify module, 5 pods", [profiled("verify.yml", replicas=5)[1]["verify: Check replication on every pod."]
                                          for _ in range(bench.runs)])


# 5. Catch-up after a burst of 100,000 rows (100 transactions of 1,000).
def catch_up(bench):
    runner = bench.client()
    samples = []
    for run in range(bench.runs):
        sql(runner, "mysql-primary", "CREATE DATABASE IF NOT EXISTS burst; DROP TABLE IF EXISTS burst.t%d; "
            "CREATE TABLE burst.t%d (id INT PRIMARY KEY, v VARCHAR(64))" % (run, run))
        body = " ".join("INSERT INTO burst.t%d SELECT seq, MD5(seq) FROM burst.seq_%d_to_%d;" % (run, i * 1000 + 1, (i + 1) * 1000)
                        for i in range(100))
        sql(runner, "mysql-primary", body)
        burst_end = time.monotonic()
        target = sql(runner, "mysql-0.mysql", "SELECT @@gtid_binlog_pos")
        wait_until("replicas caught up", lambda: all(
            sql(runner, "mysql-%d.mysql" % i, "SELECT @@gtid_slave_pos") == target and
            sql(runner, "mysql-%d.mysql" % i, "SELECT COUNT(*) FROM burst.t%d" % run) == "100000"
            for i in range(1, 5)), timeout=300, interval=0.05)
        samples.append(time.monotonic() - burst_end)
    bench.record("catch-up after 100,000 rows", samples)


# 7. What durable commits cost: single-row autocommit inserts through
# mysql-primary, with the defaults (sync_binlog = 1,
# innodb_flush_log_at_trx_commit = 1) and with both relaxed. One run each.
def durability(bench, rows=5000):
    for label, settings in (("durable", {}), ("relaxed", RELAXED)):
        bench.fresh()
        playbook("deploy.yml", replicas=1, mariadb_server_settings=settings)
        runner = bench.client()
        sql(runner, "mysql-primary", "CREATE DATABASE d")
        bench.record("single-row commits, %s" % label, [commits_per_second(runner, "d.t", rows)], unit=" rows/s")


# 3. and 4. Scale-out 3 -> 5 by data size; clone vs raw copy at 1 GiB.
# The raw copy uses port 3399, which the NetworkPolicy (enforced on the
# local cluster) refuses, and plain TCP: measured without either, the
# clone too (TLS costs are step 9's).
def scale_out(bench):
    bench.fresh()
    playbook("deploy.yml", replicas=3, **PLAIN)
    runner = bench.client()
    rows = 0
    for size in SIZES_MIB:
        rows = fill(runner, rows, size)
        samples, clones = [], []
        for run in range(bench.runs):
            log("scale-out at %d MiB, run %d/%d" % (size, run + 1, bench.runs))
            samples.append(timed(playbook, "deploy.yml", replicas=5, **PLAIN))
            clones.append(bench.clone_seconds("mysql-3"))
            if size == SIZES_MIB[-1] and run == bench.runs - 1:
                bench.record("raw copy mysql-2 -> mysql-3 (tar through socat), %d MiB" % size,
                            [raw_copy(bench) for _ in range(bench.runs)])
            playbook("deploy.yml", replicas=3, **PLAIN)
            for pod in ("mysql-3", "mysql-4"):
                bench.core.delete_namespaced_persistent_volume_claim("data-" + pod, NS)
            wait_until("claims gone", lambda: len(bench.core.list_namespaced_persistent_volume_claim(NS).items) == 3)
        bench.record("scale-out 3 -> 5, %d MiB" % size, samples)
        bench.record("clone of mysql-3 (stream + prepare), %d MiB" % size, clones)


def raw_copy(bench):
    """tar of mysql-2's datadir through socat into mysql-3, the same TCP path as the clone."""
    donor, receiver = pod_exec(bench.api, NS, "sidecar"), pod_exec(bench.api, NS, "sidecar")
    donor.run("mysql-2", ["bash", "-c", "setsid bash -c 'tar -C /var/lib/mysql -cf - . | socat -u - TCP-LISTEN:3399,reuseaddr' "
                          "</dev/null >/dev/null 2>&1 &"])
    time.sleep(1)
    started = time.monotonic()
    receiver.run("mysql-3", ["bash", "-c", "rm -rf /var/lib/mysql/.raw && mkdir /var/lib/mysql/.raw && "
                             "socat -u TCP:mysql-2.mysql:3399 - | tar -C /var/lib/mysql/.raw -xf - && sync"], timeout=900)
    seconds = time.monotonic() - started
    receiver.run("mysql-3", ["rm", "-rf", "/var/lib/mysql/.raw"])
    return seconds


def write(bench):
    md = ["# Benchmarks", "",
          "Generated by `make benchmark` (benchmarks) on %s: %s, %d CPUs, %s. Median of %d runs "
          "unless noted; min and max beside it." % (
              datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), platform.node(),
              os.cpu_count(), platform.platform(), bench.runs), "",
          "| measurement | median | min | max | runs |", "|---|---|---|---|---|"]
    md += [bench.measurement_row(name) for name in bench.results]
    md += ["", "## Ratios and targets", "", "| ratio | measured | target |", "|---|---|---|"]
    for name, measured, target in ratios(bench):
        md.append("| %s | %.2f | %s |" % (name, measured, target))
    md += ["", "![scale-out time by data size](benchmarks-scale-out.png)", ""]
    for name, (seconds, profile) in bench.profiles.items():
        md += profile_table(name, seconds, profile)
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as handle:
        handle.write("\n".join(md) + "\n" + NOTES)
    plot(bench)


def profile_table(name, seconds, profile, shown=0.3):
    """Where the time of one run went: the tasks over `shown` seconds, the rest summed."""
    md = ["## Where the time goes: %s (the median run, %.2f s)" % (name, seconds), "",
          "| task (role: name) | seconds |", "|---|---|"]
    big = sorted(((t, s) for t, s in profile.items() if s >= shown), key=lambda item: -item[1])
    md += ["| %s | %.2f |" % (task, task_seconds) for task, task_seconds in big]
    small = [s for s in profile.values() if s < shown]
    md += ["| %d other tasks (assertions, facts, reports) | %.2f |" % (len(small), sum(small)),
           "| ansible-playbook start-up, inventory, plugin loading | %.2f |" % (seconds - sum(profile.values())), ""]
    return md


def ratios(bench):
    big = SIZES_MIB[-1]
    return [
        ("deploy.yml / kubectl apply (3 pods, verified)",
         bench.median("deploy 3 pods: deploy.yml") / bench.median("deploy 3 pods: kubectl apply"), "≤ 1.15"),
        ("no-op re-run / first deploy (5 pods)",
         bench.median("no-op re-run, 5 pods") / bench.median("first deploy, 5 pods"), "≤ 0.15"),
        ("clone / raw copy (%d MiB)" % big,
         bench.median("clone of mysql-3 (stream + prepare), %d MiB" % big)
         / bench.median("raw copy mysql-2 -> mysql-3 (tar through socat), %d MiB" % big), "≤ 1.1"),
        ("verify module, 5 pods (seconds)", bench.median("verify module, 5 pods"), "≤ 3"),
        ("durable / relaxed commits per second (sync_binlog, innodb_flush_log_at_trx_commit 1 vs 0, 2)",
         bench.median("single-row commits, durable") / bench.median("single-row commits, relaxed"), "(cost, no target)"),
    ]


def plot(bench):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = [bench.median("scale-out 3 -> 5, %d MiB" % s) for s in SIZES_MIB]
    clones = [bench.median("clone of mysql-3 (stream + prepare), %d MiB" % s) for s in SIZES_MIB]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(SIZES_MIB, medians, "o-", label="scale-out 3 → 5, both verified")
    ax.plot(SIZES_MIB, clones, "s--", label="one clone (stream + prepare)")
    ax.set_xlabel("data on the primary (MiB)")
    ax.set_ylabel("seconds (median)")
    ax.set_xticks(SIZES_MIB)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "benchmarks-scale-out.png"), dpi=100)
NOTES = """
## Notes

- deploy.yml does more than `kubectl apply`: it validates every input, checks that the API answers
  and that the image is not older than the running one, creates the Secret only when it is missing,
  and verifies replication with a sentinel row on every replica. The kubectl baseline applies the
  manifests rendered once by `render.yml`, creates the Secret, waits for `rollout status` and
  checks one row on the two replicas.
- Scale-out waits for both new pods, one after the other (OrderedReady): mysql-4 clones mysql-3
  only once mysql-3 is Ready. The clone grows linearly with the data (about 11 s per GiB here); the
  rest is pod start-up (five containers started one after another, about a second each on this
  machine), replication start and the verification.
- Clone versus raw copy: mariadb-backup streams fewer bytes than a tar of the datadir (no redo log
  file, no relay logs) and the raw copy also waits for `sync`, so the clone is faster.

## What was tried, and what it gave

The first measurement (same machine, earlier the same day): deploy.yml / kubectl apply 1.57, no-op
re-run 0.26 of a first deploy (15.5 s of 59 s), verify module 2.33 s, scale-out 3 -> 5 at 256 MiB
38.5 s. Each kubernetes.core task was a module run of 0.7-1.1 s: Python start with Ansible's
module_utils (0.3 s, as for ansible.builtin.stat), the kubernetes client import (0.4 s), the calls.

- Fewer module runs, 14 -> 7 per re-run (8 on a first deploy): one read of the StatefulSet checks
  the API and the running version (the kubeconfig check became a Jinja test), the configmap and
  services roles apply their manifests in one call each, PVCs are listed only when a run scales in.
- The rollout wait is a module (`statefulset_wait`) that watches the pods and returns on the event
  that completes the rollout, instead of a `k8s_info` module run every 2 s.
- kubernetes client 37.0.2 -> 34.1.0: 37.x builds its API classes with pydantic on import, so
  importing CoreV1Api took 1.3-1.5 s instead of 0.4-0.5 s in every run of our modules (the verify
  module on 5 pods: 2.33 -> 1.65 s).
- Startup probes every second, and one on the sidecar: each pod is Ready sooner (once a container
  counts as started, the kubelet triggers its readiness probe at once instead of at the next
  period). This shortens every deploy and
  scale-out, on both sides of the deploy ratio.
- Ansible settings: fact gathering was already off (`gathering = explicit`); pipelining gave nothing
  for the local connection (0.3 s per trivial task either way); the controller is idle while a
  module waits, so `internal_poll_interval` changes nothing.
- The local cluster's StorageClass binds volumes when the pod is scheduled: with Immediate binding
  one benchmark run lost 5 minutes to the scheduler's unschedulable-pod requeue.

## Targets missed: the measured limit

- **deploy.yml / kubectl apply (target 1.15).** The pods take the same 21-24 s on both sides; the
  difference is the module runs around that wait (see the profile above): eight runs of a
  kubernetes.core-based module at 0.8-1.1 s each, against four kubectl calls of 0.1-0.6 s. Each run
  left is one thing kubectl apply does not do or one role's apply: the read before any change, the
  Secret's read and its creation (a Secret cannot be read together with a StatefulSet, and creating
  it blind would overwrite the passwords), one apply each for the ConfigMaps, the Services and the
  StatefulSet, and the verification. 1.15 would need about 6 s less, that is the verification and
  several roles' applies gone: what makes deploy.yml worth running.
- **No-op re-run / first deploy (target 0.15).** Seven module runs (the Secret exists), with
  nothing to wait for, plus 0.7 s of Ansible start-up and 0.7 s of assertions and reports. The first deploy got
  faster too (59 -> 47 s), so 15% is now about 7 s: one and a half module runs less than measured.
  A re-run still applies every object (drift is corrected) and proves replication; skipping either
  would meet the number and lose the point. Not done: skipping the rollout wait when the apply
  changed nothing and the status read at the start showed the rollout complete (about 1 s).
"""
