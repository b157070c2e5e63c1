"""Step backup: a backup against a raw copy to the same object store,
restore.yml per GiB, and single-row commits during a backup;
docs/benchmarks-backup.md."""
import datetime
import json
import os
import re
import subprocess
import threading
import time

from benchmarks.bench import BASE, commits_per_second, fill, log, playbook
from tests.e2e import object_store
from tests.harness import ROOT, pod_exec, run_playbook, sql, start_client, wait_until

# Step backup: its own namespaces (the source cluster and the restored one),
# the store Secret's name in both, and the data backed up (--backup-mib).
BACKUP_NS, RESTORE_NS = "bench-backup", "bench-restore"
STORE_SECRET = "backup-store"
BACKUP_MIB = 256
BACKUP_REPLICAS = 3
# The write-impact options compared (mariadb_backup_throttle: mariadb-backup's
# --throttle, read-and-write operations a second, 0 unlimited), each a backup's time and
# the commits during it; the first is also restored.
THROTTLES = (0, 40, 20, 10)
# backup.yml's "Report the backup." message: its id, donor and the manifest's seconds.
BACKUP_REPORT = re.compile(r"Backup (\d{8}T\d{6}Z-[a-z0-9]+) of \S+: .*? from (\S+) \(MariaDB .*? in (\d+) s\.")


def throttled(throttle):
    return "throttle %d" % throttle if throttle else "no throttle"


def backup_names(mib):
    """The measurements of step backup, by key; per throttle (THROTTLES),
    ("backup", t) and ("busy", t)."""
    names = {
        "backup": "backup of %d MiB: mariadb-backup to the store (the donor's log)" % mib,
        "raw": "raw copy of the donor's datadir to the store (tar into rclone rcat)",
        "backup.yml": "backup.yml (wall time)",
        "backup size": "backup size",
        "raw size": "raw copy size (the whole datadir)",
        "restore.yml": "restore.yml into 1 pod (wall time)",
        "restore job": "restore Job: restore.sh, restored in",
        "received": "restore Job: download and extract (backup received in)",
        "quiet": "single-row commits, %d pods, no backup" % BACKUP_REPLICAS,
        "busy": "single-row commits, %d pods, during a backup" % BACKUP_REPLICAS,
    }
    names["discarded"] = "mariadb-backup on the donor, its stream discarded (no store)"
    names["busy discarded"] = "single-row commits, %d pods, during a backup whose stream is discarded" % BACKUP_REPLICAS
    for throttle in THROTTLES[1:]:
        names["backup", throttle] = "%s, %s" % (names["backup"], throttled(throttle))
        names["busy", throttle] = "%s, %s" % (names["busy"], throttled(throttle))
    names["backup", 0], names["busy", 0] = names["backup"], names["busy"]
    return names


