"""Backups, restores and point-in-time recovery against a real S3 server
(versitygw) running in the cluster: a backup taken from a replica under the
concurrent writer restores into another namespace with every table equal to
the source at the backup's GTID; a point-in-time restore across a switchover
holds exactly the rows written before the time; retention (run by the
scheduled Job) deletes what it should and nothing else; a damaged backup and
a missing binary log are refused with the target untouched; on 11.8 too; a
write archived by a primary that no replica received is found by the new
primary as a divergence, which no restore crosses; another cluster writing to
the same store path keeps every object and no restore takes its backups
unnamed; a replica far behind declines a backup; a second GTID domain stops
backups and the archive; verify_backup.yml (and its CronJob) restores the
newest backup to the GTID of a replica's snapshot and finds it equal, and
names the table of a replica that drifted from the history."""
import datetime
import json
import re
import threading
import time

import pytest
from kubernetes import client

from tests.e2e import object_store
from tests.harness import drop_namespaces, fresh_namespaces, pod_exec, run_playbook, sql, start_client, trust_cluster_ca, wait_until
from tests.e2e.writes import Writer, create_events_table, recorded_primary

NS, TARGET = "backup", "restored"
SOURCE = NS + "/mysql"
STORE_SECRET = "backup-store"
# Each run writes under a prefix of its own in the shared store.
PREFIX = "e2e-%d" % time.time()
ROOT = "%s/%s/mysql/" % (PREFIX, NS)
# Each archive round runs rclone 4 times in the primary's pod: every 2 s that
# was 8% of the CPU the backup tests used.
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_backup_store_secret": STORE_SECRET, "mariadb_binlog_archive_interval": 4, "mariadb_autopilot": False}
PODS = ["mysql-0", "mysql-1", "mysql-2"]
SYSTEM = "'mysql', 'sys', 'information_schema', 'performance_schema', 'mariadb_k8s'"


def play(name, **extra):
    return run_playbook(name, dict(BASE, **extra))


def restore(**extra):
    return run_playbook("restore.yml", dict(dict(BASE, mariadb_namespace=TARGET, source=SOURCE), **extra))


def local_sql(api, namespace, pod, query):
    return pod_exec(api, namespace, "sidecar").run(pod, ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql -N -e "$0"', query])


def utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def manifests(store):
    found = [json.loads(store.get(key)) for key in store.list(ROOT) if key.endswith("/manifest.json")]
    return sorted(found, key=lambda m: m["id"])


def binlog_indexes(store):
    return [json.loads(store.get(key)) for key in store.list(ROOT)
            if "/binlogs/" in key and key.endswith(".json") and not key.endswith("archived-until.json")]


def seq(gtid):
    return int(gtid.split("-")[-1]) if gtid else 0


def tables(api, namespace, pod):
    """Every user table of a pod's server: row count and checksum."""
    names = local_sql(api, namespace, pod, "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
                      "WHERE table_schema NOT IN (%s) AND table_type = 'BASE TABLE'" % SYSTEM).split()
    assert names, "no user tables on %s/%s" % (namespace, pod)
    return {name: (local_sql(api, namespace, pod, "SELECT COUNT(*) FROM %s" % name).strip(),
                   local_sql(api, namespace, pod, "CHECKSUM TABLE %s" % name).split()[-1]) for name in names}


def target_untouched(core, apps):
    """No StatefulSet, no volume, no pod and no Job left in the target."""
    return (not apps.list_namespaced_stateful_set(TARGET).items
            and not core.list_namespaced_persistent_volume_claim(TARGET).items
            and not core.list_namespaced_pod(TARGET).items
            and not client.BatchV1Api(core.api_client).list_namespaced_job(TARGET).items)


def ensure_namespace(core, namespace):
    if not core.list_namespace(field_selector="metadata.name=" + namespace).items:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))


@pytest.fixture(scope="module")
def store(api):
    return object_store.deploy(api)


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def runner(api, core, store):
    fresh_namespaces(core, NS, TARGET)
    for namespace in (NS, TARGET):
        ensure_namespace(core, namespace)
        store.store_secret(namespace, STORE_SECRET, prefix=PREFIX)
    play("deploy.yml", replicas=3).check()
    runner = start_client(core, api, NS)
    trust_cluster_ca(runner, core, NS)
    create_events_table(runner)
    sql(runner, "mysql-primary", "CREATE TABLE app.static (id INT PRIMARY KEY, payload VARCHAR(200)); "
        "INSERT INTO app.static SELECT seq, REPEAT(MD5(seq), 6) FROM app.seq_1_to_20000")
    yield runner
    drop_namespaces(core, NS, TARGET)


