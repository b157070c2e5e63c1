"""The object store's catalog as catalog.sh prints it: backup states, the chain
of archived binary logs that rolls a backup forward, restore plans and their
refusals, and the module around them. No store is contacted."""
import json

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import backup_catalog
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.backup_catalog import PlanError
from ansible_collections.mariadb_k8s.cluster.plugins.modules import backup_catalog as backup_catalog_module
from fake_module import Exit, FakeModule

TL = "k3x9q2m1a0bc"
T0 = 1796119200  # 2026-12-01 10:00:00 UTC
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
A, B = "20261201T100000Z", "20261201T110000Z"


def at(seconds):
    """'YYYY-MM-DD HH:MM:SS' of T0 + seconds."""
    return backup_catalog.utc(T0 + seconds)


def manifest(backup_id, last_seq, finished, timeline=TL, version="10.11.18", size=52428800):
    """A manifest as backup-to-store.sh writes it."""
    return {"id": backup_id, "timeline": timeline, "object": "backups/%s/backup.mbstream" % backup_id,
            "gtid": "0-101-%d" % last_seq if last_seq else "", "server_version": version, "donor": "mysql-1",
            "started": finished - 60, "finished": finished, "size": size, "sha256": SHA}


def binlog(first, last, first_time, last_time, pod="mysql-0", number=1, timeline=TL, size=1048576):
    """A binary log index as archive-binlogs.sh writes it."""
    name = "%020d-%020d.%s.mysql-bin.%06d" % (first, last, pod, number)
    return {"timeline": timeline, "object": "binlogs/" + name, "pod": pod, "file": "mysql-bin.%06d" % number,
            "first_gtid": "0-101-%d" % first, "last_gtid": "0-101-%d" % last, "first_time": first_time,
            "last_time": last_time, "size": size, "sha256": SHA}


def marker(time, last_seq, timeline=TL):
    """A timeline's archived-until.json."""
    return {"timeline": timeline, "time": time, "gtid": "0-101-%d" % last_seq, "pod": "mysql-0"}


def listing(manifests=(), binlogs=(), archived=(), missing=(), sizes=None, unindexed=(), running=(), divergences=()):
    """The lines catalog.sh prints for a consistent store, then broken as asked:
    `missing` objects (paths under the timeline) are gone, `sizes` {path: size}
    differ from what was written, `unindexed` binary logs have lost their
    index, `running` backup ids have an object but no manifest yet."""
    objects = {}
    for doc in manifests:
        objects["%s/%s" % (doc["timeline"], doc["object"])] = doc["size"]
        objects["%s/backups/%s/manifest.json" % (doc["timeline"], doc["id"])] = len(json.dumps(doc)) + 1
    for doc in binlogs:
        objects["%s/%s" % (doc["timeline"], doc["object"])] = doc["size"]
        objects["%s/%s.json" % (doc["timeline"], doc["object"])] = len(json.dumps(doc)) + 1
    for doc in archived:
        objects["%s/binlogs/archived-until.json" % doc["timeline"]] = len(json.dumps(doc)) + 1
    for backup_id in running:
        objects["%s/backups/%s/backup.mbstream" % (TL, backup_id)] = 4096
    for path in missing:
        del objects["%s/%s" % (TL, path)]
    for path, size in (sizes or {}).items():
        objects["%s/%s" % (TL, path)] = size
    entries = [{"Path": path, "Name": path.rsplit("/", 1)[1], "Size": size, "IsDir": False}
               for path, size in sorted(objects.items())]
    lines = ["OBJECTS " + json.dumps(entries)]
    lines += ["MANIFEST " + json.dumps(doc) for doc in manifests]
    lines += ["BINLOG " + json.dumps(doc) for doc in binlogs if doc["object"] not in unindexed]
    lines += ["ARCHIVED " + json.dumps(doc) for doc in archived]
    lines += ["DIVERGED " + json.dumps(doc) for doc in divergences]
    return lines