def log_time(stamp):
    """Epoch seconds of a kubelet log timestamp (RFC 3339, nanoseconds, UTC)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return (datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
            + float("0." + (fraction or "0")))


# 10. Backups to the object store (versitygw of tests/e2e/object_store.py,
# in namespace object-store), 3 pods in BACKUP_NS filled to `mib`: a
# backup against a raw copy of the same donor's datadir to the same
# store; restore.yml of it into RESTORE_NS (1 pod) per GiB of backup;
# single-row commits through mysql-primary without and during a backup.
def backup_cost(bench, mib=BACKUP_MIB):
    bench.backup_mib = mib
    names = backup_names(mib)
    store = object_store.deploy(bench.api)
    # Its own place in the shared bucket, emptied at the end.
    prefix = "bench-backup-%s-%s/" % (time.strftime("%Y%m%d%H%M%S"), os.urandom(3).hex())
    source = {"mariadb_namespace": BACKUP_NS, "mariadb_backup_store_secret": STORE_SECRET}
    runner = None
    try:
        for namespace in (BACKUP_NS, RESTORE_NS):
            bench.teardown(namespace)
            bench.ensure_namespace(namespace)
            store.store_secret(namespace, STORE_SECRET, prefix=prefix)
        log("deploying 3 pods in %s, backups to %s/%s" % (BACKUP_NS, store.bucket, prefix))
        playbook("deploy.yml", replicas=BACKUP_REPLICAS, **source)
        runner = start_client(bench.core, bench.api, BACKUP_NS)
        rows = fill(runner, 0, mib)
        sql(runner, "mysql-primary", "CREATE DATABASE b")
        window = None
        for run in range(bench.runs):
            log("backup run %d/%d" % (run + 1, bench.runs))
            backup = take_backup(bench)
            log("backup %s from %s: %.1f MiB in %.2f s (manifest: %d s), backup.yml %.1f s" % (
                backup["id"], backup["donor"], backup["size"] / 2 ** 20, backup["seconds"],
                backup["manifest_seconds"], backup["wall"]))
            bench.add(names["backup"], backup["seconds"])
            bench.add(names["backup.yml"], backup["wall"])
            bench.add(names["backup size"], backup["size"] / 2 ** 20, " MiB")
            raw_seconds, raw_size = raw_copy_to_store(bench, backup["donor"])
            log("raw copy from %s: %.1f MiB in %.2f s" % (backup["donor"], raw_size / 2 ** 20, raw_seconds))
            bench.add(names["raw"], raw_seconds)
            bench.add(names["raw size"], raw_size / 2 ** 20, " MiB")
            wall, job, received = restore(bench, backup["id"], rows)
            log("restore of %s: restore.yml %.1f s, restore.sh %d s (received in %d s)" % (backup["id"], wall, job, received))
            bench.add(names["restore.yml"], wall)
            bench.add(names["restore job"], job)
            bench.add(names["received"], received)
            if window is None:
                # About 60% of a backup, so that the backup outlasts the measurement.
                pilot = commits_per_second(runner, "b.pilot", 300)
                window = max(100, int(pilot * 0.6 * backup["seconds"]))
                log("commits: %.0f rows/s without a backup; measuring %d rows" % (pilot, window))
            bench.add(names["quiet"], commits_per_second(runner, "b.quiet%d" % run, window), " rows/s")
            bench.add(names["busy"], commits_during_backup(bench, runner, "b.busy%d" % run, window), " rows/s")
            seconds, rate = commits_during_discarded_backup(bench, runner, backup["donor"], "b.discard%d" % run, window)
            bench.add(names["discarded"], seconds)
            bench.add(names["busy discarded"], rate, " rows/s")
            for throttle in THROTTLES[1:]:
                slow = take_backup(bench, throttle)
                log("backup %s, %s: %.2f s" % (slow["id"], throttled(throttle), slow["seconds"]))
                bench.add(names["backup", throttle], slow["seconds"])
                bench.add(names["busy", throttle], commits_during_backup(
                    bench, runner, "b.busy%d_%d" % (run, throttle), window, throttle=throttle), " rows/s")
        for name in dict.fromkeys(names.values()):
            bench.record(name, *bench.results[name])
    finally:
        if runner:
            bench.core.delete_namespaced_pod("client", BACKUP_NS, grace_period_seconds=0)
        for namespace in (BACKUP_NS, RESTORE_NS):
            bench.teardown(namespace)
            if bench.core.list_namespaced_secret(namespace, field_selector="metadata.name=" + STORE_SECRET).items:
                bench.core.delete_namespaced_secret(STORE_SECRET, namespace)
        left = store.list(prefix)
        for key in left:
            store.delete(key)
        log("deleted the %d objects under %s/%s" % (len(left), store.bucket, prefix))


def take_backup(bench, throttle=0):
    """backup.yml; the backup's time from the donor's log, its size from the manifest's line there."""
    result = playbook("backup.yml", mariadb_namespace=BACKUP_NS, mariadb_backup_throttle=throttle)
    # The callback folds the message over lines.
    report = BACKUP_REPORT.search(" ".join(result.output.split()))
    assert report, "no backup report in backup.yml's output:\n" + result.output[-3000:]
    backup_id, donor = report.group(1), report.group(2)
    started, finished, size = backup_stream(bench, donor, backup_id)
    assert started and finished, "backup %s is not in the log of %s's sidecar" % (backup_id, donor)
    return {"id": backup_id, "donor": donor, "seconds": finished - started, "size": size,
            "manifest_seconds": int(report.group(3)), "wall": result.seconds}


