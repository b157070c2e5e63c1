"""The backup scripts' decisions (archive-binlogs.sh, backup-to-store.sh,
retention.sh, request-backup.sh), run by bash on temporary directories, as in
test_pod_scripts.py: each test sources a script (its main does not run), or
runs backup-to-store.sh whole from a copy of the scripts, with its paths in a
temporary directory and what needs a server or the network replaced by stubs:
sql, mariadb-binlog, mariadb-backup, socat, sleep, and store (the object
store), which a fake serves from a directory tree with S3's rules
(fixtures/backup-scripts/fake_store.py, checked against rclone's own answers
where rclone is installed). No cluster, no server, no store, no network."""
import calendar
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import backup_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "roles", "configmap", "files", "scripts")
FAKE_STORE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "backup-scripts", "fake_store.py")

TL = "k3x9q2m1a0bc"  # the cluster's timeline (the record's key timeline)
OLD_TL = "p7w2z5r8t1ab"  # one it was restored from, say
# bucket/prefix/BACKUP_PATH: what store_root names, with the Secret below.
STORE_ROOT = "backups/team/ns/mysql"
STORE_SECRET = {"bucket": "backups", "prefix": "team/", "endpoint": "https://s3.example", "access-key-id": "AKIA",
                "secret-access-key": "s3cr3t"}

STUBS = r"""
store() { "$FAKE_PYTHON" "$FAKE_STORE" "$T/s3" "$T/store.log" "$@"; }
"""


def utc(text):
    """Epoch seconds of 'YYYY-MM-DD HH:MM:SS' UTC."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


class Run:
    def __init__(self, done):
        self.rc = done.returncode
        self.out = done.stdout.decode()
        self.err = done.stderr.decode()


class Store:
    """The fake store's bucket, seen from the cluster's root."""

    def __init__(self, tmp_path):
        self.base = tmp_path / "s3"
        self.root = self.base / STORE_ROOT
        self.log = tmp_path / "store.log"

    def put(self, key, content):
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    def get(self, key):
        return (self.root / key).read_text()

    def keys(self):
        if not self.root.exists():
            return set()
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}

    def calls(self):
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def changes(self):
        """(subcommand, key) of every call that writes or deletes, in order."""
        changes = []
        for call in self.calls():
            command, *args = call["argv"]
            if command in ("rcat", "copyto", "deletefile", "purge"):
                changes.append((command, key(args[-1])))
        return changes


def key(remote):
    """A remote path relative to the cluster's root, without a trailing slash."""
    prefix = "store:%s/" % STORE_ROOT
    assert remote.startswith(prefix), remote
    return remote[len(prefix):].rstrip("/")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


@pytest.fixture
def sh(tmp_path):
    """sh(script, body, hostname=..., args=..., env=...): source the script in
    bash with the paths (DATADIR, TOPOLOGY, CREDENTIALS, STORE_SECRET, the
    archiver's caches) under tmp_path, the timeline TL recorded and store
    replaced by the fake, then run body."""
    for name in ("data", "credentials", "bin", "topology", "store-secret", "s3"):
        (tmp_path / name).mkdir()
    (tmp_path / "topology" / "primary").write_text("mysql-0")
    (tmp_path / "topology" / "initialised").write_text("true")
    (tmp_path / "topology" / "timeline").write_text(TL)
    for name, value in STORE_SECRET.items():
        (tmp_path / "store-secret" / name).write_text(value)

    def run(script, body, hostname="mysql-0", args=(), env=None):
        prelude = "\n".join([
            "set -euo pipefail; shopt -s inherit_errexit",  # as in every pod script
            ". %s" % shlex.quote(os.path.join(SCRIPTS, script)),
            'DATADIR=$T/data CREDENTIALS=$T/credentials TOPOLOGY=$T/topology STORE_SECRET=$T/store-secret',
            'RANGES=$T/ranges FLUSHED_AT=$T/flushed-at',  # archive-binlogs.sh's, in /tmp in a pod
            STUBS,
        ])
        environ = {"PATH": "%s:%s" % (tmp_path / "bin", os.environ["PATH"]), "HOSTNAME": hostname,
                   "STATEFULSET_NAME": "mysql", "SERVICE_NAME": "mysql", "BACKUP_PATH": "ns/mysql",
                   "T": str(tmp_path), "FAKE_PYTHON": sys.executable, "FAKE_STORE": FAKE_STORE}
        environ.update(env or {})
        done = subprocess.run(["bash", "-c", prelude + "\n" + body, "test", *args], env=environ,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        return Run(done)

    return run


def executable(tmp_path, name, body):
    path = tmp_path / "bin" / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def index_name(first, last, pod="mysql-0", number=1):
    """A binary log's object name in TIMELINE/binlogs/, as archive-binlogs.sh makes it."""
    return "%020d-%020d.%s.mysql-bin.%06d" % (first, last, pod, number)


def index_doc(first, last, pod="mysql-0", number=1, timeline=TL, size=1024, sha="0" * 64,
              first_time=1796120000, last_time=1796120060):
    return {"timeline": timeline, "object": "binlogs/" + index_name(first, last, pod, number), "pod": pod,
            "file": "mysql-bin.%06d" % number, "first_gtid": "0-100-%d" % first, "last_gtid": "0-100-%d" % last,
            "first_time": first_time, "last_time": last_time, "size": size, "sha256": sha}


def put_binlog(store, first, last, pod="mysql-0", number=1, timeline=TL, index=True):
    """An archived binary log and (unless index=False) its index, as archive-binlogs.sh writes them."""
    name = "%s/binlogs/%s" % (timeline, index_name(first, last, pod, number))
    store.put(name, "binlog %d-%d\n" % (first, last))
    if index:
        store.put(name + ".json", json.dumps(index_doc(first, last, pod, number, timeline)) + "\n")
    return name


def put_marker(store, gtid, timeline=TL, epoch=None):
    """archived-until.json, as archive-binlogs.sh writes it (before epochs, without one)."""
    store.put("%s/binlogs/archived-until.json" % timeline,
              '{"timeline": "%s", %s"time": 1796120100, "gtid": "%s", "pod": "mysql-0"}\n'
              % (timeline, '"epoch": %d, ' % epoch if epoch is not None else "", gtid))


# 1. archive-binlogs.sh: the GTID range of a binary log

# mariadb-binlog --no-defaults of a 10.11 binary log (TZ=UTC): the event
# headers, a TAB before the event type, the hour padded with a space.
BINLOG_10_11 = (
    "#261201 11:13:51 server id 100  end_log_pos 285 CRC32 0xb8807e51 \tGtid list []\n"
    "#261201 11:14:09 server id 100  end_log_pos 370 CRC32 0x857dbe94 \tGTID 0-100-1 ddl\n"
    "#261201 11:14:09 server id 100  end_log_pos 527 CRC32 0x5f1c2a1c \tGTID 0-100-2 ddl\n"
    "#261201 11:14:14 server id 100  end_log_pos 1430 CRC32 0x700ceefa \tGTID 0-100-6 trans\n"
)
SINGLE_DIGIT_HOURS = (
    "#261201  9:05:01 server id 100  end_log_pos 285 CRC32 0xb8807e51 \tGtid list [0-100-6]\n"
    "#261201  9:05:03 server id 100  end_log_pos 370 CRC32 0x857dbe94 \tGTID 0-100-7 trans\n"
    "#261201 10:00:00 server id 100  end_log_pos 527 CRC32 0x5f1c2a1c \tGTID 0-100-8 trans\n"
)

# Prints $T/binlog-output/NAME for the file it is given, records its argv and TZ.
MARIADB_BINLOG_STUB = (
    'printf "%s TZ=%s\\n" "$*" "${TZ:-}" >> "$T/mariadb-binlog.log"\n'
    'file=${@: -1}; cat "$T/binlog-output/${file##*/}"\n'
)


@pytest.fixture
def binlogs(sh, tmp_path):
    """binlogs({name: mariadb-binlog output}): the files in the datadir and the stub that parses them."""
    executable(tmp_path, "mariadb-binlog", MARIADB_BINLOG_STUB)
    (tmp_path / "binlog-output").mkdir()

    def make(outputs):
        for name, output in outputs.items():
            (tmp_path / "data" / name).write_text("binary log %s\n" % name)
            (tmp_path / "binlog-output" / name).write_text(output)

    return make


def mariadb_binlog_calls(tmp_path):
    path = tmp_path / "mariadb-binlog.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("output,expected", [
    (BINLOG_10_11, "0-100-1 0-100-6 %d %d" % (utc("2026-12-01 11:14:09"), utc("2026-12-01 11:14:14"))),
    (SINGLE_DIGIT_HOURS, "0-100-7 0-100-8 %d %d" % (utc("2026-12-01 09:05:03"), utc("2026-12-01 10:00:00"))),
    # Group-committed transactions carry a commit id.
    ("#261201 11:14:09 server id 101  end_log_pos 370 CRC32 0x857dbe94 \tGTID 0-101-12 cid=25 trans\n"
     "#261201 11:14:10 server id 101  end_log_pos 527 CRC32 0x5f1c2a1c \tGTID 0-101-13 cid=25 trans\n",
     "0-101-12 0-101-13 %d %d" % (utc("2026-12-01 11:14:09"), utc("2026-12-01 11:14:10"))),
], ids=["10.11", "single-digit-hours", "commit-ids"])
def test_binlog_range_is_the_first_and_last_gtid_and_their_times(sh, binlogs, tmp_path, output, expected):
    binlogs({"mysql-bin.000001": output})
    done = sh("archive-binlogs.sh", "binlog_range mysql-bin.000001")
    assert (done.rc, done.out) == (0, expected + "\n"), done.err
    # The server's timestamps are read as UTC whatever the pod's zone.
    assert mariadb_binlog_calls(tmp_path) == ["--no-defaults %s TZ=UTC" % (tmp_path / "data" / "mysql-bin.000001")]