# One timeline: backup A at 0-101-10, backup B at 0-101-30, four archived logs
# and every transaction up to T0+4800 archived.
L1 = binlog(1, 10, T0 - 900, T0 - 300, number=1)
L2 = binlog(11, 20, T0 + 120, T0 + 600, number=2)
L3 = binlog(21, 30, T0 + 900, T0 + 1500, number=3)
L4 = binlog(31, 40, T0 + 3900, T0 + 4500, number=4)
MANIFESTS = (manifest(A, 10, T0 + 60), manifest(B, 30, T0 + 3660))
ARCHIVED = (marker(T0 + 4800, 40),)


def standard_lines(**changes):
    """catalog.sh's lines for the standard store, with listing()'s arguments changed."""
    args = dict(manifests=MANIFESTS, binlogs=(L1, L2, L3, L4), archived=ARCHIVED)
    args.update(changes)
    return listing(**args)


def store(**changes):
    return backup_catalog.parse(standard_lines(**changes))


def backup(catalog, backup_id):
    return next(b for b in backup_catalog.backups(catalog) if b["id"] == backup_id)


def paths(binlogs):
    return [b["path"] for b in binlogs]


def path(doc):
    return "%s/%s" % (doc["timeline"], doc["object"])


# parse, seq, times

def test_parse_reads_every_kind_of_line():
    catalog = store()
    assert catalog["objects"]["%s/backups/%s/backup.mbstream" % (TL, A)] == 52428800
    assert catalog["objects"][path(L2)] == 1048576
    assert "%s/binlogs/archived-until.json" % TL in catalog["objects"]
    assert [m["id"] for m in catalog["manifests"]] == [A, B]
    assert catalog["binlogs"] == [L1, L2, L3, L4]
    assert catalog["archived"] == {TL: ARCHIVED[0]}


def test_parse_ignores_blank_and_foreign_lines_and_an_empty_listing():
    lines = ["OBJECTS ", "", "2026/12/01 10:00:00 NOTICE: something rclone said", "  "]
    assert backup_catalog.parse(lines) == {"objects": {}, "manifests": [], "binlogs": [], "archived": {}, "divergences": []}


def test_parse_keeps_one_marker_per_timeline():
    other = marker(T0 + 100, 5, timeline="zz9xx8yy7ww6")
    catalog = backup_catalog.parse(listing(archived=(ARCHIVED[0], other)))
    assert catalog["archived"] == {TL: ARCHIVED[0], "zz9xx8yy7ww6": other}


@pytest.mark.parametrize("line", ["MANIFEST {\"id\": ", "OBJECTS [{\"Path\": \"x\"}]", "ARCHIVED {}"])
def test_parse_rejects_a_broken_document(line):
    with pytest.raises((ValueError, KeyError)):
        backup_catalog.parse([line])


@pytest.mark.parametrize("position,number", [("", 0), (None, 0), ("0-101-12", 12), ("0-100-00012", 12)])
def test_seq(position, number):
    assert backup_catalog.seq(position) == number


@pytest.mark.parametrize("position", ["0-101-12,1-101-3", "0-100-12, 1-101-3"])
def test_seq_rejects_multi_domain_positions(position):
    with pytest.raises(ValueError, match="spans several GTID domains"):
        backup_catalog.seq(position)


@pytest.mark.parametrize("text", ["2026-12-01 10:00:00", "2026-12-01T10:00:00Z", " 2026-12-01T10:00:00 ", "2026-12-01 10:00:00Z"])
def test_parse_time_takes_utc_with_a_space_or_iso_form(text):
    assert backup_catalog.parse_time(text) == T0
    assert backup_catalog.utc(T0) == "2026-12-01 10:00:00"


@pytest.mark.parametrize("text", ["", None, "2026-12-01", "2026-12-01 10:00", "2026-12-01 10:00:00+01:00", "yesterday",
                                  "2026-13-01 10:00:00"])
def test_parse_time_rejects_other_forms(text):
    with pytest.raises(ValueError):
        backup_catalog.parse_time(text)


# backups

def test_backups_complete_oldest_first():
    found = backup_catalog.backups(store())
    assert [(b["id"], b["state"]) for b in found] == [(A, "complete"), (B, "complete")]
    assert found[0]["finished_utc"] == "2026-12-01 10:01:00" and found[0]["gtid"] == "0-101-10"
    assert found[0]["server_version"] == "10.11.18" and found[0]["timeline"] == TL