def backup_stream(bench, pod, backup_id):
    """(started, finished, bytes) of backup_id in pod's sidecar log, by the kubelet's
    timestamps: backup-to-store.sh's line before mariadb-backup starts and its line
    once the manifest is written. finished and bytes are None while it runs."""
    started = finished = size = None
    text = bench.core.read_namespaced_pod_log(pod, BACKUP_NS, container="sidecar", timestamps=True)
    for line in text.splitlines():
        stamp, _, message = line.partition(" ")
        if re.search(r"\] backup %s: streaming to " % backup_id, message):
            started = log_time(stamp)
        done = re.search(r"\] backup %s: (\d+) bytes at GTID \S* in \d+s$" % backup_id, message)
        if done:
            finished, size = log_time(stamp), int(done.group(1))
    return started, finished, size


def streaming_backups(bench):
    """{(pod, backup id)} of the backups the pods' sidecars have started."""
    found = set()
    for ordinal in range(BACKUP_REPLICAS):
        pod = "mysql-%d" % ordinal
        text = bench.core.read_namespaced_pod_log(pod, BACKUP_NS, container="sidecar", tail_lines=200)
        found.update((pod, backup_id) for backup_id in re.findall(r"\] backup (\d{8}T\d{6}Z-[a-z0-9]+): streaming to ", text))
    return found


def raw_copy_to_store(bench, donor):
    """tar of the donor's datadir into the store, as backup-to-store.sh uploads (rclone
    rcat, the same chunk size), timed in the pod; the object is deleted. (seconds, bytes)."""
    out = pod_exec(bench.api, BACKUP_NS, "sidecar").run(donor, ["bash", "-c", (
        ". /opt/mariadb-k8s/common.sh; . /opt/mariadb-k8s/store.sh; raw=$(store_root)/bench/raw.tar; "
        "start=$(date +%s.%N); "
        "tar -C /var/lib/mysql -cf - . | store rcat --s3-chunk-size \"$STORE_CHUNK_SIZE\" \"$raw\" || exit 1; "
        "end=$(date +%s.%N); "
        "size=$(store lsjson --stat \"$raw\" | sed -n 's/.*\"Size\": *\\([0-9]*\\).*/\\1/p'); "
        "store deletefile \"$raw\"; echo \"$start $end $size\"")], timeout=1800)
    start, end, size = out.split()
    return float(end) - float(start), int(size)


def restore(bench, backup_id, rows):
    """restore.yml of backup_id into RESTORE_NS (1 pod), checked and torn down:
    (its wall time, restore.sh's 'restored in' and 'backup received in' seconds)."""
    result = run_playbook("restore.yml", dict(
        BASE, mariadb_namespace=RESTORE_NS, mariadb_backup_store_secret=STORE_SECRET, replicas=1,
        source=BACKUP_NS + "/mysql", backup=backup_id), verbosity=1).check()
    # -v prints the restore Job's log lines (the k8s_log result of roles/backup/tasks/job.yml).
    job, received = re.search(r"restored in (\d+)s", result.output), re.search(r"backup received in (\d+)s", result.output)
    assert job and received, "no restore.sh timings in restore.yml's output:\n" + result.output[-3000:]
    admin = pod_exec(bench.api, RESTORE_NS, "mariadb")
    restored = admin.run("mysql-0", ["mariadb", "--defaults-file=/etc/mysql/cluster/my.cnf", "--protocol=socket",
                                     "--user=mysql", "-N", "-e", "SELECT COUNT(*) FROM fill.t"]).strip()
    assert restored == str(rows), "the restored fill.t holds %s rows, the backup %d" % (restored, rows)
    bench.teardown(RESTORE_NS)
    return result.seconds, int(job.group(1)), int(received.group(1))