@pytest.mark.parametrize("output", [
    "#261201 11:13:51 server id 100  end_log_pos 285 CRC32 0xb8807e51 \tGtid list []\n",
    "#261201 11:13:51 server id 100  end_log_pos 285 CRC32 0xb8807e51 \tGtid list [0-100-6]\n",
    "",
], ids=["gtid-list-empty", "gtid-list", "nothing"])
def test_binlog_range_of_a_log_without_transactions_is_empty(sh, binlogs, output):
    binlogs({"mysql-bin.000002": output})
    done = sh("archive-binlogs.sh", "binlog_range mysql-bin.000002")
    assert (done.rc, done.out) == (0, ""), done.err


def test_cached_range_parses_a_closed_log_once_per_name_and_size(sh, binlogs, tmp_path):
    binlogs({"mysql-bin.000001": BINLOG_10_11, "mysql-bin.000002": ""})
    done = sh("archive-binlogs.sh", "cached_range mysql-bin.000001 1430; cached_range mysql-bin.000001 1430; "
                                    "cached_range mysql-bin.000002 328; cached_range mysql-bin.000002 328")
    assert done.rc == 0, done.err
    assert done.out.splitlines() == ["0-100-1 0-100-6 1796123649 1796123654"] * 2
    assert len(mariadb_binlog_calls(tmp_path)) == 2  # an empty range is cached too
    assert sorted(p.name for p in (tmp_path / "ranges").iterdir()) == ["mysql-bin.000001.1430", "mysql-bin.000002.328"]


def test_a_failing_parse_caches_nothing(sh, binlogs, tmp_path):
    binlogs({})
    (tmp_path / "data" / "mysql-bin.000001").write_text("")  # no output for it: the stub fails
    done = sh("archive-binlogs.sh", "cached_range mysql-bin.000001 1430; echo reached")
    assert done.rc != 0 and "reached" not in done.out
    assert not (tmp_path / "ranges" / "mysql-bin.000001.1430").exists()


# 2. archive-binlogs.sh: how far the timeline's archive reaches

ARCHIVED_MAX_SEQ = 'archived_max_seq "$(store_root)/$(timeline)/binlogs"'


@pytest.mark.parametrize("indexes,marker,expected", [
    ([], None, 0),
    ([(1, 6), (7, 9)], None, 9),  # 09: decimal, not octal
    ([(1, 6), (7, 1000), (10, 999)], None, 1000),
    ([(1, 6)], "0-100-5", 6),
    # Retention deleted every index the kept backups hold already.
    ([], "0-100-15", 15),
    ([(1, 6)], "0-101-1200", 1200),
    # A marker of a server without a transaction.
    ([], "", 0),
], ids=["empty", "indexes", "numeric", "index-wins", "marker-only", "marker-wins", "marker-without-position"])
def test_archived_max_seq_is_the_newest_index_or_the_marker(sh, store, indexes, marker, expected):
    for number, (first, last) in enumerate(indexes, 1):
        put_binlog(store, first, last, number=number)
    if marker is not None:
        put_marker(store, marker)
    done = sh("archive-binlogs.sh", ARCHIVED_MAX_SEQ)
    assert (done.rc, done.out) == (0, str(expected)), done.err


def test_archived_max_seq_counts_only_this_timelines_indexes(sh, store):
    put_binlog(store, 1, 6)
    put_binlog(store, 7, 9, index=False)  # its upload stopped before the index: uploaded again
    put_binlog(store, 1, 500, timeline=OLD_TL)
    put_marker(store, "0-100-400", timeline=OLD_TL)
    store.put(TL + "/binlogs/notes.json", "{}\n")
    store.put(TL + "/binlogs/1-700.mysql-0.mysql-bin.000009.json", "{}\n")  # not 20 digits
    store.put(TL + "/binlogs/%020d-%020d.json" % (1, 800), "{}\n")  # no pod and file
    done = sh("archive-binlogs.sh", ARCHIVED_MAX_SEQ)
    assert (done.rc, done.out) == (0, "6"), done.err


# 3. archive-binlogs.sh: one round

# SELECT @@gtid_binlog_pos answers $T/position, SELECT @@gtid_binlog_state
# $T/state (else the position); SHOW BINARY LOGS $T/binary-logs
# (fails when it is missing); FLUSH BINARY LOGS succeeds. Each call is
# recorded in $T/sql.log. The server acts as primary while $T/role says so.
ARCHIVE_STUBS = r"""
sql() {
  printf '%s\n' "$*" >> "$T/sql.log"
  case "$*" in
    "-N -e SELECT @@gtid_binlog_pos") cat "$T/position" ;;
    "-N -e SELECT @@gtid_binlog_state") cat "$T/state" 2>/dev/null || cat "$T/position" ;;
    "-e FLUSH BINARY LOGS") ;;
    "-N -e SHOW BINARY LOGS") cat "$T/binary-logs" ;;
    *) echo "unexpected sql $*" >&2; return 1 ;;
  esac
}
acting_primary() { [ "$(cat "$T/role")" = primary ]; }
"""


@pytest.fixture
def server(tmp_path, binlogs):
    """server(logs, position, role): the binary logs SHOW BINARY LOGS lists, the
    last one open; each (file, range) with range "FIRST LAST" (sequence
    numbers of domain 0, server 100, or whole GTIDs; the n-th log's first transaction at
    11:14:00 UTC + 10n s, its last one second later) cached as parsed, ""
    for a log without transactions, or None for a log not parsed yet (its
    mariadb-binlog output is then BINLOG_10_11)."""
    binlogs({})

    def make(logs, position, role="primary"):
        listing = []
        for n, (name, seqs) in enumerate(logs):
            path = tmp_path / "data" / name
            path.write_text("binary log %s: %s\n" % (name, seqs))
            size = path.stat().st_size
            listing.append("%s\t%d\n" % (name, size))
            if seqs is None:
                (tmp_path / "binlog-output" / name).write_text(BINLOG_10_11)
                continue
            (tmp_path / "ranges").mkdir(exist_ok=True)
            line = ""
            if seqs:
                first, last = ("0-100-" + g if "-" not in g else g for g in seqs.split())
                t = utc("2026-12-01 11:14:00") + 10 * n
                line = "%s %s %d %d\n" % (first, last, t, t + 1)
            (tmp_path / "ranges" / ("%s.%d" % (name, size))).write_text(line)
        (tmp_path / "binary-logs").write_text("".join(listing))
        (tmp_path / "position").write_text(position + "\n")
        (tmp_path / "role").write_text(role)

    return make


def sql_calls(tmp_path):
    path = tmp_path / "sql.log"
    return path.read_text().splitlines() if path.exists() else []


def archive_round(sh, hostname="mysql-0", env=None, recorded=None, epoch=None):
    """One round on HOSTNAME, which the record names as the primary (or
    RECORDED) at EPOCH (no epoch key: none recorded yet)."""
    record = "printf %%s %s > \"$TOPOLOGY/primary\"\n" % (recorded or hostname)
    if epoch is not None:
        record += "printf %%s %d > \"$TOPOLOGY/epoch\"\n" % epoch
    return sh("archive-binlogs.sh", ARCHIVE_STUBS + record + "archive_round", hostname=hostname, env=env)


def uploads(store):
    """The names of the binary logs a round uploaded, in order (each copy followed by its index)."""
    changes = store.changes()
    copied = [k for c, k in changes if c == "copyto"]
    assert [k for c, k in changes if c == "rcat" and "/binlogs/" in k and k.endswith(".json") and "archived-until" not in k] \
        == [k + ".json" for k in copied]
    return [k.rsplit("/", 1)[1] for k in copied]


def test_a_round_uploads_every_closed_log_of_a_new_archive_then_the_marker(sh, server, store, tmp_path):
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "7 9"), ("mysql-bin.000003", "10 11")], "0-100-11")
    before = int(time.time())
    done = archive_round(sh)
    after = int(time.time())
    assert done.rc == 0, done.err
    assert sql_calls(tmp_path) == ["-N -e SELECT @@gtid_binlog_pos", "-e FLUSH BINARY LOGS", "-N -e SELECT @@gtid_binlog_state",
                                   "-N -e SHOW BINARY LOGS"]
    assert (tmp_path / "flushed-at").read_text() == "0-100-11"
    first, second = index_name(1, 6, number=1), index_name(7, 9, number=2)
    binlogs = TL + "/binlogs/"
    # Each log, then its index; the marker last.
    assert store.changes() == [("copyto", binlogs + first), ("rcat", binlogs + first + ".json"),
                               ("copyto", binlogs + second), ("rcat", binlogs + second + ".json"),
                               ("rcat", binlogs + "archived-until.json")]
    assert store.get(binlogs + first) == (tmp_path / "data" / "mysql-bin.000001").read_text()
    data = tmp_path / "data" / "mysql-bin.000002"
    assert json.loads(store.get(binlogs + second + ".json")) == {
        "timeline": TL, "epoch": 0, "object": "binlogs/" + second, "pod": "mysql-0", "file": "mysql-bin.000002",
        "first_gtid": "0-100-7", "last_gtid": "0-100-9",
        "first_time": utc("2026-12-01 11:14:10"), "last_time": utc("2026-12-01 11:14:11"),
        "size": data.stat().st_size, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    marker = json.loads(store.get(binlogs + "archived-until.json"))
    assert before <= marker.pop("time") <= after
    assert marker == {"timeline": TL, "epoch": 0, "gtid": "0-100-11", "pod": "mysql-0"}
    assert "archived mysql-bin.000001 (0-100-1..0-100-6)" in done.err
    assert "WARNING" not in done.err


def test_a_promoted_replica_uploads_only_what_the_archive_lacks(sh, server, store):
    put_binlog(store, 1, 6, pod="mysql-2", number=4)
    put_marker(store, "0-100-6")
    server([("mysql-bin.000001", "1 4"),    # all archived
            ("mysql-bin.000002", "5 6"),    # ends where the archive does
            ("mysql-bin.000003", "5 9"),    # overlaps: uploaded whole
            ("mysql-bin.000004", ""),       # no transactions
            ("mysql-bin.000005", "10 12"),  # follows on
            ("mysql-bin.000006", "13 13")], "0-100-13")  # open
    done = archive_round(sh, hostname="mysql-1")
    assert done.rc == 0, done.err
    assert uploads(store) == [index_name(5, 9, "mysql-1", 3), index_name(10, 12, "mysql-1", 5)]
    assert store.changes()[-1] == ("rcat", TL + "/binlogs/archived-until.json")
    assert json.loads(store.get(TL + "/binlogs/archived-until.json"))["gtid"] == "0-100-13"
    assert "WARNING" not in done.err
    # The marker is read once a round.
    assert sum(c["argv"][0] == "cat" and c["argv"][-1].endswith("archived-until.json") for c in store.calls()) == 1


def test_the_open_log_is_never_uploaded(sh, server, store):
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "7 9")], "0-100-9")
    done = archive_round(sh)
    assert done.rc == 0, done.err
    assert uploads(store) == [index_name(1, 6)]