@pytest.mark.parametrize("changes,state", [
    (dict(sizes={"backups/%s/backup.mbstream" % A: 999}), "damaged: its object is 999 bytes, the manifest says 52428800"),
    (dict(missing=["backups/%s/backup.mbstream" % A]), "damaged: its object is missing"),
])
def test_backups_damaged(changes, state):
    assert backup(store(**changes), A)["state"] == state
    assert backup(store(**changes), B)["state"] == "complete"


def test_backups_object_without_manifest_is_incomplete():
    found = backup_catalog.backups(store(running=["20261201T120000Z"]))
    assert [b["id"] for b in found] == [A, B, "20261201T120000Z"]
    assert found[-1] == {"id": "20261201T120000Z", "timeline": TL,
                         "state": "incomplete (no manifest: still running, or it failed)"}


def test_backups_of_an_empty_store():
    assert backup_catalog.backups(backup_catalog.parse(["OBJECTS []"])) == []


# chain

def test_chain_skips_the_logs_the_backup_holds():
    catalog = store()
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L) for L in (L2, L3, L4)] and gap is None
    assert selected[0] == dict(L2, path=path(L2), first_seq=11, last_seq=20)
    selected, gap = backup_catalog.chain(catalog, backup(catalog, B))
    assert paths(selected) == [path(L4)] and gap is None


def test_chain_from_an_empty_backup_starts_at_the_first_transaction():
    catalog = store(manifests=(manifest(A, 0, T0 - 1000),))
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L) for L in (L1, L2, L3, L4)] and gap is None


def test_chain_keeps_a_log_the_backup_holds_part_of():
    catalog = store(manifests=(manifest(A, 15, T0 + 360),))
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L) for L in (L2, L3, L4)] and gap is None


@pytest.mark.parametrize("until,logs", [
    (T0 + 120, []),  # L2's first transaction is at the stop time: none of it applies
    (T0 + 121, [L2]),
    (T0 + 900, [L2]),
    (T0 + 901, [L2, L3]),
    (T0 + 4800, [L2, L3, L4]),
])
def test_chain_stops_at_until(until, logs):
    catalog = store()
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A), until)
    assert paths(selected) == [path(L) for L in logs] and gap is None


def test_chain_after_a_failover_takes_the_promoted_replicas_overlapping_log():
    # mysql-0 archived up to 20 and failed; mysql-1, promoted, uploaded its
    # log 15..25 (log-slave-updates): it starts before the archive's max.
    reupload = binlog(15, 25, T0 + 300, T0 + 800, pod="mysql-1", number=7)
    catalog = store(binlogs=(L1, L2, reupload), archived=(marker(T0 + 900, 25),))
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L2), path(reupload)] and gap is None
    # A backup past the old primary's last log needs the promoted one's only.
    catalog = store(manifests=(manifest(A, 22, T0 + 700),), binlogs=(L1, L2, reupload))
    assert paths(backup_catalog.chain(catalog, backup(catalog, A))[0]) == [path(reupload)]


def test_chain_takes_another_pods_copy_of_a_damaged_log():
    copy = binlog(11, 25, T0 + 120, T0 + 800, pod="mysql-1", number=3)
    catalog = store(binlogs=(L1, L2, copy), sizes={L2["object"]: 10})
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(copy)] and gap is None


@pytest.mark.parametrize("changes", [
    dict(missing=[L3["object"]]),
    dict(sizes={L3["object"]: 1048575}),  # its index says otherwise: a partial upload
    dict(unindexed=[L3["object"]]),
], ids=["object missing", "object size differs", "index missing"])
def test_chain_stops_at_a_gap(changes):
    catalog = store(**changes)
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L2)] and gap == (20, 31)
    selected, gap = backup_catalog.chain(catalog, backup(catalog, B))  # B holds 21..30: no gap after it
    assert paths(selected) == [path(L4)] and gap is None


def test_chain_ignores_a_gap_after_until():
    catalog = store(missing=[L3["object"]])
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A), until=T0 + 700)
    assert paths(selected) == [path(L2)] and gap is None