class JobPodSecrets(threading.Thread):
    """Samples the Job pods of a namespace until stopped: each one's Secret
    volumes, as {pod: {secret: keys mounted, or None for every key}}."""

    def __init__(self, core, namespace):
        super().__init__(daemon=True)
        self.core, self.namespace, self.seen, self.done = core, namespace, {}, threading.Event()

    def run(self):
        while not self.done.is_set():
            for pod in self.core.list_namespaced_pod(self.namespace, label_selector="batch.kubernetes.io/job-name").items:
                self.seen[pod.metadata.name] = {v.secret.secret_name: v.secret.items and [i.key for i in v.secret.items]
                                                for v in pod.spec.volumes if v.secret}
            time.sleep(0.5)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()


def restored_client(core, api):
    target = start_client(core, api, TARGET)
    trust_cluster_ca(target, core, TARGET)
    return target


def events(runner, host):
    return [tuple(line.split("\t")) for line in
            sql(runner, host, "SELECT scenario, seq FROM app.events ORDER BY scenario, seq").splitlines()]


def test_backup_from_a_replica_under_the_writer_restores_every_table(report, runner, api, core, store):
    restarts = {p: core.read_namespaced_pod(p, NS).status.container_statuses[0].restart_count for p in PODS}
    # Each of the writer's inserts is one transaction, in order: the backup's
    # GTID tells how many of them it holds.
    before_writer = seq(sql(runner, "mysql-primary", "SELECT @@gtid_binlog_pos"))
    samples, done = [], threading.Event()

    # Either replica may serve (the first asked can be unfit under load, or
    # not yet admitted by the network policy): both are sampled, the donor's
    # samples are checked.
    def sample_donor_readiness():
        while not done.is_set():
            samples.append({p: all(c.ready for c in core.read_namespaced_pod(p, NS).status.container_statuses)
                            for p in ("mysql-1", "mysql-2")})
            time.sleep(0.5)

    sampler = threading.Thread(target=sample_donor_readiness)
    with Writer(runner, "backup") as writer:
        sampler.start()
        taken = play("backup.yml").check()
        done.set()
        sampler.join()
    backup = manifests(store)[-1]
    assert backup["donor"] in ("mysql-1", "mysql-2") and backup["server_version"].startswith("10.11.")
    assert "Backup %s of backup/mysql" % backup["id"] in taken.text
    donor_ready = [sample[backup["donor"]] for sample in samples]
    assert donor_ready and all(donor_ready), "the donor was not Ready throughout the backup: %s" % donor_ready
    assert {p: core.read_namespaced_pod(p, NS).status.container_statuses[0].restart_count for p in PODS} == restarts
    acked = writer.acknowledged()
    assert len(acked) > 20
    held = seq(backup["gtid"]) - before_writer
    assert 0 < held < len(acked) + 20, (held, len(acked))

    # Two pods: the restored primary and a replica cloned from it.
    started = time.monotonic()
    restore(backup=backup["id"], replicas=2).check()
    seconds = time.monotonic() - started
    target = restored_client(core, api)
    # The source at the backup's GTID: the tables nobody wrote since, and
    # the first `held` of the writer's rows.
    source_tables = tables(api, NS, "mysql-0")
    expected_events = events(runner, "mysql-primary")[:held]
    for pod in PODS[:2]:
        found = tables(api, TARGET, pod)
        assert {k: v for k, v in found.items() if k != "app.events"} == {k: v for k, v in source_tables.items() if k != "app.events"}
        assert events(target, pod + ".mysql") == expected_events, pod
    run_playbook("verify.yml", {"mariadb_namespace": TARGET}).check()
    core.delete_namespaced_pod("client", TARGET, grace_period_seconds=0)
    run_playbook("teardown.yml", {"mariadb_namespace": TARGET, "delete_data": True}).check()
    report.backup("backup.yml under the writer (%d writes acknowledged), from replica %s, restored into another namespace"
                  % (len(acked), backup["donor"]),
                  "on each of the 2 restored pods: app.events row by row vs the source's first %d writes (the backup's GTID "
                  "%s), every other table's rows and checksum vs the source" % (held, backup["gtid"]),
                  "equal; donor Ready throughout (%d samples), no restart; restore.yml %.0f s" % (len(samples), seconds))