def commits_during_backup(bench, runner, table, rows, attempts=3, throttle=0):
    """commits_per_second() while backup.yml's backup streams: started once a donor logs
    the stream's start, kept only when that backup was still streaming at its end."""
    for attempt in range(attempts):
        seen = streaming_backups(bench)
        busy = subprocess.Popen(["ansible-playbook", "backup.yml", "-e", json.dumps(dict(
            BASE, mariadb_namespace=BACKUP_NS, mariadb_backup_throttle=throttle))],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def started():
                assert busy.poll() is None, "backup.yml ended before a donor logged a backup"
                return next(iter(streaming_backups(bench) - seen), None)
            pod, backup_id = wait_until("a backup streaming", started, timeout=300, interval=0.2)
            rate = commits_per_second(runner, "%s_%d" % (table, attempt), rows)
            running = backup_stream(bench, pod, backup_id)[1] is None
            output = busy.communicate(timeout=1800)[0]
        finally:
            if busy.poll() is None:
                busy.kill()
                busy.wait()
        assert busy.returncode == 0, output[-6000:]
        if running:
            return rate
        log("backup %s ended before the %d rows did (attempt %d/%d): again with %d" % (
            backup_id, rows, attempt + 1, attempts, rows // 2))
        rows = max(20, rows // 2)
    raise RuntimeError("no backup outlasted the commit measurement in %d attempts" % attempts)


def commits_during_discarded_backup(bench, runner, donor, table, rows):
    """(seconds of one backup, commits per second) with the donor's
    mariadb-backup run with backup-to-store.sh's options and its stream
    thrown away: the backup's own cost, without the upload's and the store's
    (which here shares the node's disk and cores). The data is in the page
    cache, so one such backup is short: the commits are measured while the
    donor runs them back to back."""
    backup = ("mariadb-backup --defaults-file=$CNF --protocol=socket --user=mysql --backup --slave-info "
              "--stream=mbstream --target-dir=$work --tmpdir=$work --parallel=2 2>$work/log >/dev/null "
              "|| { tail -n 5 $work/log >&2; exit 1; }; rm -rf $work/*")
    donor_exec = pod_exec(bench.api, BACKUP_NS, "sidecar")
    prelude = ". /opt/mariadb-k8s/common.sh; work=/tmp/bench-discard; rm -rf $work /tmp/bench-stop; mkdir -p $work; "
    seconds = float(donor_exec.run(donor, ["bash", "-c", prelude + "start=$(date +%s.%N); " + backup + "; "
                                           "awk -v s=$start -v e=$(date +%s.%N) 'BEGIN { print e - s }'"], timeout=1800))
    done = {}
    loop = threading.Thread(target=lambda: done.update(count=donor_exec.run(donor, ["bash", "-c", (
        prelude + "n=0; until [ -e /tmp/bench-stop ]; do " + backup + "; n=$((n + 1)); done; echo $n")], timeout=1800)))
    loop.start()
    time.sleep(0.5)
    rate = commits_per_second(runner, table, rows)
    running = loop.is_alive()
    donor_exec.run(donor, ["touch", "/tmp/bench-stop"])
    loop.join()
    assert running and int(done["count"]) > 0, "the donor's backups stopped before the commit measurement did: %s" % done
    log("discarded backups on %s: %.2f s each, %s run during %d commits at %.0f rows/s" % (
        donor, seconds, done["count"].strip(), rows, rate))
    return seconds, rate


def write_backup(bench):
    mib, names = bench.backup_mib, backup_names(bench.backup_mib)
    gib = bench.median(names["backup size"]) / 1024
    backup_rate = bench.median(names["backup size"]) / bench.median(names["backup"])
    raw_rate = bench.median(names["raw size"]) / bench.median(names["raw"])
    bench.write_step("backup", "backups to object storage and restores", [
        "A cluster of %d pods (10.11) in `%s`, deployed with `mariadb_backup_store_secret`, filled to %d MiB;" % (
            BACKUP_REPLICAS, BACKUP_NS, mib),
        "its backups go to versitygw (tests/e2e/object_store.py) in namespace object-store, on the same node.", "",
        "- Backup: `backup.yml`; the backup's own time is the donor's (a replica's) sidecar log, the kubelet's",
        "  timestamps of backup-to-store.sh's line before mariadb-backup starts and of its line once the",
        "  manifest is written (the manifest's finished - started, in whole seconds, is the same interval).",
        "  backup.yml's wall time adds the play, the Job's pod and the retention pass.",
        "- Raw copy: from the same donor's sidecar, `tar` of /var/lib/mysql into `rclone rcat` to the same",
        "  store with the same chunk size, timed in the pod. It moves the whole datadir (redo log, relay and",
        "  binary logs included), the backup what mariadb-backup streams: the sizes are in the table, and",
        "  the throughput ratio below compares bytes per second.",
        "- Restore: `restore.yml -e backup=<id>` into `%s`, 1 pod: its wall time (the catalog Job, the" % RESTORE_NS,
        "  restore Job, the pod's start, the verification) and restore.sh's own `restored in` (download with",
        "  its sha256, extract, prepare, the server's start on the data, the move into the datadir; whole",
        "  seconds), per GiB of backup. The restored table's row count is checked.",
        "- Writes: single-row commits through `mysql-primary` on one connection, the same number of rows",
        "  (about 60% of a backup's time), without a backup and while backup.yml's backup streams: the",
        "  measurement starts once the donor logs the stream's start and counts only if the backup was still",
        "  streaming at its end (the commit block at the backup's very end, BACKUP STAGE BLOCK_COMMIT, is",
        "  outside it). Semi-sync on; the primary archives its binary logs in both.",
        "- Stream discarded: the donor's mariadb-backup with backup-to-store.sh's options, its stream",
        "  thrown away, timed in the pod; then the same commits while the donor runs such backups back to",
        "  back (the data is in the page cache: one is short): the backup's own cost, without the upload's",
        "  and the store's, which here shares the node's one disk and two cores with the cluster.",
        "- Throttles: the same backup and commit measurements with `-e mariadb_backup_throttle=N`",
        "  (mariadb-backup's `--throttle`: at most N read-and-write operations a second), %s." % ", ".join(
            str(t) for t in THROTTLES[1:])],
        list(dict.fromkeys(names.values())), [
        ("backup / raw copy, bytes per second (%.0f vs %.0f MiB/s)" % (backup_rate, raw_rate),
         backup_rate / raw_rate, "(context, no target)"),
        ("restore.sh seconds per GiB of backup", bench.median(names["restore job"]) / gib, "(no target)"),
        ("restore.yml seconds per GiB of backup", bench.median(names["restore.yml"]) / gib, "(no target)"),
        ("commits per second during a backup whose stream is discarded / without",
         bench.median(names["busy discarded"]) / bench.median(names["quiet"]), "≥ 0.90 (writes at most 10% slower)"),
    ] + [row for throttle in THROTTLES for row in (
        ("commits per second during a backup / without, %s" % throttled(throttle),
         bench.median(names["busy", throttle]) / bench.median(names["quiet"]), "≥ 0.90 (writes at most 10% slower)"),
        ("raw copy seconds / backup seconds, %s" % throttled(throttle),
         bench.median(names["raw"]) / bench.median(names["backup", throttle]), "≥ 0.90" if throttle == 0 else "(context)"))])