def test_chain_ignores_other_timelines():
    other = binlog(11, 20, T0 + 120, T0 + 600, timeline="zz9xx8yy7ww6")
    catalog = store(binlogs=(L1, other))
    assert backup_catalog.chain(catalog, backup(catalog, A)) == ([], None)


# plan: refusals

@pytest.mark.parametrize("changes,kwargs,message", [
    ({}, dict(backup_id="20261130T000000Z"),
     "backup=20261130T000000Z: no such backup in the store; it holds %s, %s" % (A, B)),
    (dict(manifests=()), dict(backup_id=A), "backup=%s: no such backup in the store; it holds no complete backup" % A),
    (dict(sizes={"backups/%s/backup.mbstream" % A: 999}), dict(backup_id=A),
     "backup=%s is damaged: its object is 999 bytes, the manifest says 52428800: nothing was restored" % A),
    (dict(missing=["backups/%s/backup.mbstream" % A]), dict(backup_id=A), "backup=%s is damaged: its object is missing" % A),
    (dict(running=["20261201T120000Z"]), dict(backup_id="20261201T120000Z"), "backup=20261201T120000Z is incomplete"),
    ({}, dict(point_in_time="2026-12-01 10:20"), "point_in_time=2026-12-01 10:20 is not a UTC time 'YYYY-MM-DD HH:MM:SS'"),
    ({}, dict(backup_id=A, point_in_time="noon"), "point_in_time=noon is not a UTC time"),
    ({}, dict(point_in_time="2026-12-31 25:00:00"), "point_in_time=2026-12-31 25:00:00 is not a UTC time"),
    ({}, dict(point_in_time=at(59)),
     "point_in_time=2026-12-01 10:00:59 is before the oldest complete backup (finished 2026-12-01 10:01:00 UTC): nothing to restore from"),
    (dict(manifests=()), dict(point_in_time=at(59)),
     "point_in_time=2026-12-01 10:00:59 is before the oldest complete backup: nothing to restore from"),
    ({}, dict(backup_id=B, point_in_time=at(1200)),
     "point_in_time=2026-12-01 10:20:00 is before backup %s finished (2026-12-01 11:01:00 UTC): pick an earlier backup" % B),
    ({}, dict(point_in_time=at(4801)), "point_in_time=2026-12-01 11:20:01 is after what the archive covers: up to 2026-12-01 11:20:00 UTC"),
    ({}, dict(backup_id=A, point_in_time=at(4801)), "point_in_time=2026-12-01 11:20:01 is after what the archive covers"),
    (dict(archived=()), dict(point_in_time=at(61)), "point_in_time=2026-12-01 10:01:01 is after what the archive covers: up to 2026-12-01 10:01:00 UTC"),
    (dict(missing=[L3["object"]]), dict(point_in_time=at(1200)),
     "point_in_time=2026-12-01 10:20:00 is past a gap in the archive of timeline %s: the binary logs with the transactions "
     "after sequence number 20 and before 31 are missing; it can restore up to 2026-12-01 10:10:00 UTC" % TL),
    (dict(sizes={L3["object"]: 1}), dict(backup_id=A, point_in_time=at(4000)), "point_in_time=2026-12-01 11:06:40 is past a gap"),
    (dict(manifests=(manifest(A, 10, T0 + 60, version="11.8.3"),)), dict(backup_id=A, server_version="10.11"),
     "mariadb_version: the backup %s is of MariaDB 11.8.3, newer than 10.11: MariaDB data cannot be downgraded" % A),
    (dict(manifests=(manifest(A, 10, T0 + 60, version="11.8.3"),)), dict(point_in_time=at(600), server_version="10.11.9"),
     "mariadb_version: the backup %s is of MariaDB 11.8.3, newer than 10.11.9" % A),
    ({}, {}, "restore.yml needs -e backup=<id> or -e point_in_time='YYYY-MM-DD HH:MM:SS' (UTC)"),
])
def test_plan_refuses_naming_the_variable(changes, kwargs, message):
    with pytest.raises(PlanError) as error:
        backup_catalog.plan(store(**changes), **kwargs)
    assert message in str(error.value)