def test_point_in_time_across_a_switchover_holds_exactly_the_earlier_rows(report, runner, api, core, store):
    play("switchover.yml", primary="mysql-1").check()
    sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('pitr', 1)")
    before_gtid = sql(runner, "mysql-primary", "SELECT @@gtid_binlog_pos")
    time.sleep(1.5)
    point = int(time.time())
    time.sleep(1.5)
    sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('pitr', 2)")
    # A statement that started before the time and committed after pitr:2,
    # which started after it (the event time is the statement's start).
    sql(runner, "mysql-primary", "SET TIMESTAMP = %d; INSERT INTO app.events VALUES ('pitr', 3)" % (point - 1))
    last_gtid = sql(runner, "mysql-primary", "SELECT @@gtid_binlog_pos")
    expected = set(sql(runner, "mysql-primary", "SELECT CONCAT(scenario, ':', seq) FROM app.events").split()) \
        - {"pitr:2", "pitr:3"}
    timeline = core.read_namespaced_config_map("mysql-topology", NS).data["timeline"]
    marker = ROOT + timeline + "/binlogs/archived-until.json"
    wait_until("the archive past the point in time", lambda: json.loads(store.get(marker))["time"] > point + 2, timeout=60)
    # The new primary archived the transaction the restore stops after, and
    # pitr:3 last in its log, whose last time is then before the point.
    assert any(i["pod"] == "mysql-1" and seq(i["first_gtid"]) <= seq(before_gtid) <= seq(i["last_gtid"])
               for i in binlog_indexes(store)), binlog_indexes(store)
    assert any(i["last_gtid"] == last_gtid and i["last_time"] == point - 1 for i in binlog_indexes(store)), \
        binlog_indexes(store)

    # One pod: the restored primary is what the point in time is about (the
    # first test shows the other pods cloning from it).
    restore(point_in_time=utc(point), replicas=1).check()
    target = restored_client(core, api)
    found = set(sql(target, "mysql-primary", "SELECT CONCAT(scenario, ':', seq) FROM app.events").split())
    assert found == expected, (sorted(expected - found)[:10], sorted(found - expected)[:10])
    run_playbook("verify.yml", {"mariadb_namespace": TARGET}).check()
    core.delete_namespaced_pod("client", TARGET, grace_period_seconds=0)
    run_playbook("teardown.yml", {"mariadb_namespace": TARGET, "delete_data": True}).check()
    report.backup("restore.yml -e point_in_time between two writes, after a switchover to mysql-1; a third write "
                  "committed after the second with a start time before the point",
                  "app.events on the restored primary vs the source's rows minus the writes committed after the first "
                  "that started after the time",
                  "exactly the %d earlier rows; both later writes absent" % len(expected))


@pytest.mark.parametrize("extra,message", [
    ({"mariadb_namespace": NS, "backup": "20990101T000000Z"}, "mariadb_namespace=backup, mariadb_name=mysql: the target runs a cluster"),
    ({"point_in_time": "2099-01-01 00:00:00"}, "point_in_time=2099-01-01 00:00:00 is after what the archive covers"),
    ({"point_in_time": "2000-01-01 00:00:00"}, "point_in_time=2000-01-01 00:00:00 is before the oldest complete backup"),
    ({"point_in_time": "yesterday"}, "point_in_time (restore_point_in_time) must be a UTC time"),
    ({"backup": "20990101T000000Z"}, "backup=20990101T000000Z: no such backup in the store"),
])
def test_bad_restores_are_refused_naming_the_variable(report, runner, core, apps, extra, message):
    refused = restore(**extra)
    assert refused.rc != 0 and message in refused.text, refused.output[-3000:]
    assert target_untouched(core, apps)
    report.bad_input("restore.yml -e %s" % " -e ".join("%s=%s" % item for item in extra.items()), message, True)