def test_a_closed_log_not_parsed_yet_is_parsed_and_the_open_one_never(sh, server, store, tmp_path):
    server([("mysql-bin.000001", None), ("mysql-bin.000002", None)], "0-100-6")
    done = archive_round(sh)
    assert done.rc == 0, done.err
    assert uploads(store) == [index_name(1, 6)]
    assert [call.split()[1] for call in mariadb_binlog_calls(tmp_path)] == [str(tmp_path / "data" / "mysql-bin.000001")]


def test_a_round_on_a_replica_does_nothing(sh, server, store, tmp_path):
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "7 9")], "0-100-9", role="replica")
    done = archive_round(sh, hostname="mysql-1")
    assert (done.rc, done.out) == (0, ""), done.err
    assert sql_calls(tmp_path) == [] and store.calls() == []
    assert not (tmp_path / "flushed-at").exists()


def test_a_round_without_new_transactions_does_not_flush(sh, server, store, tmp_path):
    put_binlog(store, 1, 6)
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "")], "0-100-6")
    (tmp_path / "flushed-at").write_text("0-100-6")
    done = archive_round(sh)
    assert done.rc == 0, done.err
    assert "-e FLUSH BINARY LOGS" not in sql_calls(tmp_path)
    assert store.changes() == [("rcat", TL + "/binlogs/archived-until.json")]


def test_a_round_on_a_server_without_transactions_marks_an_empty_position(sh, server, store, tmp_path):
    server([("mysql-bin.000001", "")], "")
    done = archive_round(sh)
    assert done.rc == 0, done.err
    assert "-e FLUSH BINARY LOGS" not in sql_calls(tmp_path)
    assert json.loads(store.get(TL + "/binlogs/archived-until.json"))["gtid"] == ""
    assert sh("archive-binlogs.sh", ARCHIVED_MAX_SEQ).out == "0"


def test_a_writable_pod_the_record_does_not_name_archives_nothing(sh, server, store, tmp_path):
    """A thawed old primary: writable, but another pod is the primary now."""
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "7 9")], "0-100-9")
    done = archive_round(sh, hostname="mysql-0", recorded="mysql-1")
    assert done.rc == 0, done.err
    assert store.calls() == [] and sql_calls(tmp_path) == []


def test_a_pod_whose_record_is_older_than_the_archive_archives_nothing(sh, server, store):
    put_marker(store, "0-100-6", epoch=5)
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "7 9"), ("mysql-bin.000003", "10 10")], "0-100-10")
    done = archive_round(sh, epoch=4)
    assert done.rc == 0, done.err
    assert store.changes() == []
    assert "the archive is at epoch 5 and this pod's record at 4" in done.err


def test_a_new_primary_without_what_the_archive_holds_records_the_divergence_and_archives_its_own_history(sh, server, store):
    """mysql-0 archived 7..9 that no replica received; mysql-1, promoted at
    epoch 3, wrote its own 7..12 (server 101)."""
    put_binlog(store, 1, 6, number=1)
    put_binlog(store, 7, 9, number=2)
    put_marker(store, "0-100-9", epoch=2)
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "0-101-7 0-101-12"), ("mysql-bin.000003", "0-101-13 0-101-13")],
           "0-101-13")
    (store.base.parent / "state").write_text("0-100-6,0-101-13\n")
    done = archive_round(sh, hostname="mysql-1", epoch=3)
    assert done.rc == 0, done.err
    divergence = json.loads(store.get(TL + "/divergences/3.json"))
    assert divergence.pop("time") > 0
    assert divergence == {"timeline": TL, "epoch": 3, "after_seq": 6, "pod": "mysql-1", "archived_gtid": "0-100-9",
                          "server_state": "0-100-6,0-101-13"}
    assert "the histories diverge after sequence number 6" in done.err
    assert uploads(store) == [index_name(7, 12, "mysql-1", 2)]
    assert json.loads(store.get(TL + "/binlogs/%s.json" % index_name(7, 12, "mysql-1", 2)))["epoch"] == 3
    marker = json.loads(store.get(TL + "/binlogs/archived-until.json"))
    assert (marker["epoch"], marker["gtid"], marker["pod"]) == (3, "0-101-13", "mysql-1")
    # The next round finds its own history in the archive: no divergence again.
    store.log.unlink()
    again = archive_round(sh, hostname="mysql-1", epoch=3)
    assert again.rc == 0 and "WARNING" not in again.err and uploads(store) == []


def test_a_divergence_after_retention_starts_where_the_old_primarys_own_writes_stop(sh, server, store):
    """Retention left only the log with the write no replica received
    (0-100-9): the new primary holds mysql-0's writes up to 0-100-8, so the
    histories agree up to 8, not 0."""
    put_binlog(store, 9, 9, number=3)
    put_marker(store, "0-100-9", epoch=2)
    server([("mysql-bin.000001", "1 8"), ("mysql-bin.000002", "0-101-9 0-101-12"), ("mysql-bin.000003", "")], "0-101-12")
    (store.base.parent / "state").write_text("0-100-8,0-101-12\n")
    done = archive_round(sh, hostname="mysql-1", epoch=3)
    assert done.rc == 0, done.err
    assert json.loads(store.get(TL + "/divergences/3.json"))["after_seq"] == 8
    assert uploads(store) == [index_name(9, 12, "mysql-1", 2)]