# plan: restores

def test_plan_backup_only():
    result = backup_catalog.plan(store(), backup_id=A, server_version="10.11")
    assert result["backup"]["id"] == A and result["backup"]["state"] == "complete"
    assert result["backup"]["object"] == "backups/%s/backup.mbstream" % A and result["backup"]["sha256"] == SHA
    assert (result["binlogs"], result["stop"], result["stop_epoch"]) == ([], "", 0)


@pytest.mark.parametrize("point_in_time,chosen,logs", [
    (at(60), A, []),  # the moment A finished; L2 starts later
    (at(1200), A, [L2, L3]),  # B finished after it
    ("2026-12-01T10:20:00Z", A, [L2, L3]),
    (at(3660), B, []),
    (at(4000), B, [L4]),
    (at(4800), B, [L4]),  # exactly archived-until
])
def test_plan_point_in_time_picks_the_newest_backup_finished_before_it(point_in_time, chosen, logs):
    result = backup_catalog.plan(store(), point_in_time=point_in_time)
    assert result["backup"]["id"] == chosen
    assert [b["object"] for b in result["binlogs"]] == [path(L) for L in logs]
    assert result["stop"] == backup_catalog.utc(backup_catalog.parse_time(point_in_time))
    assert result["stop_epoch"] == backup_catalog.parse_time(point_in_time)


def test_plan_binlogs_in_order_with_what_restore_sh_needs():
    result = backup_catalog.plan(store(), backup_id=A, point_in_time="2026-12-01 11:10:00")
    assert result["stop"] == "2026-12-01 11:10:00" and result["stop_epoch"] == T0 + 4200
    assert result["binlogs"] == [{"object": path(L), "sha256": SHA, "last_gtid": L["last_gtid"], "last_time": L["last_time"]}
                                 for L in (L2, L3, L4)]


def test_plan_point_in_time_passes_over_a_damaged_backup():
    result = backup_catalog.plan(store(missing=["backups/%s/backup.mbstream" % B]), point_in_time=at(4000))
    assert result["backup"]["id"] == A
    assert [b["object"] for b in result["binlogs"]] == [path(L) for L in (L2, L3, L4)]


def test_plan_up_to_a_gap_is_allowed():
    result = backup_catalog.plan(store(missing=[L3["object"]]), point_in_time=at(600))
    assert result["backup"]["id"] == A and [b["object"] for b in result["binlogs"]] == [path(L2)]


def test_plan_after_a_failover_applies_the_overlapping_log():
    reupload = binlog(15, 25, T0 + 300, T0 + 800, pod="mysql-1", number=7)
    catalog = store(manifests=MANIFESTS[:1], binlogs=(L1, L2, reupload), archived=(marker(T0 + 900, 25),))
    result = backup_catalog.plan(catalog, point_in_time=at(850))
    assert [b["object"] for b in result["binlogs"]] == [path(L2), path(reupload)]


@pytest.mark.parametrize("server_version", ["", "10.11", "10.11.6", "11.8", "11.8.3"])
def test_plan_accepts_the_same_or_a_newer_version(server_version):
    assert backup_catalog.plan(store(), backup_id=A, server_version=server_version)["backup"]["id"] == A


# report

def test_report_pitr_until_is_the_archived_until_marker():
    entries = backup_catalog.report(store(running=["20261201T120000Z"]))
    assert [(e["id"], e.get("pitr_until_utc"), e.get("gap")) for e in entries] == [
        (A, "2026-12-01 11:20:00", None), (B, "2026-12-01 11:20:00", None), ("20261201T120000Z", None, None)]
    assert "pitr_until_utc" not in entries[-1]


def test_report_names_the_gap_and_stops_before_it():
    entries = backup_catalog.report(store(missing=[L3["object"]]))
    assert entries[0]["pitr_until_utc"] == "2026-12-01 10:10:00"  # L2's last transaction
    assert entries[0]["gap"] == {"after_seq": 20, "next_seq": 31}
    assert (entries[1]["pitr_until_utc"], entries[1]["gap"]) == ("2026-12-01 11:20:00", None)  # B holds 21..30