def test_scheduled_backup_keeps_the_newest_and_the_binlogs_they_need(report, runner, api, core, store):
    play("deploy.yml", mariadb_backup_schedule="0 3 * * *", mariadb_backup_keep=2, mariadb_backup_verify_schedule="0 5 * * 0").check()
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job("mysql-backup", NS)
    assert cron.spec.schedule == "0 3 * * *"
    play("backup.yml").check()
    before = set(store.list(ROOT))
    kept_oldest = manifests(store)[-1]
    dropped = manifests(store)[0]
    assert len(manifests(store)) == 2
    # The CronJob's own Job, started now instead of at 03:00.
    batch.create_namespaced_job(NS, client.V1Job(metadata=client.V1ObjectMeta(name="mysql-backup-now"),
                                                 spec=cron.spec.job_template.spec))
    wait_until("the scheduled backup Job done", lambda: (batch.read_namespaced_job("mysql-backup-now", NS).status.succeeded
                                                         or 0) > 0, timeout=300)
    batch.delete_namespaced_job("mysql-backup-now", NS, propagation_policy="Background")
    after = set(store.list(ROOT))
    ids = [m["id"] for m in manifests(store)]
    assert len(ids) == 2 and ids[0] == kept_oldest["id"] and dropped["id"] not in ids
    needed = seq(kept_oldest["gtid"])
    expected_gone = {k for k in before if "/backups/%s/" % dropped["id"] in k} | {
        k for k in before if re.search(r"/binlogs/\d{20}-(\d{20})\.", k)
        and int(re.search(r"/binlogs/\d{20}-(\d{20})\.", k).group(1)) <= needed}
    assert before - after == expected_gone
    assert expected_gone and any("/binlogs/" in k for k in expected_gone)
    report.backup("scheduled backup (the CronJob's Job) with mariadb_backup_keep=2 after 2 backups",
                  "objects in the store before and after",
                  "deleted exactly the oldest backup and the %d binary-log objects it alone needed; kept %d objects"
                  % (len([k for k in expected_gone if "/binlogs/" in k]), len(after & before)))


def verified_metric(core, pod):
    """mariadb_backup_verified_timestamp on the pod's own metrics page (the sidecar's), or None."""
    response = core.connect_get_namespaced_pod_proxy_with_path("%s:9105" % pod, NS, "metrics", _preload_content=False)
    found = re.search(r"^mariadb_backup_verified_timestamp (\d+)$", response.data.decode(), re.M)
    return int(found.group(1)) if found else None


def test_verify_backup_restores_the_newest_backup_equal_to_the_cluster_under_the_writer(report, runner, api, core, store):
    play("backup.yml").check()
    backup = manifests(store)[-1]
    # The writer runs through the verification: the source's checksums and
    # their GTID come from one snapshot, or they would not match the restore.
    with Writer(runner, "verify") as writer:
        time.sleep(5)  # writes past the backup: archived logs roll it forward
        verified = play("verify_backup.yml").check()
    recorded = next(m for m in manifests(store) if m["id"] == backup["id"])
    assert recorded["verified_result"] == "match", recorded
    assert seq(recorded["verified_gtid"]) > seq(backup["gtid"]), "nothing was rolled forward: %s" % recorded
    assert recorded["verified_tables"] >= 3
    assert "Backup %s of backup/mysql restores: rolled forward to GTID %s" % (backup["id"], recorded["verified_gtid"]) in verified.text
    assert len(writer.acknowledged()) > 20
    latest = json.loads(store.get(ROOT + backup["timeline"] + "/verified.json"))
    assert (latest["backup"], latest["gtid"]) == (backup["id"], recorded["verified_gtid"])
    # Every pod's metrics tell it within the sidecar's minute.
    for pod in PODS:
        assert wait_until("%s reports the verification" % pod, lambda: (verified_metric(core, pod) or 0) >= recorded["verified_time"],
                          timeout=90)
    listed = play("backup.yml", list=True).check()
    assert "verified %s UTC at GTID %s: match" % (utc(recorded["verified_time"]), recorded["verified_gtid"]) in listed.text
    report.backup("verify_backup.yml under the writer (%d writes acknowledged)" % len(writer.acknowledged()),
                  "backup %s (GTID %s) restored on a scratch volume and rolled forward to the GTID of a replica's snapshot"
                  % (backup["id"], backup["gtid"]),
                  "%d tables equal at GTID %s; the manifest, verified.json and every pod's mariadb_backup_verified_timestamp "
                  "record it" % (recorded["verified_tables"], recorded["verified_gtid"]))