def test_a_gap_in_the_archive_is_logged_and_the_log_uploaded_anyway(sh, server, store):
    put_marker(store, "0-100-6")  # retention deleted the indexes; 7..9 were never archived
    server([("mysql-bin.000007", "10 12"), ("mysql-bin.000008", "13 14")], "0-100-14")
    done = archive_round(sh, hostname="mysql-1")
    assert done.rc == 0, done.err
    warnings = [line for line in done.err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "after sequence number 6 and before 0-100-10" in warnings[0]
    assert uploads(store) == [index_name(10, 12, "mysql-1", 7)]


def test_a_failed_upload_leaves_the_marker_unwritten(sh, server, store):
    put_marker(store, "0-100-3")
    server([("mysql-bin.000001", "4 6"), ("mysql-bin.000002", "7 9")], "0-100-9")
    done = archive_round(sh, env={"FAKE_STORE_FAIL": "copyto"})
    assert done.rc != 0
    assert [c for c, _ in store.changes()] == ["copyto"]  # nothing after the failed copy
    assert json.loads(store.get(TL + "/binlogs/archived-until.json"))["gtid"] == "0-100-3"


def test_a_second_gtid_domain_stops_the_archive_before_anything_is_uploaded(sh, server, store):
    put_marker(store, "0-100-3")
    server([("mysql-bin.000001", "4 6"), ("mysql-bin.000002", "0-100-7 5-100-1")], "0-100-7,5-100-1")
    done = archive_round(sh)
    assert done.rc != 0 and "several GTID domains (0 5, at 0-100-7,5-100-1)" in done.err
    assert [c for c, _ in store.changes()] == []
    assert json.loads(store.get(TL + "/binlogs/archived-until.json"))["gtid"] == "0-100-3"


def test_a_failed_binary_log_listing_leaves_the_marker_unwritten(sh, server, store, tmp_path):
    put_marker(store, "0-100-3")
    server([("mysql-bin.000001", "4 6"), ("mysql-bin.000002", "7 9")], "0-100-9")
    (tmp_path / "binary-logs").unlink()  # SHOW BINARY LOGS fails
    done = archive_round(sh)
    assert done.rc != 0
    assert json.loads(store.get(TL + "/binlogs/archived-until.json"))["gtid"] == "0-100-3"


# 4. backup-to-store.sh: the position a backup holds, from mariadb-backup's log

BINLOG_POSITION = ("[00] 2026-12-01 11:14:15 MySQL binlog position: filename 'mysql-bin.000001', position '2030', "
                   "GTID of the last change '0-100-8'\n")
SLAVE_POSITION = ("[00] 2026-12-01 11:14:15 MySQL slave binlog position: gtid_slave_pos '%s'; master '' "
                  "master_use_gtid = slave_pos\n")


@pytest.mark.parametrize("log,gtid", [
    (BINLOG_POSITION + SLAVE_POSITION % "0-100-7", "0-100-7"),  # a replica: where replication stands
    (BINLOG_POSITION, "0-100-8"),  # a primary
    (BINLOG_POSITION + SLAVE_POSITION % "", "0-100-8"),  # a replica that never replicated a transaction
    ("[00] 2026-12-01 11:14:15 MySQL binlog position: filename 'mysql-bin.000001', position '328', "
     "GTID of the last change ''\n", ""),  # a new primary: "empty"
], ids=["replica", "primary", "replica-without-slave-pos", "new-primary"])
def test_backup_gtid_from_mariadb_backups_log(sh, tmp_path, log, gtid):
    (tmp_path / "backup.log").write_text(
        "[00] 2026-12-01 11:14:12 Using server version 10.11.10-MariaDB-ubu2204-log\n" + log
        + "[00] 2026-12-01 11:14:15 completed OK!\n")
    done = sh("backup-to-store.sh", 'backup_gtid "$T/backup.log"')
    assert (done.rc, done.out) == (0, gtid), done.err



# backup-to-store.sh as a whole, run as a script from a copy of the scripts
# whose common.sh and store.sh end by pointing the paths into tmp_path and
# store at the fake (retention.sh runs as a script of its own); mariadb-backup
# is a stub that logs $T/backup.log and streams "mbstream bytes". Its work
# directory goes to $T instead of /tmp. The progress ticker's sleep 10 takes
# 0.1 s, and a ticker that outlives the script notes it in $T/orphan-ticks
# and stops (so that it cannot hold the test's pipes open).
DONOR_STUBS = r"""
mktemp() { command mktemp "${@/#\/tmp\//$T/}"; }
sleep() {
  local me=$BASHPID parent
  command sleep 0.1
  read -r _ _ _ parent _ < "/proc/$me/stat"  # the script's process, or init once it ended
  [ "$parent" = $$ ] || { echo "ticked after the script ended" >> "$T/orphan-ticks"; return 1; }
}
"""
MARIADB_BACKUP_STUB = (
    'printf "%s\\n" "$@" > "$T/mariadb-backup-args"\n'
    'cat "$T/backup.log" >&2\n'
    'printf "mbstream bytes"\n'
    'exit "$(cat "$T/backup-exit" 2>/dev/null || echo 0)"\n'
)
# The donor's server: its GTID position ($T/position) and replication lag ($T/lag; none: a primary).
MARIADB_STUB = r"""
case ${!#} in
  "SELECT @@gtid_current_pos") cat "$T/position" 2>/dev/null || echo 0-100-7 ;;
  'SHOW SLAVE STATUS\G') [ ! -e "$T/lag" ] || printf '  Slave_SQL_Running: Yes\n  Seconds_Behind_Master: %s\n' "$(cat "$T/lag")" ;;
  *) echo "unexpected query ${!#}" >&2; exit 1 ;;
esac
"""
BACKUP_TIME = "20261201T111412Z"  # the request's
BACKUP_ID = BACKUP_TIME + "-" + TL  # the donor names the backup with its timeline


@pytest.fixture
def donor(sh, tmp_path):
    """donor(args, env=...): run backup-to-store.sh ARGS on mysql-2, a replica."""
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    with open(scripts / "common.sh", "a") as common:
        common.write("\nDATADIR=$T/data CREDENTIALS=$T/credentials TOPOLOGY=$T/topology CNF=$T/my.cnf\n")
    with open(scripts / "store.sh", "a") as store_sh:
        store_sh.write("\nSTORE_SECRET=$T/store-secret\n" + STUBS + DONOR_STUBS)
    executable(tmp_path, "mariadb-backup", MARIADB_BACKUP_STUB)
    executable(tmp_path, "mariadb", MARIADB_STUB)
    (tmp_path / "backup.log").write_text(
        "[00] 2026-12-01 11:14:12 Using server version 10.11.10-MariaDB-ubu2204-log\n"
        + BINLOG_POSITION + SLAVE_POSITION % "0-100-7" + "[00] 2026-12-01 11:14:15 completed OK!\n")

    def run(args, env=None):
        environ = {"PATH": "%s:%s" % (tmp_path / "bin", os.environ["PATH"]), "HOSTNAME": "mysql-2",
                   "STATEFULSET_NAME": "mysql", "SERVICE_NAME": "mysql", "BACKUP_PATH": "ns/mysql",
                   "T": str(tmp_path), "FAKE_PYTHON": sys.executable, "FAKE_STORE": FAKE_STORE}
        environ.update(env or {})
        done = subprocess.run(["bash", str(scripts / "backup-to-store.sh"), *args], env=environ,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        return Run(done)

    return run


def leftovers(tmp_path):
    """What a finished backup-to-store.sh left running or lying around."""
    time.sleep(0.3)  # a ticker left running notices within 0.1 s
    return sorted(p.name for p in tmp_path.glob("backup.??????")) + lines(tmp_path, "orphan-ticks")


def test_a_backup_streams_to_the_store_then_writes_its_manifest_then_answers(donor, store, tmp_path):
    put_backup(store, "20261201T100000Z", "0-100-3")  # the oldest: retention deletes it with KEEP 1
    (tmp_path / "topology" / "epoch").write_text("4")
    before = int(time.time())
    done = donor([BACKUP_TIME, "1"])
    after = int(time.time())
    directory = "%s/backups/%s" % (TL, BACKUP_ID)
    assert store.get(directory + "/backup.mbstream") == "mbstream bytes", done.err
    assert store.changes() == [("rcat", directory + "/backup.mbstream"), ("rcat", directory + "/manifest.json"),
                               ("purge", TL + "/backups/20261201T100000Z")]
    manifest = json.loads(store.get(directory + "/manifest.json"))
    started, finished = manifest.pop("started"), manifest.pop("finished")
    assert before <= started <= finished <= after
    assert manifest == {"id": BACKUP_ID, "timeline": TL, "epoch": 4, "object": "backups/%s/backup.mbstream" % BACKUP_ID,
                        "gtid": "0-100-7", "server_version": "10.11.10", "donor": "mysql-2",
                        "size": len(b"mbstream bytes"), "sha256": hashlib.sha256(b"mbstream bytes").hexdigest()}
    out = done.out.splitlines()
    assert "RETENTION deleted backup 20261201T100000Z" in out
    verdict = out.index(next(line for line in out if line.startswith("BACKUP ")))
    assert out[verdict].startswith("BACKUP OK {")
    assert json.loads(out[verdict][len("BACKUP OK "):]) == dict(manifest, started=started, finished=finished)
    assert "--slave-info" in lines(tmp_path, "mariadb-backup-args")
    assert not any(arg.startswith("--throttle") for arg in lines(tmp_path, "mariadb-backup-args"))


@pytest.mark.parametrize("throttle,args,verdict", [
    ("0", [], "BACKUP OK "),
    ("25", ["--throttle=25"], "BACKUP OK "),
    ("fast", None, "BACKUP FAILED 'fast' is not a number of operations a second"),
])
def test_a_throttled_backup_reads_at_most_that_many_mb_a_second(donor, store, tmp_path, throttle, args, verdict):
    done = donor([BACKUP_TIME, "7", throttle])
    assert done.out.splitlines()[-1].startswith(verdict), done.err
    if args is not None:
        assert [a for a in lines(tmp_path, "mariadb-backup-args") if a.startswith("--throttle")] == args


def test_a_finished_backup_exits_0_and_leaves_nothing_running_or_behind(donor, store, tmp_path):
    done = donor([BACKUP_TIME, "1"])
    assert done.out.splitlines()[-1].startswith("BACKUP OK ")
    assert leftovers(tmp_path) == []
    assert done.rc == 0, done.err


@pytest.mark.parametrize("args,why", [
    (["2026-12-01", "1"], "'2026-12-01' is not a backup time"),
    ([BACKUP_TIME, "0"], "'0' is not a number of backups to keep"),
])
def test_a_bad_backup_request_fails_before_anything(donor, store, tmp_path, args, why):
    done = donor(args)
    assert done.rc == 1 and done.out.splitlines()[-1].startswith("BACKUP FAILED " + why)
    assert store.calls() == [] and not (tmp_path / "mariadb-backup-args").exists()


def test_a_failed_mariadb_backup_answers_failed_and_writes_no_manifest(donor, store, tmp_path):
    (tmp_path / "backup-exit").write_text("1")
    (tmp_path / "backup.log").write_text("[00] 2026-12-01 11:14:12 Error: failed to execute query SHOW ENGINES\n")
    done = donor([BACKUP_TIME, "1"])
    assert done.rc == 1
    assert done.out.splitlines()[-1] == ("BACKUP FAILED mariadb-backup exited with 1: "
                                         "[00] 2026-12-01 11:14:12 Error: failed to execute query SHOW ENGINES")
    assert not any(k.endswith("manifest.json") for k in store.keys())
    assert leftovers(tmp_path) == []  # fail() exits inside main: its trap still sees the ticker


def test_a_failed_upload_answers_failed_and_writes_no_manifest(donor, store, tmp_path):
    done = donor([BACKUP_TIME, "1"], env={"FAKE_STORE_FAIL": "rcat"})
    assert done.rc == 1 and done.out.splitlines()[-1].startswith("BACKUP FAILED uploading to the store failed")
    assert not any(k.endswith("manifest.json") for k in store.keys())
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("lag,why", [
    ("3600", "this replica is 3600 s behind its primary (at most 60)"),
    ("NULL", "this replica cannot tell how far behind its primary it is (not connected to it)"),
])
def test_a_replica_far_behind_declines_and_the_job_asks_the_next(donor, store, tmp_path, lag, why):
    (tmp_path / "lag").write_text(lag)
    done = donor([BACKUP_TIME, "1"])
    assert (done.rc, done.out.splitlines()[-1]) == (0, "BACKUP DECLINED " + why), done.err
    assert store.calls() == [] and not (tmp_path / "mariadb-backup-args").exists()


def test_a_replica_close_enough_takes_the_backup(donor, store, tmp_path):
    (tmp_path / "lag").write_text("60")
    assert donor([BACKUP_TIME, "1"]).out.splitlines()[-1].startswith("BACKUP OK ")


def test_a_second_gtid_domain_fails_the_backup_before_anything(donor, store, tmp_path):
    (tmp_path / "position").write_text("0-100-7,5-100-1\n")
    done = donor([BACKUP_TIME, "1"])
    assert done.rc == 1 and done.out.splitlines()[-1].startswith(
        "BACKUP FAILED mysql-2's GTID position 0-100-7,5-100-1 spans several GTID domains (0 5)"), done.out
    assert store.calls() == [] and not (tmp_path / "mariadb-backup-args").exists()


@pytest.mark.parametrize("position,domains", [("", ""), ("0-100-7", "0"), ("5-1-3,0-1-2,0-2-9", "0 5"),
                                              ("12-1-1,3-1-1", "3 12")])
def test_gtid_domains(sh, position, domains):
    done = sh("common.sh", 'gtid_domains "$1"', args=[position])
    assert (done.rc, done.out.rstrip("\n")) == (0, domains), done.err


def test_a_failed_retention_still_answers_ok_for_a_complete_backup(donor, store):
    put_backup(store, "20261201T100000Z", "0-100-3")
    done = donor([BACKUP_TIME, "1"], env={"FAKE_STORE_FAIL": "purge"})
    assert "%s/backups/%s/manifest.json" % (TL, BACKUP_ID) in store.keys()
    assert done.out.splitlines()[-1].startswith("BACKUP OK ")

# 5. retention.sh

def put_backup(store, backup_id, gtid, timeline=TL, complete=True, stream="stream\n"):
    """A backup as backup-to-store.sh leaves it; without its manifest while it
    runs or after it failed; damaged when its stream (None: missing) is not
    the 7 bytes its manifest says."""
    if stream is not None:
        store.put("%s/backups/%s/backup.mbstream" % (timeline, backup_id), stream)
    if complete:
        store.put("%s/backups/%s/manifest.json" % (timeline, backup_id), json.dumps(
            {"id": backup_id, "timeline": timeline, "object": "backups/%s/backup.mbstream" % backup_id, "gtid": gtid,
             "server_version": "10.11.10", "donor": "mysql-1", "started": 1796120000, "finished": 1796120060,
             "size": 7, "sha256": "0" * 64}) + "\n")


def retention(sh, keep, env=None):
    return sh("retention.sh", 'main "$1"', hostname="mysql-1", args=[str(keep)], env=env)


def deleted(store):
    purged = {k for c, k in store.changes() if c == "purge"}
    files = {k for c, k in store.changes() if c == "deletefile"}
    assert {c for c, _ in store.changes()} <= {"purge", "deletefile"}  # retention writes nothing
    return purged, files


def binlog_pair(name):
    return {name, name + ".json"}


def test_retention_keeps_the_newest_backups_and_the_logs_they_need(sh, store):
    put_backup(store, "20261201T093000Z", "", complete=False)  # failed, older than every kept one
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "0-100-20")
    put_backup(store, "20261201T113000Z", "", complete=False)  # still running
    put_backup(store, "20261201T120000Z", "0-100-30")
    logs = {seqs: put_binlog(store, *seqs, number=n) for n, seqs in
            enumerate([(1, 6), (7, 15), (16, 20), (19, 25), (26, 35)], 1)}
    put_marker(store, "0-100-35")
    before = store.keys()

    done = retention(sh, 2)
    assert done.rc == 0, done.err
    purged, files = deleted(store)
    assert purged == {TL + "/backups/20261201T093000Z", TL + "/backups/20261201T100000Z"}
    # LAST <= 20, the oldest kept backup's position; 19-25 holds 21..25.
    expected = set().union(*(binlog_pair(logs[s]) for s in [(1, 6), (7, 15), (16, 20)]))
    assert files == expected
    assert store.keys() == {k for k in before if k not in files and not any(k.startswith(p + "/") for p in purged)}
    assert TL + "/binlogs/archived-until.json" in store.keys()
    assert TL + "/backups/20261201T113000Z/backup.mbstream" in store.keys()
    lines = done.out.splitlines()
    assert sorted(line for line in lines if line.startswith("deleted backup ")) == [
        "deleted backup 20261201T093000Z", "deleted backup 20261201T100000Z"]
    assert sorted(line for line in lines if line.startswith("deleted binary log ")) == sorted(
        "deleted binary log " + name for name in expected)
    assert len(lines) == 2 + len(expected)


@pytest.mark.parametrize("other", ["older", "newer"])
def test_retention_never_touches_what_another_timeline_wrote(sh, store, other):
    """Another cluster writing to the same store path (staging and
    production, a DR region), or the one this cluster was restored from: its
    backups, same-second ids included, and its logs are all kept, older or
    newer than this cluster's, and none is counted among this cluster's."""
    stamp = "20261130T100000Z" if other == "older" else "20261202T100000Z"
    put_backup(store, stamp + "-" + OLD_TL, "0-100-50", timeline=OLD_TL)
    put_backup(store, "20261201T110000Z-" + OLD_TL, "0-100-60", timeline=OLD_TL)
    put_backup(store, "20261201T093000Z-" + OLD_TL, "", timeline=OLD_TL, complete=False)
    put_binlog(store, 40, 50, timeline=OLD_TL)
    put_binlog(store, 51, 60, timeline=OLD_TL, number=2)
    put_marker(store, "0-100-60", timeline=OLD_TL)
    put_backup(store, "20261201T100000Z-" + TL, "0-100-10")
    put_backup(store, "20261201T110000Z-" + TL, "0-100-20")  # the same second as the other's
    logs = [put_binlog(store, 1, 10), put_binlog(store, 11, 20, number=2)]
    theirs = {k for k in store.keys() if k.startswith(OLD_TL + "/")}

    done = retention(sh, 1)
    assert done.rc == 0, done.err
    assert deleted(store) == ({TL + "/backups/20261201T100000Z-" + TL}, binlog_pair(logs[0]) | binlog_pair(logs[1]))
    assert theirs <= store.keys()


def test_retention_with_two_kept_backups_at_the_same_position(sh, store):
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "0-100-20")
    put_backup(store, "20261201T120000Z", "0-100-20")  # nothing written in between
    logs = [put_binlog(store, 1, 10), put_binlog(store, 11, 20, number=2), put_binlog(store, 21, 22, number=3)]
    done = retention(sh, 2)
    assert done.rc == 0, done.err
    assert deleted(store) == ({TL + "/backups/20261201T100000Z"}, binlog_pair(logs[0]) | binlog_pair(logs[1]))