def test_report_a_gap_right_after_the_backup_stops_at_its_finish():
    entries = backup_catalog.report(store(missing=[L2["object"]]))
    assert (entries[0]["pitr_until_utc"], entries[0]["gap"]) == ("2026-12-01 10:01:00", {"after_seq": 10, "next_seq": 21})


def test_report_without_an_archive_reaches_the_backups_finish():
    entries = backup_catalog.report(store(binlogs=(), archived=()))
    assert [(e["pitr_until_utc"], e["gap"]) for e in entries] == [("2026-12-01 10:01:00", None), ("2026-12-01 11:01:00", None)]


def test_report_leaves_damaged_backups_without_pitr():
    entries = backup_catalog.report(store(missing=["backups/%s/backup.mbstream" % A]))
    assert entries[0]["state"] == "damaged: its object is missing" and "pitr_until_utc" not in entries[0]


@pytest.mark.parametrize("changes", [dict(missing=[L4["object"]]), dict(sizes={L4["object"]: 1}), dict(unindexed=[L4["object"]])],
                         ids=["object missing", "object size differs", "index missing"])
def test_report_a_missing_last_binlog_is_a_gap(changes):
    # The marker says every transaction up to 0-101-40 is archived; 31..40 are not.
    entries = backup_catalog.report(store(**changes))
    assert entries[1]["gap"] == {"after_seq": 30, "next_seq": 41}
    assert entries[1]["pitr_until_utc"] == "2026-12-01 11:01:00"


def test_plan_past_a_missing_last_binlog_is_refused():
    with pytest.raises(PlanError, match="past a gap"):
        backup_catalog.plan(store(missing=[L4["object"]]), point_in_time=at(4700))


# The module

class Module(FakeModule):
    """AnsibleModule as main() builds it: params from args, with the spec's defaults."""

    args = {}

    def __init__(self, argument_spec, supports_check_mode):
        assert supports_check_mode is True
        super().__init__(**dict({name: spec.get("default") for name, spec in argument_spec.items()}, **self.args))


def run(monkeypatch, **args):
    monkeypatch.setattr(Module, "args", args)
    monkeypatch.setattr(backup_catalog_module, "AnsibleModule", Module)
    with pytest.raises(Exit) as result:
        backup_catalog_module.main()
    return result.value.args[0]


def test_module_lists_the_backups_without_a_plan(monkeypatch):
    result = run(monkeypatch, lines=standard_lines())
    assert result["failed"] is False and result["changed"] is False and "plan" not in result
    assert [b["id"] for b in result["backups"]] == [A, B]
    assert result["backups"][0]["pitr_until_utc"] == "2026-12-01 11:20:00"


def test_module_plans_a_point_in_time_restore(monkeypatch):
    result = run(monkeypatch, lines=standard_lines(), point_in_time=at(1200), server_version="11.8")
    assert result["failed"] is False and result["changed"] is False
    assert result["plan"]["backup"]["id"] == A and result["plan"]["stop"] == "2026-12-01 10:20:00"
    assert [b["object"] for b in result["plan"]["binlogs"]] == [path(L2), path(L3)]


@pytest.mark.parametrize("args,message", [
    (dict(backup="20261130T000000Z"), "backup=20261130T000000Z: no such backup in the store"),
    (dict(point_in_time=at(4801)), "point_in_time=2026-12-01 11:20:01 is after what the archive covers"),
    (dict(backup=A, server_version="10.6"), "mariadb_version: the backup %s is of MariaDB 10.11.18, newer than 10.6" % A),
])
def test_module_fails_with_the_plan_error_and_still_returns_the_backups(monkeypatch, args, message):
    result = run(monkeypatch, lines=standard_lines(), **args)
    assert result["failed"] is True and result["changed"] is False and "plan" not in result
    assert result["msg"].startswith(message)
    assert [b["id"] for b in result["backups"]] == [A, B]


def test_module_fails_on_an_unreadable_listing(monkeypatch):
    result = run(monkeypatch, lines=["OBJECTS []", "MANIFEST {\"id\": "])
    assert result["failed"] is True and result["msg"].startswith("the object store's listing could not be read: ")