def test_the_scheduled_verification_runs_the_same_job(report, runner, api, core, store):
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job("mysql-verify-backup", NS)
    assert cron.spec.schedule == "0 5 * * 0" and cron.spec.successful_jobs_history_limit == 0
    sql(runner, "mysql-primary", "INSERT INTO app.events (scenario, seq) VALUES ('scheduled-verify', 1)")
    batch.create_namespaced_job(NS, client.V1Job(metadata=client.V1ObjectMeta(name="mysql-verify-now"),
                                                 spec=cron.spec.job_template.spec))
    job = wait_until("the scheduled verification done", lambda: (
        lambda status: status if (status.succeeded or status.failed) else None)(
            batch.read_namespaced_job("mysql-verify-now", NS).status), timeout=300)
    pod = core.list_namespaced_pod(NS, label_selector="job-name=mysql-verify-now").items[0].metadata.name
    log = core.read_namespaced_pod_log(pod, NS, container="verify")
    claims = [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NS).items if c.metadata.name.startswith(pod)]
    batch.delete_namespaced_job("mysql-verify-now", NS, propagation_policy="Foreground")
    assert job.succeeded, log[-3000:]
    assert log.splitlines()[-1].startswith("VERIFIED MATCH ")
    assert claims == [pod + "-data"], "the scratch volume is the pod's own: %s" % claims
    wait_until("the scratch volume deleted with the pod", lambda: not any(
        c.metadata.name == pod + "-data" for c in core.list_namespaced_persistent_volume_claim(NS).items), timeout=120)
    report.backup("the CronJob of mariadb_backup_verify_schedule, its Job started now",
                  "the Job's verdict and its scratch volume", "VERIFIED MATCH; the volume was the pod's own, deleted with it")


def test_a_replica_drifted_from_the_history_fails_the_verification_naming_the_table(report, runner, api, core, store):
    primary = recorded_primary(core, NS)
    replicas = [p for p in PODS if p != primary]
    read = "SELECT payload FROM app.static WHERE id = 7"
    original = local_sql(api, NS, primary, read).strip()
    # Outside the binary log: no GTID, nothing replicates, nothing archives it.
    for pod in replicas:
        local_sql(api, NS, pod, "SET SESSION sql_log_bin = 0; UPDATE app.static SET payload = 'drifted' WHERE id = 7")
    try:
        assert [local_sql(api, NS, pod, read).strip() for pod in replicas] == ["drifted"] * len(replicas)
        assert local_sql(api, NS, primary, read).strip() == original != "drifted"
        failed = play("verify_backup.yml")
        assert failed.rc != 0
        assert "MISMATCH app.static: the rows differ (20000 rows each)" in failed.text, failed.output[-3000:]
        assert "VERIFIED MISMATCH" in failed.text
        assert [m["verified_result"] for m in manifests(store) if m.get("verified_result")][-1:] == ["mismatch"]
    finally:
        for pod in replicas:
            local_sql(api, NS, pod, "SET SESSION sql_log_bin = 0; UPDATE app.static SET payload = '%s' WHERE id = 7" % original)
    report.backup("one row changed outside the binary log on every replica (control: they hold it, the primary does not)",
                  "verify_backup.yml", "fails naming app.static; the manifest records the mismatch")