def test_retention_keeps_every_log_after_a_kept_backup_of_an_empty_server(sh, store):
    put_backup(store, "20261201T100000Z", "")
    put_backup(store, "20261201T110000Z", "0-100-5")
    put_binlog(store, 1, 5)
    done = retention(sh, 2)
    assert done.rc == 0, done.err
    assert deleted(store) == (set(), set())


def test_retention_keeping_more_than_there_are_deletes_only_failed_older_backups(sh, store):
    put_backup(store, "20261201T090000Z", "", complete=False)
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "", complete=False)
    put_binlog(store, 11, 12)
    done = retention(sh, 7)
    assert done.rc == 0, done.err
    assert deleted(store) == ({TL + "/backups/20261201T090000Z"}, set())


def test_retention_without_a_complete_backup_deletes_nothing(sh, store):
    put_backup(store, "20261201T100000Z", "", complete=False)
    put_binlog(store, 1, 5)
    put_marker(store, "0-100-5")
    done = retention(sh, 1)
    assert (done.rc, done.out) == (0, ""), done.err
    assert deleted(store) == (set(), set())


def test_retention_ignores_what_it_did_not_write(sh, store):
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "0-100-20")
    store.put(TL + "/backups/latest/notes.txt", "x\n")
    store.put(TL + "/binlogs/README", "x\n")
    store.put(TL + "/binlogs/1-5.mysql-0.mysql-bin.000001", "x\n")
    store.put("Upper/binlogs/%s" % index_name(1, 5), "x\n")
    done = retention(sh, 1)
    assert done.rc == 0, done.err
    assert deleted(store) == ({TL + "/backups/20261201T100000Z"}, set())


def test_retention_never_counts_a_damaged_backup(sh, store):
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "0-100-20", stream="truncat")  # same size, kept
    put_backup(store, "20261201T120000Z", "0-100-30", stream="trunc")
    put_backup(store, "20261201T130000Z", "0-100-40", stream=None)
    logs = [put_binlog(store, 1, 10), put_binlog(store, 11, 20, number=2), put_binlog(store, 21, 40, number=3)]
    done = retention(sh, 2)
    assert done.rc == 0, done.err
    # The two newest are damaged: the two complete ones before them are kept,
    # with every log after the older one's position.
    assert deleted(store) == (set(), binlog_pair(logs[0]))


def test_complete_backups_are_the_catalogs_complete_backups(sh, store):
    """The shell's rule (store.sh complete_backups, which retention keeps by)
    and the Python's (backup_catalog.backups, which restore plans by) give
    the same backups, on the same store."""
    put_backup(store, "20261201T090000Z", "", complete=False)
    put_backup(store, "20261201T100000Z", "")
    put_backup(store, "20261201T110000Z", "0-100-20", stream="trunc")
    put_backup(store, "20261201T120000Z", "0-100-30", stream=None)
    put_backup(store, "20261201T130000Z", "0-100-40")
    put_backup(store, "20261130T100000Z", "0-100-50", timeline=OLD_TL)
    shell = sh("store.sh", 'complete_backups "$(store_root)"')
    catalog = sh("catalog.sh", 'catalog ns/mysql')
    assert shell.rc == 0 and catalog.rc == 0, shell.err + catalog.err
    python = [b for b in backup_catalog.backups(backup_catalog.parse(catalog.out.splitlines())) if b["state"] == "complete"]
    assert sorted(shell.out.splitlines(), reverse=True) == shell.out.splitlines()
    assert {tuple(line.split()) for line in shell.out.splitlines()} == {
        (b["id"], b["timeline"], str(backup_catalog.seq(b["gtid"]))) for b in python}
    assert {b["id"] for b in python} == {"20261201T100000Z", "20261201T130000Z", "20261130T100000Z"}


def test_the_catalog_holds_the_divergences_the_archiver_recorded(sh, server, store):
    put_binlog(store, 1, 6, number=1)
    put_binlog(store, 7, 9, number=2)
    put_marker(store, "0-100-9", epoch=2)
    server([("mysql-bin.000001", "1 6"), ("mysql-bin.000002", "0-101-7 0-101-8"), ("mysql-bin.000003", "")], "0-101-8")
    (store.base.parent / "state").write_text("0-100-6,0-101-8\n")
    assert archive_round(sh, hostname="mysql-1", epoch=3).rc == 0
    catalog = backup_catalog.parse(sh("catalog.sh", "catalog ns/mysql").out.splitlines())
    assert [(d["epoch"], d["after_seq"], d["pod"]) for d in catalog["divergences"]] == [(3, 6, "mysql-1")]
    assert {(b["pod"], b.get("epoch", 0)) for b in catalog["binlogs"]} == {("mysql-0", 0), ("mysql-1", 3)}