# divergence: mysql-0 archived 21..30 (L3) that no replica received; mysql-1,
# promoted at epoch 3, wrote its own 21.. (server 102) and archived them.

def diverged(epoch=3, after_seq=20):
    return {"timeline": TL, "epoch": epoch, "after_seq": after_seq, "pod": "mysql-1", "time": T0 + 2000,
            "archived_gtid": "0-101-30", "server_state": "0-101-20,0-102-35"}


OWN = dict(binlog(21, 35, T0 + 2100, T0 + 2700, pod="mysql-1", number=9), epoch=3,
           first_gtid="0-102-21", last_gtid="0-102-35")
AFTER = dict(manifest("20261201T104000Z", 25, T0 + 2400), epoch=3, gtid="0-102-25")


def split_store(**changes):
    args = dict(manifests=MANIFESTS[:1] + (AFTER,), binlogs=(L1, L2, L3, OWN), archived=(marker(T0 + 2800, 35),),
                divergences=(diverged(),))
    args.update(changes)
    return backup_catalog.parse(listing(**args))


def test_a_backup_before_the_divergence_rolls_forward_only_to_it():
    catalog = split_store()
    selected, gap = backup_catalog.chain(catalog, backup(catalog, A))
    assert paths(selected) == [path(L2)] and gap is None  # neither L3 nor the new primary's OWN
    assert backup_catalog.recoverable_until(catalog, backup(catalog, A)) == (T0 + 600, None)


def test_a_backup_after_the_divergence_rolls_forward_along_its_own_epoch():
    catalog = split_store()
    selected, gap = backup_catalog.chain(catalog, backup(catalog, AFTER["id"]))
    assert paths(selected) == [path(OWN)] and gap is None
    assert backup_catalog.plan(catalog, point_in_time=at(2750))["binlogs"] == [
        {"object": path(OWN), "sha256": SHA, "last_gtid": "0-102-35", "last_time": T0 + 2700}]


def test_a_point_in_time_across_the_divergence_is_refused_naming_it():
    catalog = split_store()
    with pytest.raises(PlanError) as error:
        backup_catalog.plan(catalog, backup_id=A, point_in_time=at(1200))
    assert str(error.value) == (
        "point_in_time=2026-12-01 10:20:00 crosses a divergence in the archive of timeline %s after sequence number 20: "
        "the primary recorded at epoch 3 (mysql-1) never had the transactions archived after it, so the archive holds "
        "two histories from there; backup %s can restore up to 2026-12-01 10:10:00 UTC, a backup taken after the "
        "failover further" % (TL, A))
    # Up to the divergence it restores.
    assert [b["object"] for b in backup_catalog.plan(catalog, backup_id=A, point_in_time=at(600))["binlogs"]] == [path(L2)]


def test_report_names_the_divergence_a_backup_cannot_cross():
    entries = backup_catalog.report(split_store())
    assert [(e["id"], e["pitr_until_utc"], e["diverged"]) for e in entries] == [
        (A, "2026-12-01 10:10:00", {"after_seq": 20, "epoch": 3}), (AFTER["id"], "2026-12-01 10:46:40", None)]
    assert backup_catalog.summary(entries)[0].endswith(
        "(the archive holds two histories after sequence number 20: epoch 3 diverged)")


def test_a_divergence_of_an_earlier_epoch_does_not_limit_a_later_one():
    l2, l3 = dict(L2, epoch=1), dict(L3, epoch=1)
    catalog = split_store(divergences=(diverged(epoch=1, after_seq=5),), binlogs=(L1, L2, l2, l3),
                          manifests=(dict(MANIFESTS[0], epoch=2),), archived=(marker(T0 + 1600, 30),))
    # The epoch-0 L2 is the losing history past sequence number 5.
    assert paths(backup_catalog.chain(catalog, backup(catalog, A))[0]) == [path(l2), path(l3)]
    assert backup_catalog.divergence(catalog, backup(catalog, A)) is None


# Two clusters sharing a store path (staging and production, a DR region):
# OTHER's backups at the same seconds as this cluster's, its own archive.