def test_damaged_backups_are_refused_with_the_target_untouched(report, runner, api, core, apps, store):
    older, newer = manifests(store)
    # Truncated: the listing's size already tells.
    key = ROOT + older["timeline"] + "/" + older["object"]
    store.truncate(key, older["size"] // 2)
    refused = restore(backup=older["id"])
    assert refused.rc != 0 and "backup=%s is damaged" % older["id"] in refused.text
    assert target_untouched(core, apps)
    # The same size with other bytes: the restore Job's checksum tells.
    key = ROOT + newer["timeline"] + "/" + newer["object"]
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0xFF
    store.put(key, bytes(data))
    corrupted = restore(backup=newer["id"])
    # mbstream's own chunk checksums catch it as it streams, else the sha256.
    assert corrupted.rc != 0 and "it is damaged or incomplete" in corrupted.text
    assert target_untouched(core, apps)
    report.backup("restore.yml -e backup=<truncated backup>, then of a backup with one byte changed",
                  "the target namespace: StatefulSet, volumes, pods, Jobs",
                  "both refused (the listing's size; the stream's checksums in the restore Job); target untouched")


def test_a_missing_binlog_is_reported_and_refused(report, runner, api, core, apps, store):
    play("backup.yml").check()
    backup = manifests(store)[-1]
    for n in range(3):
        sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('gap', %d)" % n)
        time.sleep(5)  # an archive round apart: binary logs of their own
    point = int(time.time())
    timeline = core.read_namespaced_config_map("mysql-topology", NS).data["timeline"]
    marker = ROOT + timeline + "/binlogs/archived-until.json"
    wait_until("the archive past the writes", lambda: json.loads(store.get(marker))["time"] > point, timeout=60)
    after_backup = sorted((i for i in binlog_indexes(store) if seq(i["first_gtid"]) > seq(backup["gtid"])),
                          key=lambda i: seq(i["first_gtid"]))
    assert len(after_backup) >= 2, after_backup
    store.delete(ROOT + timeline + "/" + after_backup[0]["object"])
    listed = play("backup.yml", list=True).check()
    assert "the archive lacks the transactions after sequence number" in listed.text
    refused = restore(point_in_time=utc(point))
    assert refused.rc != 0 and "point_in_time=%s is past a gap in the archive" % utc(point) in refused.text
    assert target_untouched(core, apps)
    report.backup("restore.yml -e point_in_time with one archived binary log deleted",
                  "backup.yml -e list=true, then the target namespace",
                  "gap listed; refused naming point_in_time; target untouched")


def test_an_118_backup_restores_on_118_only(report, runner, api, core, apps, store):
    play("upgrade.yml", version="11.8").check()
    play("backup.yml").check()
    backup = manifests(store)[-1]
    assert backup["server_version"].startswith("11.8.")
    refused = restore(backup=backup["id"])  # a new cluster runs 10.11 unless told
    assert refused.rc != 0 and "mariadb_version: the backup %s is of MariaDB %s" % (backup["id"], backup["server_version"]) \
        in refused.text
    assert target_untouched(core, apps)
    with JobPodSecrets(core, TARGET) as job_pods:
        restore(backup=backup["id"], version="11.8", replicas=1).check()
    # Nothing wrote to the source's tables since the backup.
    assert tables(api, TARGET, "mysql-0") == tables(api, NS, "mysql-1")
    # The restore Job's temporary server ran without TLS: the Job got no
    # private key (the control: the sampler saw its pod and its Secrets).
    assert job_pods.seen and all(STORE_SECRET in secrets for secrets in job_pods.seen.values()), job_pods.seen
    assert not [pod for pod, secrets in job_pods.seen.items() if "mysql-tls" in secrets], job_pods.seen
    report.backup("an 11.8 backup restored with the default 10.11, then with -e version=11.8 (one pod)",
                  "the refusal's message; every table's rows and checksum on the restored server vs the source; "
                  "the restore Job pod's Secret volumes",
                  "refused naming mariadb_version; restored on 11.8, equal; no TLS Secret (no private key) in the Job")


def test_an_archived_write_no_replica_received_is_a_divergence_no_restore_crosses(report, runner, api, core, apps, store):
    run_playbook("teardown.yml", {"mariadb_namespace": TARGET, "delete_data": True}).check()
    play("backup.yml").check()
    before = manifests(store)[-1]
    old = recorded_primary(core, NS)
    for pod in PODS:
        if pod != old:
            local_sql(api, NS, pod, "STOP SLAVE IO_THREAD")
    # No replica acknowledges: semi-sync gives up after its timeout and commits.
    sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('unreplicated', 1), ('unreplicated', 2)")
    lost = sql(runner, "mysql-primary", "SELECT @@gtid_binlog_pos").strip()
    timeline = core.read_namespaced_config_map("mysql-topology", NS).data["timeline"]
    marker = ROOT + timeline + "/binlogs/archived-until.json"
    wait_until("the old primary archived the write", lambda: json.loads(store.get(marker))["gtid"] == lost, timeout=60)
    # Control: the write is in the archive, and on no replica.
    assert any(i["pod"] == old and seq(i["last_gtid"]) >= seq(lost) for i in binlog_indexes(store))
    assert all(seq(local_sql(api, NS, pod, "SELECT @@gtid_current_pos")) < seq(lost) for pod in PODS if pod != old)

    core.delete_namespaced_persistent_volume_claim("data-" + old, NS)
    core.delete_namespaced_pod(old, NS, grace_period_seconds=0)
    play("failover.yml").check()
    new = recorded_primary(core, NS)
    sql(runner, "mysql-primary", "INSERT INTO app.events VALUES ('after-divergence', 1)")
    epoch = core.read_namespaced_config_map("mysql-topology", NS).data["epoch"]
    key = "%s%s/divergences/%s.json" % (ROOT, timeline, epoch)
    wait_until("the new primary recorded the divergence", lambda: key in store.list(ROOT), timeout=120)
    divergence = json.loads(store.get(key))
    assert (divergence["pod"], divergence["archived_gtid"]) == (new, lost) and divergence["after_seq"] < seq(lost)

    listed = play("backup.yml", list=True).check()
    assert "the archive holds two histories after sequence number %d" % divergence["after_seq"] in listed.text
    point = utc(time.time() + 1)
    time.sleep(2)
    # The earlier tests may have upgraded the cluster: restore with the backup's own version.
    refused = restore(backup=before["id"], point_in_time=point, version=".".join(before["server_version"].split(".")[:2]))
    assert refused.rc != 0 and "point_in_time=%s crosses a divergence in the archive of timeline %s after sequence number %d" \
        % (point, timeline, divergence["after_seq"]) in refused.text, refused.output[-3000:]
    assert target_untouched(core, apps)
    report.backup("the primary archived a write no replica received (IO threads stopped), was destroyed; failover.yml",
                  "the store's divergence record, backup.yml -e list=true, restore.yml -e point_in_time from the backup before",
                  "divergence after sequence number %d recorded by %s; listed; the restore across it refused naming "
                  "point_in_time; target untouched" % (divergence["after_seq"], new))


def test_a_cluster_sharing_the_store_path_keeps_its_backups_and_restores_only_when_named(report, runner, api, core, apps,
                                                                                        store):
    """Another cluster writes to this one's store path (staging and production
    under one namespace and name, a DR region): retention deletes none of its
    objects and counts none of its backups, a backup of the same second keeps
    an id of its own, and a restore by time alone is refused until the user
    names whose backups to use."""
    own = core.read_namespaced_config_map("mysql-topology", NS).data["timeline"]
    other = "e2eother%d" % (time.time() % 10000)
    ours = [m for m in manifests(store) if m["timeline"] == own]
    assert len(ours) == 2, ours  # mariadb_backup_keep=2
    # The other cluster's objects: a backup of the same second as our newest,
    # one newer than every backup we will take, their binary log and marker.
    stamp = ours[-1]["id"].split("-")[0]
    theirs = {}
    for backup_id, finished in ((stamp + "-" + other, ours[-1]["finished"]), ("20991231T000000Z-" + other, 4102358400)):
        stream = b"their stream " * 64
        theirs[ROOT + other + "/backups/%s/backup.mbstream" % backup_id] = stream
        theirs[ROOT + other + "/backups/%s/manifest.json" % backup_id] = (json.dumps(dict(
            ours[-1], id=backup_id, timeline=other, object="backups/%s/backup.mbstream" % backup_id, finished=finished,
            gtid="0-900-5", size=len(stream), sha256="0" * 64)) + "\n").encode()
    log = "binlogs/%020d-%020d.mysql-0.mysql-bin.000001" % (1, 5)
    theirs[ROOT + other + "/" + log] = b"their binary log"
    theirs[ROOT + other + "/" + log + ".json"] = json.dumps({
        "timeline": other, "object": log, "pod": "mysql-0", "file": "mysql-bin.000001", "first_gtid": "0-900-1",
        "last_gtid": "0-900-5", "first_time": ours[0]["finished"], "last_time": ours[0]["finished"], "size": 16,
        "sha256": "0" * 64}).encode() + b"\n"
    for key, data in theirs.items():
        store.put(key, data)
    # Control: both clusters' backups are in one store path, one id's second shared.
    assert set(theirs) <= set(store.list(ROOT)) and stamp + "-" + own == ours[-1]["id"]

    play("backup.yml").check()
    now = [m for m in manifests(store) if m["timeline"] == own]
    assert [m["id"] for m in now][:1] == [ours[-1]["id"]] and len(now) == 2, now
    assert {key: store.get(key) for key in theirs} == theirs
    listed = play("backup.yml", list=True).check()
    for backup_id in (ours[-1]["id"], stamp + "-" + other):
        assert backup_id + " complete" in listed.text
    assert "[timeline %s, of another cluster or of the one this cluster was restored from: retention leaves it]" % other \
        in listed.text

    point = utc(time.time())
    refused = restore(point_in_time=point)
    assert refused.rc != 0 and "point_in_time=%s: the store holds the backups of several clusters or timelines" % point \
        in refused.text, refused.output[-3000:]
    assert target_untouched(core, apps)
    for key in theirs:
        store.delete(key)
    report.backup("another cluster's backups (one of the same second as ours, one newer) and archive in this cluster's "
                  "store path; backup.yml with mariadb_backup_keep=2, backup.yml -e list=true, restore.yml -e point_in_time",
                  "the other cluster's objects byte for byte; our backups; the listing; the refusal; the target",
                  "theirs untouched and not counted (ours: the newest 2 kept); both same-second ids listed, theirs marked; "
                  "the restore by time alone refused naming source; target untouched")


def slave_status_field(api, pod, name):
    status = pod_exec(api, NS, "sidecar").run(pod, ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql -e "SHOW SLAVE STATUS\\G"'])
    return next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.strip().startswith(name + ":"))


def test_a_replica_far_behind_its_primary_declines_to_donate_a_backup(report, runner, api, core, store):
    primary = recorded_primary(core, NS)
    first, second = sorted((pod for pod in PODS if pod != primary), reverse=True)  # the Job asks first first
    # first applies the write below only 2 hours after its timestamp, an hour ago: it lags an hour.
    local_sql(api, NS, first, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 7200; START SLAVE")
    try:
        sql(runner, "mysql-primary", "SET TIMESTAMP = UNIX_TIMESTAMP() - 3600; INSERT INTO app.events VALUES ('lag', 1)")
        # Control: first is Ready (replicating) and an hour behind.
        wait_until("%s an hour behind" % first,
                   lambda: int(slave_status_field(api, first, "Seconds_Behind_Master").replace("NULL", "0")) > 3000,
                   timeout=60)
        assert slave_status_field(api, first, "Slave_SQL_Running") == "Yes"
        taken = play("backup.yml").check()
        backup = manifests(store)[-1]
        log = core.read_namespaced_pod_log(first, NS, container="sidecar", since_seconds=300)
    finally:
        local_sql(api, NS, first, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE")
    assert "Backup %s of backup/mysql" % backup["id"] in taken.text and backup["donor"] == second
    assert re.search(r"declined backup \S+: this replica is \d+ s behind its primary \(at most 60\)", log), log[-2000:]
    wait_until("%s caught up" % first, lambda: slave_status_field(api, first, "Seconds_Behind_Master") == "0", timeout=60)
    report.backup("backup.yml while the first replica asked is an hour behind (MASTER_DELAY, a write an hour old)",
                  "the backup's donor; the lagging replica's sidecar log",
                  "%s declined (its lag logged), %s took the backup" % (first, second))


def test_a_second_gtid_domain_stops_backups_and_the_archive_naming_it(report, runner, api, core, store):
    """Last in the module: the cluster's binary logs keep the second domain."""
    timeline = core.read_namespaced_config_map("mysql-topology", NS).data["timeline"]
    marker = ROOT + timeline + "/binlogs/archived-until.json"
    primary = recorded_primary(core, NS)
    sql(runner, "mysql-primary", "SET SESSION gtid_domain_id = 5; INSERT INTO app.events VALUES ('domain-5', 1)")
    # Control: the primary's binary logs hold both domains.
    position = sql(runner, "mysql-primary", "SELECT @@gtid_binlog_pos")
    assert re.match(r"^0-\d+-\d+,5-\d+-\d+$", position), position
    refused = play("backup.yml")
    assert refused.rc != 0 and "spans several GTID domains (0 5)" in refused.text, refused.output[-3000:]
    wait_until("the archiver refusing the second domain", lambda: "hold transactions of several GTID domains (0 5, at " in
               core.read_namespaced_pod_log(primary, NS, container="sidecar", since_seconds=120), timeout=60)
    second_domain = re.compile(r"(^|,)5-")
    assert not second_domain.search(json.loads(store.get(marker))["gtid"])
    assert not [i for i in binlog_indexes(store) if second_domain.search(i["first_gtid"] + "," + i["last_gtid"])]
    report.backup("a transaction in GTID domain 5 (SET SESSION gtid_domain_id) on the primary, then backup.yml and "
                  "archive rounds", "backup.yml's result; the archiver's log; the archive's marker and indexes",
                  "the backup refused naming both domains; the archiver logs the refusal; nothing of domain 5 archived")