def test_retention_deletes_nothing_when_reading_the_manifests_fails(sh, store):
    # The fake lists OLD_TL's manifest first (sorted), then fails: this timeline's are never read.
    old_tl = "a1b2c3d4e5f6"
    put_backup(store, "20261130T100000Z", "0-100-50", timeline=old_tl)
    put_backup(store, "20261201T110000Z", "0-100-20")
    put_backup(store, "20261201T120000Z", "0-100-30")
    put_binlog(store, 21, 30)
    put_binlog(store, 31, 40, number=2)
    done = retention(sh, 2, env={"FAKE_STORE_FAIL": "cat:1"})
    assert deleted(store) == (set(), set())
    assert done.rc != 0


# 6. request-backup.sh: which pod is asked

# Records the host it is asked to connect to and what it is sent, and answers
# with $T/answers/HOST, or nothing (a donor not fit to serve, or unreachable).
SOCAT_STUB = r"""
host=
for a; do case $a in TCP:*|OPENSSL:*) host=${a#*:}; host=${host%%:*}; printf '%s\n' "$a" >> "$T/socat-addresses" ;; esac; done
echo "$host" >> "$T/asked"
cat > "$T/sent-$host"
cat "$T/answers/$host" 2>/dev/null || true
"""
# The reply goes to /tmp/reply in the Job's container: here to $T/reply.
REQUEST_STUBS = r"""
sleep() { echo "$*" >> "$T/sleeps"; }
tee() { command tee "${@/#\/tmp\/reply/$T/reply}"; }
tail() { command tail "${@/#\/tmp\/reply/$T/reply}"; }
"""
MANIFEST = '{"id": "20261201T111415Z", "gtid": "0-100-7"}'


@pytest.fixture
def request_backup(sh, tmp_path):
    """request_backup(replicas, primary, answers={host: text}): run request-backup.sh's main."""
    executable(tmp_path, "socat", SOCAT_STUB)
    (tmp_path / "answers").mkdir()
    (tmp_path / "credentials" / "clone-token").write_text("t0k'en \\ x")

    def run(replicas, primary, answers=None, env=None):
        (tmp_path / "topology" / "primary").write_text(primary)
        for host, text in (answers or {}).items():
            (tmp_path / "answers" / host).write_text(text)
        return sh("request-backup.sh", REQUEST_STUBS + "main", hostname="backup-xyz",
                  env=dict({"REPLICAS": str(replicas), "BACKUP_KEEP": "7"}, **(env or {})))

    return run


def lines(tmp_path, name):
    path = tmp_path / name
    return path.read_text().splitlines() if path.exists() else []