OTHER = "zz9xx8yy7ww6"
OTHER_MANIFESTS = (manifest(A + "-" + OTHER, 12, T0 + 70, timeline=OTHER), manifest(B + "-" + OTHER, 50, T0 + 3670, timeline=OTHER))
OTHER_LOGS = (binlog(13, 50, T0 + 200, T0 + 3000, timeline=OTHER),)


def shared(**changes):
    args = dict(manifests=MANIFESTS + OTHER_MANIFESTS, binlogs=(L1, L2, L3, L4) + OTHER_LOGS,
                archived=ARCHIVED + (marker(T0 + 4800, 50, timeline=OTHER),))
    args.update(changes)
    return backup_catalog.parse(listing(**args))


def test_backups_of_two_timelines_with_the_same_old_ids_are_both_listed():
    catalog = shared(manifests=MANIFESTS + tuple(dict(m, id=m["id"][:16], object="backups/%s/backup.mbstream" % m["id"][:16])
                                                 for m in OTHER_MANIFESTS))
    assert [(b["id"], b["timeline"]) for b in backup_catalog.backups(catalog)] == [
        (A, TL), (A, OTHER), (B, TL), (B, OTHER)]
    with pytest.raises(PlanError) as error:
        backup_catalog.plan(catalog, backup_id=A)
    assert str(error.value) == ("backup=%s is the id of a backup of each of the timelines %s, %s: name the one to restore, "
                                "-e source=NAMESPACE/NAME/TIMELINE" % (A, TL, OTHER))
    assert backup_catalog.plan(catalog, backup_id=A, timeline=OTHER)["backup"]["timeline"] == OTHER


def test_a_point_in_time_alone_over_two_timelines_is_refused_naming_source():
    with pytest.raises(PlanError) as error:
        backup_catalog.plan(shared(), point_in_time=at(1200))
    assert str(error.value) == (
        "point_in_time=2026-12-01 10:20:00: the store holds the backups of several clusters or timelines, "
        "%s (2 backups, the newest finished 2026-12-01 11:01:00 UTC); %s (2 backups, the newest finished "
        "2026-12-01 11:01:10 UTC): name the one to restore, -e source=NAMESPACE/NAME/TIMELINE, or a backup, "
        "-e backup=<id>" % (TL, OTHER))


@pytest.mark.parametrize("timeline,chosen,logs", [(TL, A, [L2, L3]), (OTHER, A + "-" + OTHER, OTHER_LOGS)])
def test_a_named_timeline_restores_from_its_own_backups_and_logs_only(timeline, chosen, logs):
    result = backup_catalog.plan(shared(), point_in_time=at(1200), timeline=timeline)
    assert result["backup"]["id"] == chosen
    assert [b["object"] for b in result["binlogs"]] == [path(L) for L in logs]


def test_a_backup_id_names_its_timeline():
    assert backup_catalog.plan(shared(), backup_id=B + "-" + OTHER)["backup"]["timeline"] == OTHER


def test_a_timeline_without_backups_is_refused_naming_source():
    with pytest.raises(PlanError) as error:
        backup_catalog.plan(shared(), point_in_time=at(1200), timeline="aaaa1111bbbb")
    assert str(error.value).startswith("source=.../aaaa1111bbbb: the store holds no backup of timeline aaaa1111bbbb; "
                                       "it holds those of %s (2 backups" % TL)


def test_the_summary_marks_the_backups_of_other_timelines():
    lines = backup_catalog.summary(backup_catalog.report(shared()), TL)
    assert [line.endswith("retention leaves it]") for line in lines] == [False, True, False, True]
    assert "[timeline %s, of another cluster" % OTHER in lines[1]
    assert backup_catalog.summary(backup_catalog.report(shared())) == [line.split(" [")[0] for line in lines]


def test_the_summary_tells_a_backups_verification():
    verified = dict(MANIFESTS[1], verified_time=T0 + 7200, verified_gtid="0-101-40", verified_tables=3, verified_result="match")
    lines = backup_catalog.summary(backup_catalog.report(store(manifests=(MANIFESTS[0], verified))))
    assert "verified" not in lines[0]
    assert lines[1].endswith("; verified 2026-12-01 12:00:00 UTC at GTID 0-101-40: match")