def test_request_backup_asks_the_replicas_highest_ordinal_first(request_backup, tmp_path):
    done = request_backup(3, "mysql-1", {"mysql-0.mysql": "PROGRESS 1 MiB\nRETENTION deleted backup x\n"
                                                          "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 0, done.err
    assert lines(tmp_path, "asked") == ["mysql-2.mysql", "mysql-0.mysql"]
    assert done.out.splitlines()[-1] == "BACKUP OK " + MANIFEST
    assert lines(tmp_path, "sleeps") == []
    request, token = (tmp_path / "sent-mysql-0.mysql").read_text().split("\n", 1)
    assert request.split()[0::2] == ["backup", "7"] and request.split()[3] == "0"
    assert len(request.split()[1]) == 16 and request.split()[1].endswith("Z")  # YYYYMMDDTHHMMSSZ
    assert token == "t0k'en \\ x\n"
    assert "mysql-2.mysql did not take the backup" in done.err
    assert lines(tmp_path, "socat-addresses")[0].startswith("TCP:mysql-2.mysql:3307,connect-timeout=10,keepalive")


def test_request_backup_sends_the_throttle(request_backup, tmp_path):
    done = request_backup(2, "mysql-0", {"mysql-1.mysql": "BACKUP OK %s\n" % MANIFEST}, env={"BACKUP_THROTTLE": "25"})
    assert done.rc == 0, done.err
    assert (tmp_path / "sent-mysql-1.mysql").read_text().split("\n")[0].split()[2:] == ["7", "25"]


def test_request_backup_stops_at_the_first_donor_that_takes_it(request_backup, tmp_path):
    done = request_backup(3, "mysql-1", {"mysql-2.mysql": "BACKUP OK %s\n" % MANIFEST,
                                         "mysql-0.mysql": "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 0, done.err
    assert lines(tmp_path, "asked") == ["mysql-2.mysql"]


@pytest.mark.parametrize("replicas,primary,asked", [
    (1, "mysql-0", ["mysql-0.mysql"]),  # the primary only when it is the only pod
    (2, "mysql-0", ["mysql-1.mysql"]),
    (3, "mysql-2", ["mysql-1.mysql", "mysql-0.mysql"]),
    (3, "mysql-0", ["mysql-2.mysql", "mysql-1.mysql"]),
])
def test_request_backup_candidates(request_backup, tmp_path, replicas, primary, asked):
    done = request_backup(replicas, primary, {asked[-1]: "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 0, done.err
    assert lines(tmp_path, "asked") == asked


def test_a_failed_backup_stops_the_request(request_backup, tmp_path):
    done = request_backup(3, "mysql-1", {"mysql-2.mysql": "PROGRESS 1 MiB\nBACKUP FAILED uploading to the store failed\n",
                                         "mysql-0.mysql": "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 1
    assert lines(tmp_path, "asked") == ["mysql-2.mysql"]
    assert "mysql-2.mysql could not take the backup" in done.err
    assert "BACKUP FAILED uploading to the store failed" in done.out


def test_request_backup_asks_everyone_three_times_then_fails(request_backup, tmp_path):
    done = request_backup(3, "mysql-1", {"mysql-0.mysql": "PROGRESS 1 MiB\n"})  # cut short: no verdict
    assert done.rc == 1
    assert lines(tmp_path, "asked") == ["mysql-2.mysql", "mysql-0.mysql"] * 3
    assert lines(tmp_path, "sleeps") == ["10", "10"]
    assert "no pod took the backup: none of mysql-2.mysql mysql-0.mysql is fit to serve" in done.err


def test_request_backup_takes_an_answer_of_a_later_round(request_backup, tmp_path):
    # mysql-0 answers only from its second request on (a network policy admitting the Job's pod late).
    (tmp_path / "bin" / "socat").write_text("#!/bin/bash\n" + SOCAT_STUB.replace(
        'cat "$T/answers/$host"', '[ "$(grep -c "^$host$" "$T/asked")" -lt 2 ] || cat "$T/answers/$host"'))
    done = request_backup(3, "mysql-1", {"mysql-0.mysql": "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 0, done.err
    assert lines(tmp_path, "asked") == ["mysql-2.mysql", "mysql-0.mysql", "mysql-2.mysql", "mysql-0.mysql"]
    assert lines(tmp_path, "sleeps") == ["10"]


def test_request_backup_verifies_the_donor_over_tls_when_the_cluster_uses_it(request_backup, tmp_path):
    (tmp_path / "topology" / "tls").write_text("true")
    done = request_backup(1, "mysql-0", {"mysql-0.mysql": "BACKUP OK %s\n" % MANIFEST})
    assert done.rc == 0, done.err
    assert lines(tmp_path, "socat-addresses") == [
        "OPENSSL:mysql-0.mysql:3307,cafile=/etc/mysql/tls/ca.crt,verify=1,connect-timeout=10,"
        "keepalive,keepidle=30,keepintvl=10,keepcnt=3"]


# The fake store answers the scripts' listings as rclone does

RCLONE_CALLS = [
    ["lsf", "--files-only", "--include", "*.json", "{root}/%s/binlogs/" % TL],  # archived_max_seq
    ["lsf", "--files-only", "--include", "archived-until.json", "{root}/%s/binlogs/" % TL],
    ["cat", "{root}/%s/binlogs/archived-until.json" % TL],
    ["lsf", "--dirs-only", "-R", "--max-depth", "3", "{root}"],  # retention.sh
    ["lsf", "--files-only", "-R", "{root}"],
    ["lsf", "--files-only", "-R", "--format", "ps", "--include", "*/backups/**", "{root}"],  # complete_backups
    ["cat", "--include", "*/backups/*/manifest.json", "{root}"],
    ["cat", "--filter", "- archived-until.json", "--filter", "+ */binlogs/*.json", "--filter", "- **", "{root}"],  # catalog.sh
    ["cat", "--include", "*/binlogs/archived-until.json", "{root}"],
    ["cat", "--include", "*/divergences/*.json", "{root}"],
    ["cat", "--filter", "- archived-until.json", "--filter", "+ *.json", "--filter", "- **",
     "{root}/%s/binlogs/" % TL],  # archive-binlogs.sh common_seq
]


@pytest.mark.parametrize("argv", RCLONE_CALLS, ids=lambda argv: " ".join(argv[:-1]))
def test_the_fake_store_answers_as_rclone_does(store, tmp_path, argv):
    # Never skipped: scripts/cluster up installs Debian's rclone on the host.
    assert shutil.which("rclone"), "rclone is missing: run scripts/cluster up, or apt-get install rclone"
    (tmp_path / "s3").mkdir()
    put_backup(store, "20261201T100000Z", "0-100-10")
    put_backup(store, "20261201T110000Z", "", complete=False)
    put_backup(store, "20261130T100000Z", "0-100-50", timeline=OLD_TL)
    for n, seqs in enumerate([(1, 6), (7, 9), (10, 12)], 1):
        put_binlog(store, *seqs, number=n)
    put_binlog(store, 13, 14, number=4, index=False)
    put_binlog(store, 40, 50, timeline=OLD_TL)
    put_marker(store, "0-100-12")
    put_marker(store, "0-100-50", timeline=OLD_TL)
    store.put("%s/divergences/3.json" % TL, '{"timeline": "%s", "epoch": 3, "after_seq": 9}\n' % TL)
    store.put("README.json", "{}\n")
    argv = [a.replace("{root}", "store:" + STORE_ROOT) for a in argv]
    # rclone's local backend, rooted where the fake keeps the bucket.
    env = dict(os.environ, RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_STORE_TYPE="local")
    real = subprocess.run(["rclone", *argv], cwd=tmp_path / "s3", env=env, capture_output=True, timeout=60)
    fake = subprocess.run([sys.executable, FAKE_STORE, str(tmp_path / "s3"), str(tmp_path / "store.log"), *argv],
                          capture_output=True, timeout=60)
    assert (real.returncode, fake.returncode) == (0, 0), (real.stderr, fake.stderr)
    # The order of a recursive listing or cat is rclone's walk order: not relied on.
    assert sorted(fake.stdout.splitlines()) == sorted(real.stdout.splitlines())
    assert fake.stdout


# One definition each, bound here: the sequence number of a GTID (store.sh's
# gtid_seq and backup_catalog.seq) and an archived binary log's name
# (store.sh's binlog_object_name and binlog_last_seq; this file's index_name).

@pytest.mark.parametrize("gtid", ["0-100-1", "0-100-007", "0-4294967295-9223372036854775807", "12-101-90210"])
def test_the_pods_and_the_planner_read_a_gtid_s_sequence_alike(sh, gtid):
    done = sh("store.sh", 'gtid_seq "$1"', args=[gtid])
    assert (done.rc, done.out) == (0, str(backup_catalog.seq(gtid))), done.err


@pytest.mark.parametrize("first, last, pod, number", [(1, 6, "mysql-0", 1), (7, 123456789012, "mysql-12", 999999)])
def test_an_archived_binlog_s_name_is_made_and_read_by_one_definition(sh, first, last, pod, number):
    done = sh("store.sh", 'name=$(binlog_object_name "$@"); echo "$name"; binlog_last_seq "$name"',
              args=["0-100-%d" % first, "0-100-%d" % last, pod, "mysql-bin.%06d" % number])
    assert done.rc == 0, done.err
    assert done.out.split("\n") == [index_name(first, last, pod, number), str(last)]


@pytest.mark.parametrize("name", ["notes.json", "archived-until.json", "1-700.mysql-0.mysql-bin.000009.json",
                                  "%020d-%020d.json" % (1, 800)])
def test_other_names_are_no_archived_binlog(sh, name):
    assert sh("store.sh", 'binlog_last_seq "$1"', args=[name]).out == ""


def test_restore_applies_a_plan_of_1000_binary_logs_from_its_file(sh, tmp_path):
    """Sixteen hours after a backup at one log a minute. As one environment
    variable (the old way) such a plan passed Linux's 128 KiB limit on it and
    the Job never started; now it is a file (a ConfigMap holds up to 1 MiB:
    about 7,000 logs). 1,000, not more: each log costs the stubs a few forks."""
    plan = "".join("%s/binlogs/%020d-%020d.mysql-bin.%06d %s 0-100-%d\n" % (TL, n, n, n, "%064x" % n, n)
                   for n in range(1, 1001))
    assert len(plan.encode()) > 128 * 1024
    (tmp_path / "plan").write_text(plan)
    applied = sh("restore.sh", r"""
STAGE=$T/stage; mkdir -p "$STAGE"
touch "$T/fetched" "$T/replayed"
log() { :; }
fetch() { printf '%s\n' "$1" >> "$T/fetched"; }
# The server's position: one transaction a log, each log replayed whole.
sql() {
  if [ "${*: -2:1}" != -e ]; then cat >/dev/null; return; fi  # a replay: the binlog on stdin
  printf '0-100-%d\n' "$(wc -l < "$T/replayed")"
}
mariadb-binlog() { printf '%s\n' "${@: -1}" >> "$T/replayed"; }
apply_binlogs
""", env={"RESTORE_BINLOGS": str(tmp_path / "plan"), "RESTORE_STOP": ""})
    assert applied.rc == 0, applied.err[-2000:]
    assert (tmp_path / "fetched").read_text().split() == [line.split()[0] for line in plan.splitlines()]


# restore.sh: the stop time resolved to the GTID of the last transaction to
# apply. Event times are when statements started: a long one commits after
# transactions that started later.

def gtid_line(clock, gtid, day="261201"):
    return "#%s %8s server id 100  end_log_pos 370 CRC32 0x857dbe94 \tGTID %s trans\n" % (day, clock, gtid)


@pytest.mark.parametrize("events,after,stop,expected", [
    ([("11:00:00", "0-100-7"), ("11:00:05", "0-100-8")], "6", "2026-12-01 11:00:03", "STOP 0-100-7"),
    # 0-100-8 started before the stop but committed after 0-100-7, which started after it.
    ([("11:00:05", "0-100-7"), ("10:59:58", "0-100-8")], "6", "2026-12-01 11:00:03", "STOP "),
    # Held already (after): only what follows counts.
    ([("11:00:05", "0-100-7"), ("10:59:58", "0-100-8")], "7", "2026-12-01 11:00:03", ""),
    ([("9:05:03", "0-100-7"), ("10:00:00", "0-100-8")], "6", "2026-12-01 09:30:00", "STOP 0-100-7"),
    ([("9:05:03", "0-100-7"), ("10:00:00", "0-100-8")], "6", "2026-12-01 10:00:00", "STOP 0-100-7"),
    ([("9:05:03", "0-100-7"), ("10:00:00", "0-100-8")], "6", "2026-12-01 10:00:01", ""),
    ([("9:05:03", "0-100-99999999999999999998"), ("9:05:04", "0-100-99999999999999999999")],
     "99999999999999999998", "2026-12-01 09:05:04", "STOP "),
])
def test_the_stop_time_resolves_to_the_last_transaction_to_apply(sh, binlogs, events, after, stop, expected):
    binlogs({"binlog.1": "".join(gtid_line(clock, gtid) for clock, gtid in events)})
    done = sh("restore.sh", 'last_before_stop "$DATADIR/binlog.1" "$1"', args=[after], env={"RESTORE_STOP": stop})
    assert (done.rc, done.out.rstrip("\n")) == (0, expected), done.err


@pytest.mark.parametrize("first_log,applied,position", [
    # Stops within the first log: the second is never read.
    ([("11:00:00", "0-100-7"), ("11:00:05", "0-100-8")], ["--start-position=0-100-6 --stop-position=0-100-7"], "0-100-7"),
    # The log's last transaction started before the stop time, and a
    # transaction before it after: nothing of it, where --stop-datetime
    # stopped at 0-100-7 and failed the restore as incomplete.
    ([("11:00:05", "0-100-7"), ("10:59:58", "0-100-8")], [], "0-100-6"),
])
def test_a_restore_stops_at_the_resolved_gtid(sh, binlogs, tmp_path, first_log, applied, position):
    binlogs({"binlog.1": "".join(gtid_line(c, g) for c, g in first_log),
             "binlog.2": gtid_line("11:00:01", "0-100-9")})  # started before the stop: never applied
    (tmp_path / "position").write_text("0-100-6")
    (tmp_path / "plan").write_text("o/binlog.1 sha 0-100-8\no/binlog.2 sha 0-100-9\n")
    done = sh("restore.sh", r"""
STAGE=$T/stage; mkdir -p "$STAGE"; touch "$T/fetched" "$T/replayed"
log() { :; }
fetch() { printf '%s\n' "$1" >> "$T/fetched"; cp "$T/binlog-output/${1##*/}" "${4#of=}"; }
sql() {
  if [ "${*: -2:1}" != -e ]; then cat >/dev/null; return; fi  # a replay: the binlog on stdin
  cat "$T/position"
}
mariadb-binlog() {
  case $* in
    *--st*-position=*) printf '%s\n' "${*:2:$#-2}" >> "$T/replayed"; printf '%s' "${*: -2:1}" | sed 's/.*=//' > "$T/position" ;;
    *) cat "${@: -1}" ;;
  esac
}
apply_binlogs
""", env={"RESTORE_BINLOGS": str(tmp_path / "plan"), "RESTORE_STOP": "2026-12-01 11:00:03"})
    assert done.rc == 0, done.err[-2000:]
    assert (tmp_path / "fetched").read_text().split() == ["o/binlog.1"]
    assert (tmp_path / "replayed").read_text().splitlines() == applied
    assert (tmp_path / "position").read_text() == position


def test_a_stop_early_in_a_long_log_reads_it_to_the_end(sh, binlogs):
    """Stopping the read at the stop would kill the parser with SIGPIPE once
    the rest passed the pipe's buffer, and pipefail fail the restore."""
    binlogs({"binlog.1": gtid_line("11:00:00", "0-100-7") + gtid_line("11:00:05", "0-100-8")
             + "".join(gtid_line("11:00:06", "0-100-%d" % n) for n in range(9, 20000))})
    done = sh("restore.sh", 'stop=$(last_before_stop "$DATADIR/binlog.1" 6); echo "$stop"',
              env={"RESTORE_STOP": "2026-12-01 11:00:03"})
    assert (done.rc, done.out) == (0, "STOP 0-100-7\n"), done.err


# verify-backup.sh: the restore up to the source's GTID, the comparison and
# the verdict.

def test_a_verification_restore_applies_the_logs_up_to_the_source_gtid(sh, tmp_path):
    (tmp_path / "position").write_text("0-100-6")
    (tmp_path / "plan").write_text("o/binlog.1 sha 0-100-7\no/binlog.2 sha 0-100-10\no/binlog.3 sha 0-100-12\n")
    done = sh("restore.sh", r"""
STAGE=$T/stage; mkdir -p "$STAGE"; touch "$T/fetched" "$T/replayed"
log() { :; }
fetch() { printf '%s\n' "$1" >> "$T/fetched"; printf '%s' "$(grep "^$1 " "$RESTORE_BINLOGS" | cut -d' ' -f3)" > "${4#of=}"; }
sql() {
  if [ "${*: -2:1}" != -e ]; then cat >/dev/null; return; fi  # a replay: the binlog on stdin
  cat "$T/position"
}
# Replays up to --stop-position when given, else the whole log.
mariadb-binlog() {
  printf '%s\n' "${*:2:$#-2}" >> "$T/replayed"
  case ${*: -2:1} in
    --stop-position=*) printf '%s' "${*: -2:1}" | sed 's/.*=//' > "$T/position" ;;
    *) cat "${@: -1}" > "$T/position" ;;
  esac
}
apply_binlogs
""", env={"RESTORE_BINLOGS": str(tmp_path / "plan"), "RESTORE_STOP": "", "RESTORE_STOP_GTID": "0-100-9"})
    assert done.rc == 0, done.err[-2000:]
    assert (tmp_path / "fetched").read_text().split() == ["o/binlog.1", "o/binlog.2"]
    assert (tmp_path / "replayed").read_text().splitlines() == [
        "--start-position=0-100-6", "--start-position=0-100-7 --stop-position=0-100-9"]
    assert (tmp_path / "position").read_text() == "0-100-9"


def sums(*lines):
    """table-checksums.sh's lines: "GTID x" and TABLE/SKIPPED lines given space-separated, joined by tabs."""
    return "".join((line.replace(" ", "\t") if line.split()[0] in ("TABLE", "SKIPPED") else line) + "\n" for line in lines)


SOURCE_SUMS = sums("GTID 0-100-40", "TABLE app.a 3 11 12", "TABLE app.b 2 21 22", "TABLE app.c 5 31 32",
                   "SKIPPED app.m engine_MyISAM", "PROGRESS reading the tables", "CHECKSUMS OK")


@pytest.mark.parametrize("restored,found", [
    (sums("GTID 0-100-40", "TABLE app.a 3 11 12", "TABLE app.b 2 21 22", "TABLE app.c 5 31 32"), []),
    (sums("GTID 0-100-40", "TABLE app.a 3 11 12", "TABLE app.b 2 21 99", "TABLE app.c 4 30 32"),
     ["app.b: the rows differ (2 rows each)", "app.c: 5 rows in the source, 4 restored"]),
    # A name with a space keeps every column of its sums.
    ("GTID 0-100-40\nTABLE\tapp.a\t3\t11\t12\nTABLE\tapp.b\t2\t21\t22\nTABLE\tapp.c\t5\t31\t32\nTABLE\tapp.my t\t1\t1\t2\n",
     ["app.my t: only in the restore"]),
    (sums("GTID 0-100-39", "TABLE app.a 3 11 12", "TABLE app.c 5 31 32", "TABLE app.z 1 1 1"),
     ["app.b: missing from the restore", "app.z: only in the restore", "the restore reached GTID 0-100-39, the source 0-100-40"]),
    (sums("GTID ", "TABLE app.a 3 11 12", "TABLE app.b 2 21 22", "TABLE app.c 5 31 32"),
     ["the restore reached GTID (empty), the source 0-100-40"]),
])
def test_the_verification_names_each_difference(sh, tmp_path, restored, found):
    (tmp_path / "source").write_text(SOURCE_SUMS)
    (tmp_path / "restored").write_text(restored)
    done = sh("verify-backup.sh", 'differences "$T/source" "$T/restored"')
    assert (done.rc, done.out.splitlines()) == (0, sorted(found)), done.err


def test_the_verdict_goes_into_the_manifest_and_a_match_into_verified_json(sh, store, tmp_path):
    backup_id = "20261201T100000Z-" + TL
    manifest = {"id": backup_id, "timeline": TL, "gtid": "0-100-10", "size": 4096}
    store.put("%s/backups/%s/manifest.json" % (TL, backup_id), json.dumps(manifest) + "\n")
    work = tmp_path / "verify"
    work.mkdir()
    (work / "source").write_text(SOURCE_SUMS)
    record = 'WORK=$T/verify VERIFY_BACKUP_ID=%s VERIFY_MANIFEST=%s/backups/%s/manifest.json; record "$1"' % (backup_id, TL, backup_id)
    for result in ("mismatch", "match", "match"):
        done = sh("verify-backup.sh", record, args=[result])
        assert done.rc == 0, done.err
        recorded = json.loads(store.get("%s/backups/%s/manifest.json" % (TL, backup_id)))
        assert json.loads(done.out) == recorded
        assert {k: recorded[k] for k in manifest} == manifest
        assert (recorded["verified_result"], recorded["verified_gtid"], recorded["verified_tables"]) == (result, "0-100-40", 3)
        assert sorted(k for k in recorded if k.startswith("verified_")) == [
            "verified_gtid", "verified_result", "verified_tables", "verified_time"]
        if result == "mismatch":
            assert "%s/verified.json" % TL not in store.keys()
    latest = json.loads(store.get("%s/verified.json" % TL))
    assert (latest["backup"], latest["gtid"], latest["tables"], latest["time"]) == (backup_id, "0-100-40", 3, recorded["verified_time"])
    # What the pods' metrics read of it.
    (tmp_path / "verified.json").write_text(store.get("%s/verified.json" % TL))
    page = sh("metrics.sh", 'VERIFIED=$T/verified.json; backup_metrics')
    assert page.out.splitlines()[-1] == "mariadb_backup_verified_timestamp %d" % latest["time"], page.err


def test_no_verification_no_metric(sh):
    page = sh("metrics.sh", 'VERIFIED=$T/none.json; backup_metrics')
    assert (page.rc, page.out) == (0, "")


@pytest.mark.parametrize("marker,rc,message", [
    ("0-100-40", 0, "mysql-1.mysql: 3 tables at GTID 0-100-40"),
    # The archive never gets there: the replica holds what the primary lacks, or nothing is archived.
    ("0-100-39", 1, "the archive does not hold GTID 0-100-40, where mysql-1.mysql read its tables, after 63s"),
])
def test_the_source_step_asks_a_replica_and_waits_for_the_archive(sh, store, tmp_path, marker, rc, message):
    executable(tmp_path, "socat", SOCAT_STUB)
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "mysql-1.mysql").write_text(SOURCE_SUMS)
    (tmp_path / "credentials" / "clone-token").write_text("token")
    put_marker(store, marker)
    done = sh("verify-backup.sh", r"""
WORK=$T/verify
sleep() { SECONDS=$((SECONDS + $1)); }
source_step
""", env={"REPLICAS": "2", "ARCHIVE_INTERVAL": "1"})
    assert done.rc == rc and message in done.err, done.err[-2000:]
    assert (tmp_path / "sent-mysql-1.mysql").read_text() == "checksums\ntoken\n"
    assert (tmp_path / "verify" / "timeline").read_text() == TL
    if rc == 0:
        assert (tmp_path / "verify" / "source").read_text() == SOURCE_SUMS
        assert (tmp_path / "verify" / "catalog").read_text().startswith("OBJECTS ")


# table-checksums.sh: one snapshot, the table list the same before and after
# it, a failure never told as a result, a lagging replica declines.
CHECKSUM_SQL_STUB = r"""
sql() {
  case "$*" in
    *"SHOW SLAVE STATUS"*) cat "$T/slave-status" 2>/dev/null || true ;;
    *--raw*)
      cat >/dev/null
      n=$(( $(cat "$T/listings" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$T/listings"
      if [ -e "$T/listing.$n" ]; then cat "$T/listing.$n"; else cat "$T/listing"; fi ;;
    *)
      cat > "$T/snapshot.sql"
      if [ -e "$T/snapshot-fails" ]; then echo "ERROR 1146 (42S02) at line 5: Table 'app.b' doesn't exist" >&2; return 1; fi
      printf 'GTID\t0-100-40\napp.a\t3\t11\t12\n' ;;
  esac
}
"""
LISTING = "SELECT 'app.a', COUNT(*), 1, 2 FROM `app`.`a`;\nSKIPPED\tapp.m\tengine MyISAM: no snapshot holds its rows still\n"


@pytest.mark.parametrize("setup,rc,last,listings", [
    ({}, 0, "CHECKSUMS OK", 2),
    # A table created between the listing and the snapshot: read again.
    ({"listing.2": "SELECT 'app.new' ...;\n" + LISTING}, 0, "CHECKSUMS OK", 4),
    ({"listing.%d" % n: "SELECT 'app.x%d';\n" % n for n in range(1, 7)}, 1,
     "CHECKSUMS FAILED the tables changed while they were read, three times: DDL ran meanwhile", 6),
    ({"snapshot-fails": ""}, 1, "CHECKSUMS FAILED ERROR 1146 (42S02) at line 5: Table 'app.b' doesn't exist", 1),
    ({"slave-status": "  Seconds_Behind_Master: 7200\n"}, 0,
     "CHECKSUMS DECLINED this replica is 7200 s behind its primary (at most 60)", 0),
])
def test_table_checksums_are_one_snapshot_of_one_table_list(sh, tmp_path, setup, rc, last, listings):
    (tmp_path / "listing").write_text(LISTING)
    for name, text in setup.items():
        (tmp_path / name).write_text(text)
    done = sh("table-checksums.sh", CHECKSUM_SQL_STUB + "main")
    out = done.out.splitlines()
    assert (done.rc, out[-1]) == (rc, last), done.err
    if listings:
        assert int((tmp_path / "listings").read_text()) == listings
    else:
        assert not (tmp_path / "listings").exists()
    if last == "CHECKSUMS OK":
        assert out[:-1] == ["GTID 0-100-40", "TABLE\tapp.a\t3\t11\t12",
                            "SKIPPED\tapp.m\tengine MyISAM: no snapshot holds its rows still"]
        snapshot = (tmp_path / "snapshot.sql").read_text()
        assert snapshot.index("START TRANSACTION WITH CONSISTENT SNAPSHOT") < snapshot.index("BINLOG_GTID_POS") \
            < snapshot.index("FROM `app`.`a`") < snapshot.index("COMMIT")
        assert "SKIPPED" not in snapshot
