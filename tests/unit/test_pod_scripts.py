"""The pod scripts' decisions, run by bash on temporary directories and on
files and output captured from real MariaDB 10.11 and 11.8 servers. Each test
sources a script (its main does not run), points its paths into a temporary
directory and replaces the programs that need a server (sql, socat, mbstream,
mariadb-backup) by stubs: no cluster, no server."""
import base64
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from captured import FIXTURES, read as fixture
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import replication, rollout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "roles", "configmap", "files", "scripts")
BACKUPS = os.path.join(FIXTURES, "backup")
PASSWORD_KEYS = ("root-password", "replication-password", "backup-password")
# Characters that break naive quoting in SQL, option files and the shell.
NASTY = [
    "r#o'o\"t \\ pw;--",
    "re#pl 'x' \"y\" \\z",
    "b#a\\ck 'u' p",
    "t#o k'e\"n\\ $(true)",
    "x');DROP USER root@'%';--",
    "\\",
    "'",
    "trailing backslash\\",
    "a\\%b\\_c \\n \\0",
    "two\nlines\n",
    "tab\tand\rcarriage",
    "ünï©ødé 密码 `id`",
]

# A stand-in for sql() in common.sh: SHOW SLAVE STATUS answers with the file
# $SLAVE_STATUS, @@global.read_only with $T/read_only (1 when missing);
# everything else is recorded in $SQL_LOG with its stdin.
SQL_STUB = r"""
sql() {
  if [ "$*" = "-e SHOW SLAVE STATUS" ]; then cat "$SLAVE_STATUS" 2>/dev/null; return 0; fi
  if [ "$*" = "-N -e SELECT @@global.read_only" ]; then cat "$T/read_only" 2>/dev/null || echo 1; return 0; fi
  { printf -- '-- sql %s\n' "$*"; cat; } >> "$SQL_LOG"
}
"""


class Run:
    def __init__(self, done):
        self.rc = done.returncode
        self.out = done.stdout.decode()
        self.err = done.stderr.decode()


def write_topology(tmp_path, primary="mysql-0", initialised="true"):
    """The topology record as the ConfigMap volume holds it: one file per key,
    the value's bytes without a trailing newline. None leaves a key out."""
    for key, value in (("primary", primary), ("initialised", initialised)):
        path = tmp_path / "topology" / key
        if path.exists():
            path.unlink()
        if value is not None:
            path.write_text(value)


@pytest.fixture
def pod(tmp_path):
    """pod(script, body, hostname=..., args=...): source the script in bash,
    with DATADIR, CREDENTIALS, TOPOLOGY (primary mysql-0, initialised) and the
    stubs' files under tmp_path, then run body."""
    (tmp_path / "data").mkdir()
    (tmp_path / "credentials").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "topology").mkdir()
    write_topology(tmp_path)

    def run(script, body, hostname="mysql-1", args=()):
        prelude = "\n".join([
            "set -euo pipefail; shopt -s inherit_errexit",  # as in every pod script
            ". %s" % shlex.quote(os.path.join(SCRIPTS, script)),
            "DATADIR=%s" % shlex.quote(str(tmp_path / "data")),
            "STALL_MARK=%s" % shlex.quote(str(tmp_path / "shm-stalled")),
            "CREDENTIALS=%s" % shlex.quote(str(tmp_path / "credentials")),
            "TOPOLOGY=%s" % shlex.quote(str(tmp_path / "topology")),
            "SQL_LOG=%s SLAVE_STATUS=%s" % (shlex.quote(str(tmp_path / "sql.log")), shlex.quote(str(tmp_path / "status"))),
        ])
        environ = {"PATH": "%s:%s" % (tmp_path / "bin", os.environ["PATH"]), "HOSTNAME": hostname,
                   "STATEFULSET_NAME": "mysql", "SERVICE_NAME": "mysql", "T": str(tmp_path)}
        done = subprocess.run(["bash", "-c", prelude + "\n" + body, "test", *args], env=environ,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        return Run(done)

    return run


def write_credentials(tmp_path, values):
    for key, value in values.items():
        (tmp_path / "credentials" / key).write_bytes(value.encode())


def sql_log(tmp_path):
    path = tmp_path / "sql.log"
    return path.read_text() if path.exists() else ""


ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def parse_sql(text):
    """Split SQL text as MariaDB's lexer does with its default sql_mode
    (backslash escapes on): returns the text with each single-quoted literal
    replaced by ?, and the decoded literals. (NASTY's values, quoted by
    sql_quote, were checked against a real 10.11 server with SELECT HEX.)"""
    skeleton, literals, i = [], [], 0
    while i < len(text):
        if text[i] != "'":
            skeleton.append(text[i])
            i += 1
            continue
        value, i = [], i + 1
        while True:
            if i >= len(text):
                raise ValueError("unterminated string literal in %r" % text)
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                escaped = text[i + 1]
                # \% and \_ keep their backslash (they matter to LIKE only).
                value.append(ESCAPES.get(escaped, "\\" + escaped if escaped in "%_" else escaped))
                i += 2
            elif c == "'" and text[i + 1:i + 2] == "'":
                value.append("'")
                i += 2
            elif c == "'":
                i += 1
                break
            else:
                value.append(c)
                i += 1
        skeleton.append("?")
        literals.append("".join(value))
    return "".join(skeleton), literals


# sql_quote and the SQL built from the credentials

@pytest.mark.parametrize("value", NASTY)
def test_sql_quote_round_trips_through_mariadbs_string_literal_rules(pod, value):
    quoted = pod("common.sh", 'sql_quote "$1"', args=[value]).out
    assert "\n" not in quoted  # one line: command substitution keeps it whole
    assert parse_sql("SELECT '%s';" % quoted) == ("SELECT ?;", [value])


def test_account_passwords_reach_the_statements_byte_for_byte(pod, tmp_path):
    values = dict(zip(PASSWORD_KEYS, ["r#o'o\"t \\ pw;--\n", "re#pl 'x' \"y\" \\z", "b#a\\ck 'u' p\\"]))
    write_credentials(tmp_path, values)
    done = pod("common.sh", "account_passwords_sql")
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(done.out)
    assert skeleton == (
        "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(?);\n"
        "ALTER USER root@? IDENTIFIED BY ?;\n"
        "ALTER USER repl@? IDENTIFIED BY ?;\n"
        "ALTER USER backup@localhost IDENTIFIED BY ?;\n")
    root, repl, backup = values["root-password"], values["replication-password"], values["backup-password"]
    assert literals == [root, "%", root, "%", repl, backup]


def test_sql_sessions_keep_backslash_escapes_on(pod):
    # sql_quote's escapes are only right without NO_BACKSLASH_ESCAPES, which
    # a user's server settings could turn on.
    done = pod("common.sh", 'mariadb() { printf "%s\\n" "$@"; }; sql -e "SELECT 1"')
    assert "--init-command=SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')" in done.out.splitlines()


# Credentials from the mounted Secret

@pytest.mark.parametrize("value", ["plain", "with trailing newline\n", "r#o'o\"t \\ pw;--"])
def test_read_credential_is_byte_exact(pod, tmp_path, value):
    write_credentials(tmp_path, {"root-password": value})
    done = pod("common.sh", 'read_credential v root-password; printf %s "$v"')
    assert done.rc == 0 and done.out == value


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_credential_fails_naming_the_file(pod, tmp_path, content):
    if content is not None:
        write_credentials(tmp_path, {"root-password": content})
    done = pod("common.sh", 'read_credential v root-password; echo "got $v"')
    assert done.rc != 0 and "got" not in done.out
    assert str(tmp_path / "credentials" / "root-password") in done.err


def test_a_clone_token_with_a_newline_is_refused(pod, tmp_path):
    write_credentials(tmp_path, {"clone-token": "token\n"})
    done = pod("common.sh", 'read_clone_token t; echo "got $t"')
    assert done.rc != 0 and "contains a newline" in done.err and "got" not in done.out


def ansible_checksum(values, role="secret"):
    """The checksum as the role computes it: roles/<role>/vars/main.yml's own
    expression (__secret_checksum, __tls_checksum), templated by Ansible, on
    the Secret's base64 data."""
    return _ansible_checksum(tuple(sorted(values.items())), role)


@functools.lru_cache(maxsize=None)
def _ansible_checksum(items, role):
    data = {"__%s_data" % role: {key: base64.b64encode(value.encode()).decode() for key, value in items},
            "mariadb_name": "mysql", "mariadb_namespace": "mysql", "mariadb_cluster_domain": "cluster.local",
            "mariadb_max_replicas": 1}
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.debug",
         "-a", "var=__%s_checksum" % role, "-e", "@" + os.path.join(ROOT, "roles", role, "vars", "main.yml"),
         "-e", json.dumps(data)], capture_output=True, text=True, check=True,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false"))
    return re.search(r'__%s_checksum"?: "?([0-9a-f]{64})' % role, done.stdout).group(1)


@pytest.mark.parametrize("values", [
    dict(zip(PASSWORD_KEYS, ["root", "repl", "backup"])),
    dict(zip(PASSWORD_KEYS, NASTY[:2] + ["a=b\n"])),
])
def test_credentials_checksum_matches_the_ansible_definition(pod, tmp_path, values):
    write_credentials(tmp_path, dict(values, **{"clone-token": "not part of it"}))
    done = pod("credentials.sh", "credentials_checksum")
    assert done.rc == 0, done.err
    assert done.out.strip() == ansible_checksum(values)


def test_credentials_exits_3_while_the_mounted_secret_is_not_the_expected_one(pod, tmp_path):
    write_credentials(tmp_path, dict(zip(PASSWORD_KEYS, ["old", "old", "old"])))
    expected = ansible_checksum(dict(zip(PASSWORD_KEYS, ["new", "new", "new"])))
    done = pod("credentials.sh", SQL_STUB + 'main "$@"', hostname="mysql-0", args=[expected])
    assert done.rc == 3
    assert len(done.err.strip().splitlines()) == 1 and expected in done.err
    assert sql_log(tmp_path) == ""


def account_literals(values):
    """The literals of account_passwords_sql: every account's password."""
    return [values["root-password"], "%", values["root-password"], "%", values["replication-password"], values["backup-password"]]


def test_credentials_on_the_primary_changes_every_account(pod, tmp_path):
    values = dict(zip(PASSWORD_KEYS, NASTY[:3]))
    write_credentials(tmp_path, values)
    (tmp_path / "read_only").write_text("0\n")  # writable, replicating from nobody
    done = pod("credentials.sh", SQL_STUB + 'main "$@"', hostname="mysql-0", args=[ansible_checksum(values)])
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    # On stdin, nothing in argv; never binary-logged.
    assert skeleton.startswith("-- sql \nSET SESSION sql_log_bin = 0;\nALTER USER root@localhost")
    assert skeleton.count(";") == 5
    assert literals == account_literals(values)


def test_credentials_on_a_replica_repoints_replication(pod, tmp_path):
    values = dict(zip(PASSWORD_KEYS, NASTY[:3]))
    write_credentials(tmp_path, values)
    shutil.copy(os.path.join(FIXTURES, "status-10.11-mysql-1.txt"), tmp_path / "status")
    done = pod("credentials.sh", SQL_STUB + 'main "$@"', hostname="mysql-2", args=[ansible_checksum(values)])
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    accounts, repoint = skeleton.split("-- sql \nSTOP SLAVE;")
    assert accounts.startswith("-- sql \nSET SESSION sql_log_bin = 0;\nALTER USER root@localhost") and accounts.count(";") == 5
    assert repoint == ("\nCHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3306, MASTER_USER = ?,\n"
                       "  MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos,\n  MASTER_CONNECT_RETRY = 5;\nSTART SLAVE;\n")
    assert literals == account_literals(values) + ["mysql-0.mysql", "repl", values["replication-password"]]


@pytest.mark.parametrize("state", ["unconfigured", "clone position pending"])
def test_credentials_on_a_replica_waits_for_the_sidecar_to_set_up_replication(pod, tmp_path, state):
    values = dict(zip(PASSWORD_KEYS, ["a", "b", "c"]))
    write_credentials(tmp_path, values)
    if state == "clone position pending":
        shutil.copy(os.path.join(FIXTURES, "status-10.11-mysql-1.txt"), tmp_path / "status")
        (tmp_path / "data" / "clone-position").write_text("0-100-7\n")
    done = pod("credentials.sh", SQL_STUB + 'main "$@"', hostname="mysql-1", args=[ansible_checksum(values)])
    assert done.rc not in (0, 3) and "not set up yet" in done.err
    assert sql_log(tmp_path) == ""


# The clone's start position

def stage_from(tmp_path, version, case):
    stage = tmp_path / "stage"
    shutil.copytree(os.path.join(BACKUPS, version, case), stage)
    return stage


POSITIONS = [
    # A primary donor, and a replica donor, before and after the first write.
    ("10.11", "primary", "primary", "0-100-4"),
    ("11.8", "primary", "primary", "0-100-3"),
    ("10.11", "primary-new", "primary", "empty"),
    ("11.8", "primary-new", "primary", "empty"),
    ("10.11", "replica", "replica", "0-100-3"),
    ("11.8", "replica", "replica", "0-100-3"),
    ("10.11", "replica-new", "replica", "empty"),
    ("11.8", "replica-new", "replica", "empty"),
]


@pytest.mark.parametrize("version,case,donor,position", POSITIONS)
def test_clone_position_from_real_backups(pod, tmp_path, version, case, donor, position):
    stage_from(tmp_path, version, case)
    done = pod("clone.sh", 'clone_position "$T/stage" %s' % donor)
    assert (done.rc, done.out) == (0, position + "\n"), done.err
    assert pod("common.sh", 'valid_position "$1"', args=[position]).rc == 0


def test_clone_position_takes_the_last_line_of_a_binlog_list(pod, tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "mariadb_backup_binlog_info").write_text("mysql-bin.000001\t1234\t[]\nmysql-bin.000002\t400\t0-100-9,1-101-2\n")
    assert pod("clone.sh", 'clone_position "$T/stage" primary').out == "0-100-9,1-101-2\n"


@pytest.mark.parametrize("donor,kind", [("primary", "binlog_info"), ("replica", "slave_info")])
def test_a_clone_without_its_position_file_fails_naming_both_names(pod, tmp_path, donor, kind):
    (tmp_path / "stage").mkdir()
    done = pod("clone.sh", 'clone_position "$T/stage" %s' % donor)
    assert done.rc != 0 and done.out == ""
    for name in ("xtrabackup_" + kind, "mariadb_backup_" + kind):
        assert str(tmp_path / "stage" / name) in done.err


BAD_FILES = [
    ("primary", "xtrabackup_binlog_info", ""),
    ("primary", "mariadb_backup_binlog_info", "\n"),
    ("primary", "xtrabackup_binlog_info", "mysql-bin.000001\n"),
    ("primary", "mariadb_backup_binlog_info", "mysql-bin.000001\t328\tgarbage\n"),
    ("primary", "xtrabackup_binlog_info", "mysql-bin.000001\t328\t[]\n"),
    ("replica", "xtrabackup_slave_info", ""),
    ("replica", "mariadb_backup_slave_info", "SET GLOBAL gtid_slave_pos = 'x-y';\n"),
    ("replica", "mariadb_backup_slave_info", "SET GLOBAL gtid_slave_pos = '';\n"),
]


@pytest.mark.parametrize("donor,name,content", BAD_FILES)
def test_a_clone_with_an_unusable_position_fails_naming_the_file(pod, tmp_path, donor, name, content):
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / name).write_text(content)
    done = pod("clone.sh", 'clone_position "$T/stage" %s' % donor)
    assert done.rc != 0 and done.out == ""
    assert str(tmp_path / "stage" / name) in done.err


def test_an_unreadable_position_file_fails_naming_it(pod, tmp_path):
    (tmp_path / "stage" / "xtrabackup_binlog_info").mkdir(parents=True)  # readable by root, yet no file
    done = pod("clone.sh", 'clone_position "$T/stage" primary')
    assert done.rc != 0 and str(tmp_path / "stage" / "xtrabackup_binlog_info") in done.err


def test_a_replica_donor_without_gtid_but_with_transactions_fails(pod, tmp_path):
    # A file/offset slave_info means an empty gtid_slave_pos only if the donor
    # has not executed anything either.
    stage = stage_from(tmp_path, "10.11", "replica-new")
    (stage / "xtrabackup_binlog_info").write_text("mysql-bin.000001\t852\t0-100-3\n")
    done = pod("clone.sh", 'clone_position "$T/stage" replica')
    assert done.rc != 0 and str(stage / "xtrabackup_slave_info") in done.err


@pytest.mark.parametrize("position,valid", [
    ("0-100-7", True), ("0-100-7,1-101-3", True), ("empty", True),
    ("", False), ("0-100", False), ("[]", False), ("0-100-7, 1-101-3", False), ("0-100-7\n", False), ("x", False),
])
def test_valid_position(pod, position, valid):
    assert (pod("common.sh", 'valid_position "$1"', args=[position]).rc == 0) is valid


# clone.sh as a whole, with the network and mariadb-backup stubbed

CLONE_STUBS = {
    # Records what it was sent; "streams" nothing itself.
    "socat": 'cat > "$T/sent"\n',
    # "Extracts" the directory $T/stream into the -C directory.
    "mbstream": 'cat >/dev/null; cp -r "$T/stream/." "$3"\n',  # mbstream -x -C DIR
    "mariadb-backup": "exit 0\n",
}


@pytest.fixture
def clone(pod, tmp_path):
    """clone(stream_dir or None, hostname): run clone.sh's main on a stream that extracts to stream_dir."""
    for name, body in CLONE_STUBS.items():
        path = tmp_path / "bin" / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    write_credentials(tmp_path, {"clone-token": NASTY[3]})

    def run(stream, hostname="mysql-1"):
        target = tmp_path / "stream"
        shutil.rmtree(target, ignore_errors=True)
        if stream is None:
            target.mkdir()
        else:
            shutil.copytree(stream, target)
        return pod("clone.sh", "main", hostname=hostname)

    return run


def backup_stream(tmp_path, version, case, checkpoints=True):
    """A complete stream: data with mysql/, *_checkpoints, and the fixture's position files."""
    stream = stage_from(tmp_path, version, case)
    (stream / "mysql").mkdir()
    (stream / "ibdata1").write_text("data")
    if checkpoints:
        (stream / ("xtrabackup_checkpoints" if version == "10.11" else "mariadb_backup_checkpoints")).write_text("")
    return stream


@pytest.mark.parametrize("version,case,hostname,position", [
    ("10.11", "primary", "mysql-1", "0-100-4"),
    ("11.8", "replica", "mysql-2", "0-100-3"),
    ("11.8", "primary-new", "mysql-1", "empty"),
])
def test_clone_lands_the_data_and_its_position(clone, tmp_path, version, case, hostname, position):
    leftover = tmp_path / "data" / ".staging-clone"
    leftover.mkdir()
    (leftover / "half-written").write_text("")  # an interrupted attempt
    done = clone(backup_stream(tmp_path, version, case), hostname)
    assert done.rc == 0, done.err
    data = tmp_path / "data"
    assert (data / "mysql").is_dir() and (data / "ibdata1").exists()
    assert (data / "clone-position").read_text() == position + "\n"
    assert not leftover.exists()
    # The token goes out as one line, exactly as mounted.
    assert (tmp_path / "sent").read_bytes() == (NASTY[3] + "\n").encode()


@pytest.mark.parametrize("broken", ["no position file", "empty position file"])
def test_clone_without_a_position_fails_and_lands_nothing(clone, tmp_path, broken):
    stream = backup_stream(tmp_path, "10.11", "primary")
    if broken == "no position file":
        (stream / "xtrabackup_binlog_info").unlink()
    else:
        (stream / "xtrabackup_binlog_info").write_text("")
    done = clone(stream)
    assert done.rc != 0
    assert "xtrabackup_binlog_info" in done.err and "ERROR" in done.err
    assert not (tmp_path / "data" / "mysql").exists()
    assert not (tmp_path / "data" / "clone-position").exists()


def test_a_cut_stream_fails_the_clone(clone, tmp_path):
    done = clone(backup_stream(tmp_path, "11.8", "primary", checkpoints=False))
    assert done.rc != 0 and "cut short" in done.err
    assert not (tmp_path / "data" / "mysql").exists()


def test_an_unreachable_donor_fails_the_clone(clone, tmp_path):
    (tmp_path / "bin" / "socat").write_text("#!/bin/bash\necho 'E connect: Connection refused' >&2; exit 1\n")
    done = clone(backup_stream(tmp_path, "11.8", "primary"))
    assert done.rc != 0 and "receiving the stream from mysql-0.mysql failed" in done.err


# The sidecar's replication setup

@pytest.mark.parametrize("content", ["", "\n", "garbage\n", "0-100\n"])
def test_sidecar_refuses_an_invalid_clone_position(pod, tmp_path, content):
    (tmp_path / "data" / "clone-position").write_text(content)
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("sidecar.sh", SQL_STUB + "configure_replication", hostname="mysql-2")
    assert done.rc != 0 and str(tmp_path / "data" / "clone-position") in done.err
    assert sql_log(tmp_path) == ""


@pytest.mark.parametrize("position,gtid", [("0-100-7", "0-100-7"), ("empty", "")])
def test_sidecar_starts_a_fresh_clone_at_its_position(pod, tmp_path, position, gtid):
    (tmp_path / "data" / "clone-position").write_text(position + "\n")
    write_credentials(tmp_path, {"replication-password": NASTY[1]})
    done = pod("sidecar.sh", SQL_STUB + "configure_replication", hostname="mysql-2")
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    assert skeleton.startswith("-- sql \nSET GLOBAL gtid_slave_pos = ?;\n-- sql \nSTOP SLAVE;\nCHANGE MASTER TO")
    assert literals == [gtid, "mysql-0.mysql", "repl", NASTY[1]]
    assert not (tmp_path / "data" / "clone-position").exists()


def test_sidecar_keeps_the_position_of_a_configured_replica(pod, tmp_path):
    shutil.copy(os.path.join(FIXTURES, "status-11.8-mysql-1.txt"), tmp_path / "status")
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("sidecar.sh", SQL_STUB + "configure_replication", hostname="mysql-1")
    assert done.rc == 0, done.err
    assert "gtid_slave_pos" not in sql_log(tmp_path) and "CHANGE MASTER TO" in sql_log(tmp_path)


# Readiness

READY = ["status-10.11-mysql-1.txt", "status-11.8-mysql-1.txt",  # IO Yes, SQL Yes
         "status-11.8-replica-reconnecting.txt", "slave-status-10.11-primary-down.txt"]  # Connecting, 2003
NOT_READY = {
    "status-10.11-replica-auth-error.txt": "replication IO thread: Connecting (error 1045: ",
    "slave-status-11.8-auth-error.txt": "replication IO thread: Connecting (error 1045: ",
    "slave-status-10.11-stopped.txt": "replication SQL thread: No",
    "slave-status-11.8-stopped.txt": "replication SQL thread: No",
    "slave-status-10.11-sql-error.txt": "replication SQL thread: No (error 1950: ",
    "slave-status-11.8-sql-error.txt": "replication SQL thread: No (error 1950: ",
    "slave-status-10.11-position-gone.txt": "replication IO thread: No (error 1236: ",
}
# Of those, the ones no wait ends (statefulset_wait fails at once on them).
STUCK = {"slave-status-10.11-sql-error.txt", "slave-status-11.8-sql-error.txt", "slave-status-10.11-position-gone.txt"}


@pytest.mark.parametrize("name", READY)
def test_probe_accepts_a_running_or_reconnecting_replica(pod, name):
    done = pod("probe.sh", 'replica_ready "$1"', args=[fixture(name)])
    assert (done.rc, done.out) == (0, "")


@pytest.mark.parametrize("name", sorted(NOT_READY))
def test_probe_rejects_a_broken_replica_and_says_why(pod, name):
    done = pod("probe.sh", 'replica_ready "$1"', args=[fixture(name)])
    assert done.rc == 1 and done.out.startswith(NOT_READY[name])


@pytest.mark.parametrize("errno", sorted(set(range(1990, 2070)) | {0, 1045, 1236}))
def test_the_probe_keeps_exactly_the_replicas_the_python_calls_reconnecting(pod, errno):
    """probe.sh and replication.RECONNECT_ERRNOS agree on every errno a client can see."""
    status = fixture("slave-status-10.11-primary-down.txt").replace("Last_IO_Errno: 2003", "Last_IO_Errno: %d" % errno)
    done = pod("probe.sh", 'replica_ready "$1"', args=[status])
    state = replication.pod_state(fixture("status-10.11-mysql-1.txt"))
    state.update(io_running="Connecting", last_io_errno=errno)
    assert (done.rc == 0) == replication.reconnecting(state), (errno, done.out)


@pytest.mark.parametrize("name", sorted(NOT_READY))
def test_the_wait_reads_the_probe_s_reason_as_the_probe_says_it(pod, name):
    done = pod("probe.sh", 'replica_ready "$1"', args=[fixture(name)])
    reason = rollout.replication_stuck("Readiness probe failed: " + done.out)
    assert (reason is not None) == (name in STUCK), (done.out, reason)


def test_probe_rejects_a_replica_without_replication(pod):
    done = pod("probe.sh", 'replica_ready ""')
    assert done.rc == 1 and done.out == "replication is not configured\n"


def test_probe_reports_the_whole_error_message(pod):
    done = pod("probe.sh", 'replica_ready "$1"', args=[fixture("status-10.11-replica-auth-error.txt")])
    assert done.out.rstrip().endswith("Access denied for user 'repl'@'10.88.0.4' (using password: YES))")


# Datadir staging

def test_clear_incomplete_datadir_keeps_only_lost_and_found(pod, tmp_path):
    data = tmp_path / "data"
    for path in ("ibdata1", ".staging-clone/mysql/user.frm", ".hidden", "lost+found/kept"):
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_text("")
    assert pod("common.sh", "clear_incomplete_datadir").rc == 0
    assert sorted(p.name for p in data.iterdir()) == ["lost+found"]
    assert (data / "lost+found" / "kept").exists()


def test_move_into_datadir_moves_everything_with_mysql_last(pod, tmp_path):
    stage = tmp_path / "data" / ".staging-clone"
    for path in ("mysql/user.frm", "ibdata1", ".hidden", "app/t.ibd", "clone-position"):
        (stage / path).parent.mkdir(parents=True, exist_ok=True)
        (stage / path).write_text(path)
    mv = tmp_path / "bin" / "mv"
    mv.write_text('#!/bin/bash\necho "$1" >> "$T/moves"\nexec %s "$@"\n' % shutil.which("mv"))
    mv.chmod(0o755)
    done = pod("common.sh", 'move_into_datadir "$DATADIR/.staging-clone"')
    assert done.rc == 0, done.err
    data = tmp_path / "data"
    assert sorted(p.name for p in data.iterdir()) == [".hidden", "app", "clone-position", "ibdata1", "mysql"]
    assert (data / "mysql" / "user.frm").read_text() == "mysql/user.frm"
    assert (tmp_path / "moves").read_text().splitlines()[-1] == str(stage / "mysql")


def test_move_into_datadir_without_mysql_fails_and_leaves_no_mysql(pod, tmp_path):
    stage = tmp_path / "data" / ".staging-init"
    stage.mkdir()
    (stage / "ibdata1").write_text("")
    done = pod("common.sh", 'move_into_datadir "$DATADIR/.staging-init"')
    assert done.rc != 0
    assert not (tmp_path / "data" / "mysql").exists()


# The topology record (ConfigMap <name>-topology, mounted)

# A ConfigMap value is mounted as its bytes: "mysql-2", no trailing newline
# (where `read` fails at end of file); a hand-written file may have one.
RECORD_FORMATS = [pytest.param("mysql-2", id="as-mounted"), pytest.param("mysql-2\n", id="newline")]


@pytest.mark.parametrize("content", RECORD_FORMATS)
def test_recorded_primary_is_the_ordinal_of_the_recorded_pod(pod, tmp_path, content):
    write_topology(tmp_path, primary=content)
    done = pod("common.sh", 'p=$(recorded_primary); echo "primary $p"')
    assert (done.rc, done.out) == (0, "primary 2\n"), done.err


@pytest.mark.parametrize("content", ["mysql-2", "mysql-2\n"])
@pytest.mark.parametrize("hostname,ordinal,primary", [("mysql-2", "", True), ("mysql-0", "", False),
                                                      ("mysql-0", "2", True), ("mysql-2", "0", False)])
def test_is_primary_follows_the_record(pod, tmp_path, content, hostname, ordinal, primary):
    write_topology(tmp_path, primary=content)
    done = pod("common.sh", 'if is_primary %s; then echo yes; else echo no; fi' % ordinal, hostname=hostname)
    assert (done.rc, done.out) == (0, "yes\n" if primary else "no\n"), done.err


@pytest.mark.parametrize("content", [None, "", "other-2", "mysql-", "mysql-x", "mysql-2 ", "mysql-2\nmysql-1\n"])
def test_a_missing_or_foreign_record_fails_naming_the_file(pod, tmp_path, content):
    write_topology(tmp_path, primary=content)
    path = str(tmp_path / "topology" / "primary")
    done = pod("common.sh", 'p=$(recorded_primary); echo "got $p"')
    assert done.rc != 0 and "got" not in done.out
    assert path in done.err and "not a pod of mysql" in done.err
    # In a condition too: never read as "not the primary".
    done = pod("common.sh", 'if is_primary; then echo yes; else echo no; fi')
    assert done.rc != 0 and done.out == "" and path in done.err


# server.sh as a whole: it runs on being sourced, so it runs as a script from
# a copy of the scripts whose common.sh ends by pointing the paths into
# tmp_path; mariadbd, mariadb-install-db and mariadb are stubs.

SERVER_STUBS = {
    # The bootstrap server (--skip-networking) runs until TERM; the final one logs its argv and exits with
    # $STUB_EXIT, or with SERVE set runs until TERM, which it logs.
    "mariadbd": 'printf "%s\\n" "$*" >> "$T/mariadbd.log"\n'
                'case " $* " in *" --skip-networking "*) trap "exit 0" TERM; while :; do sleep 0.1; done ;; esac\n'
                'if [ -n "${SERVE:-}" ]; then trap \'echo TERM >> "$T/mariadbd.log"; exit 0\' TERM; echo $$ > "$T/pid"\n'
                '  while :; do sleep 0.1; done; fi\n'
                'exit "${STUB_EXIT:-0}"\n',
    "mariadb-install-db": 'for a; do case $a in --datadir=*) mkdir -p "${a#--datadir=}/mysql" ;; esac; done\n'
                          'echo "$*" >> "$T/install-db.log"\n',
    "mariadb": '{ printf -- "-- mariadb %s\\n" "$*"; cat; } >> "$T/mariadb.log"\n',
}


@pytest.fixture
def server(pod, tmp_path):
    """server(hostname): run server.sh; its data in tmp_path/data, its record in tmp_path/topology."""
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    with open(scripts / "common.sh", "a") as common:
        common.write("\nDATADIR=%s CREDENTIALS=%s TOPOLOGY=%s CNF=%s STALL_MARK=%s\n" % tuple(
            shlex.quote(str(tmp_path / d)) for d in ("data", "credentials", "topology", "my.cnf", "shm-stalled")))
    for name, body in SERVER_STUBS.items():
        path = tmp_path / "bin" / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    write_credentials(tmp_path, dict(zip(PASSWORD_KEYS, ["r", "p", "b"])))

    def run(hostname, background=False, **env):
        environ = dict({"PATH": "%s:%s" % (tmp_path / "bin", os.environ["PATH"]), "HOSTNAME": hostname,
                        "STATEFULSET_NAME": "mysql", "SERVICE_NAME": "mysql", "T": str(tmp_path)}, **env)
        if background:
            return subprocess.Popen(["bash", str(scripts / "server.sh")], env=environ, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        done = subprocess.run(["bash", str(scripts / "server.sh")], env=environ, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        return Run(done)

    return run


def mariadbd_runs(tmp_path):
    path = tmp_path / "mariadbd.log"
    return path.read_text().splitlines() if path.exists() else []


def test_server_refuses_an_empty_volume_on_the_recorded_primary_of_an_initialised_cluster(server, tmp_path):
    write_topology(tmp_path, primary="mysql-2", initialised="true")
    done = server("mysql-2")
    assert done.rc != 0 and "failover.yml" in done.err
    assert not (tmp_path / "install-db.log").exists() and mariadbd_runs(tmp_path) == []
    assert not (tmp_path / "data" / "mysql").exists()


@pytest.mark.parametrize("initialised", ["false", None])
def test_server_initialises_a_new_cluster_on_the_recorded_primary(server, tmp_path, initialised):
    write_topology(tmp_path, primary="mysql-2", initialised=initialised)
    done = server("mysql-2")
    assert done.rc == 0, done.err
    assert (tmp_path / "data" / "mysql").is_dir() and (tmp_path / "install-db.log").exists()
    assert "CREATE USER repl@'%';" in (tmp_path / "mariadb.log").read_text()
    bootstrap, final = mariadbd_runs(tmp_path)
    assert "--skip-networking" in bootstrap.split()
    assert final.split() == ["--defaults-file=%s" % (tmp_path / "my.cnf"), "--read-only=OFF", "--rpl-semi-sync-master-enabled=OFF",
                             "--init-rpl-role=MASTER"]


def test_server_does_not_initialise_a_replica(server, tmp_path):
    write_topology(tmp_path, primary="mysql-2", initialised="false")
    done = server("mysql-0")
    assert done.rc != 0 and "clone init container" in done.err
    assert not (tmp_path / "install-db.log").exists() and mariadbd_runs(tmp_path) == []


@pytest.mark.parametrize("hostname,read_only,role", [("mysql-2", "OFF", "MASTER"), ("mysql-0", "ON", "SLAVE"),
                                                    ("mysql-1", "ON", "SLAVE")])
def test_server_is_writable_only_on_the_recorded_primary(server, tmp_path, hostname, read_only, role):
    (tmp_path / "data" / "mysql").mkdir()
    write_topology(tmp_path, primary="mysql-2", initialised="true")
    done = server(hostname)
    assert done.rc == 0, done.err
    assert mariadbd_runs(tmp_path) == ["--defaults-file=%s --read-only=%s --rpl-semi-sync-master-enabled=OFF --init-rpl-role=%s"
                                       % (tmp_path / "my.cnf", read_only, role)]
    assert not (tmp_path / "install-db.log").exists()


@pytest.mark.parametrize("left", [
    ("master.info", "mysql-2.mysql\n"),  # a demoted primary restarting before the kubelet refreshed its record
    (".fenced-primary", ""),  # role.sh isolate crashed it: its unacknowledged commits are rolled back
])
def test_a_recorded_primary_that_was_demoted_or_isolated_starts_read_only_as_a_replica(server, tmp_path, left):
    (tmp_path / "data" / "mysql").mkdir()
    (tmp_path / "data" / left[0]).write_text(left[1])
    write_topology(tmp_path, primary="mysql-0", initialised="true")
    (tmp_path / "my.cnf").write_text("[mysqld]\nrpl_semi_sync_master_enabled = ON\n")
    done = server("mysql-0")
    assert done.rc == 0, done.err
    assert mariadbd_runs(tmp_path)[0].split()[1:] == ["--read-only=ON", "--rpl-semi-sync-master-enabled=OFF",
                                                      "--init-rpl-role=SLAVE"]


@pytest.mark.parametrize("hostname,semi_sync", [("mysql-2", "ON"), ("mysql-1", "OFF")])
def test_only_the_primary_runs_the_primary_side_of_semi_sync(server, tmp_path, hostname, semi_sync):
    (tmp_path / "data" / "mysql").mkdir()
    write_topology(tmp_path, primary="mysql-2", initialised="true")
    (tmp_path / "my.cnf").write_text("[mysqld]\nrpl_semi_sync_master_enabled = ON\nrpl_semi_sync_slave_enabled = ON\n")
    done = server(hostname)
    assert done.rc == 0, done.err
    assert mariadbd_runs(tmp_path)[0].split()[-2] == "--rpl-semi-sync-master-enabled=" + semi_sync


def serving_pid(tmp_path, proc):
    """The PID of the mariadbd stub server.sh (proc) runs with SERVE set, once it serves."""
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    return int((tmp_path / "pid").read_text())


def test_server_exits_with_the_status_of_mariadbd(server, tmp_path):
    (tmp_path / "data" / "mysql").mkdir()
    assert server("mysql-1", STUB_EXIT="137").rc == 137


def test_server_starts_the_stall_watch_before_mariadbd_and_tells_it_the_pid(server, tmp_path):
    """A frozen pod's processes thaw in the order they started: the watch,
    older than mariadbd, runs again first. Told it acts as the primary with
    a stall limit of 1 us (on its pipe, as the guard tells it), it kills the
    server it learnt of, marked to restart read-only."""
    (tmp_path / "data" / "mysql").mkdir()
    proc = server("mysql-1", background=True, SERVE="1")
    try:
        mariadbd = serving_pid(tmp_path, proc)
        time.sleep(0.5)  # after the guard's first line ("idle"; the next comes 10 s later)
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as children:
            pids = [int(pid) for pid in children.read().split()]
        (watch,) = [pid for pid in pids if open("/proc/%d/cmdline" % pid, "rb").read().endswith(b"self-fence.sh\0watch\0")]
        assert watch < mariadbd
        with open("/proc/%d/fd/0" % watch, "w") as pipe:
            pipe.write("primary 1\n")
        assert proc.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        proc.kill()
    assert (tmp_path / "shm-stalled").exists()


def test_a_server_the_stall_watch_killed_starts_read_only_and_keeps_the_mark_on_its_volume(server, tmp_path):
    (tmp_path / "data" / "mysql").mkdir()
    (tmp_path / "shm-stalled").touch()
    write_topology(tmp_path, primary="mysql-0", initialised="true")
    done = server("mysql-0")
    assert done.rc == 0, done.err
    assert mariadbd_runs(tmp_path)[0].split()[1:] == ["--read-only=ON", "--rpl-semi-sync-master-enabled=OFF",
                                                      "--init-rpl-role=SLAVE"]
    assert (tmp_path / "data" / ".fenced-primary").exists() and not (tmp_path / "shm-stalled").exists()


def test_server_passes_sigterm_on_to_mariadbd_its_child(server, tmp_path):
    # mariadbd is not PID 1 of the container (role.sh isolate must be able
    # to crash it), so the script passes the kubelet's SIGTERM on.
    (tmp_path / "data" / "mysql").mkdir()
    proc = server("mysql-1", background=True, SERVE="1")
    try:
        assert serving_pid(tmp_path, proc) != proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert mariadbd_runs(tmp_path)[-1] == "TERM"


# clone.sh when the primary is not ordinal 0

@pytest.mark.parametrize("content", RECORD_FORMATS)
def test_ordinal_0_clones_from_the_recorded_primary(clone, tmp_path, content):
    write_topology(tmp_path, primary=content)
    (tmp_path / "bin" / "socat").write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$T/socat-args"; cat > "$T/sent"\n')
    done = clone(backup_stream(tmp_path, "10.11", "primary"), "mysql-0")
    assert done.rc == 0, done.err
    assert "cloning from mysql-2.mysql:3307" in done.err
    assert any(arg.startswith("TCP:mysql-2.mysql:3307,") for arg in (tmp_path / "socat-args").read_text().splitlines())
    # A primary donor: the position comes from its binlog_info.
    assert (tmp_path / "data" / "clone-position").read_text() == "0-100-4\n"


def test_the_recorded_primary_never_clones(clone, tmp_path):
    write_topology(tmp_path, primary="mysql-2")
    done = clone(backup_stream(tmp_path, "10.11", "primary"), "mysql-2")
    assert done.rc == 0, done.err
    assert not (tmp_path / "sent").exists() and not (tmp_path / "data" / "mysql").exists()


# Readiness decided by the server's state

# SHOW SLAVE STATUS\G answers with $SLAVE_STATUS (none: not replicating);
# @@global.read_only with the file $T/read_only.
PROBE_SQL_STUB = r"""
sql() {
  case "$*" in
    "-e SHOW SLAVE STATUS\G") cat "$SLAVE_STATUS" 2>/dev/null || true ;;
    "-N -e SELECT @@global.read_only") cat "$T/read_only" ;;
    *) echo "unexpected sql $*" >&2; return 1 ;;
  esac
}
"""


@pytest.mark.parametrize("read_only,ready", [("0", True), ("OFF", True), ("1", False), ("ON", False)])
def test_probe_of_a_server_replicating_from_nobody_is_ready_when_writable(pod, tmp_path, read_only, ready):
    (tmp_path / "read_only").write_text(read_only + "\n")
    done = pod("probe.sh", PROBE_SQL_STUB + "main")
    if ready:
        assert (done.rc, done.out) == (0, ""), done.err
    else:  # fenced, or a former primary not yet replicating
        assert (done.rc, done.out) == (1, "replication is not configured\n")


@pytest.mark.parametrize("name,ready", [("status-11.8-mysql-1.txt", True), ("slave-status-11.8-stopped.txt", False)])
def test_probe_of_a_replica_judges_its_replication_even_when_writable(pod, tmp_path, name, ready):
    shutil.copy(os.path.join(FIXTURES, name), tmp_path / "status")
    (tmp_path / "read_only").write_text("0\n")
    done = pod("probe.sh", PROBE_SQL_STUB + "main", hostname="mysql-0")  # the recorded primary: no matter
    assert (done.rc == 0) is ready


# The sidecar on a former primary

def test_sidecar_makes_a_former_primary_continue_after_its_own_history(pod, tmp_path):
    # No replication configured and no clone position: data that never replicated.
    write_topology(tmp_path, primary="mysql-2")
    write_credentials(tmp_path, {"replication-password": NASTY[0]})
    done = pod("sidecar.sh", SQL_STUB + "configure_replication", hostname="mysql-0")
    assert done.rc == 0, done.err
    assert "former primary" in done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    assert skeleton == ("-- sql \nSET GLOBAL read_only = ON;\nSET GLOBAL rpl_semi_sync_master_enabled = OFF;\nSTOP SLAVE;\n"
                        "SET GLOBAL gtid_slave_pos = @@gtid_current_pos;\n"
                        "-- sql \nSTOP SLAVE;\nCHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = 3306, MASTER_USER = ?,\n"
                        "  MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos,\n  MASTER_CONNECT_RETRY = 5;\nSTART SLAVE;\n")
    assert literals == ["mysql-2.mysql", "repl", NASTY[0]]


@pytest.mark.parametrize("content", RECORD_FORMATS)
def test_sidecar_logs_the_recorded_primary_it_replicates_from(pod, tmp_path, content):
    write_topology(tmp_path, primary=content)
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("sidecar.sh", SQL_STUB + "configure_replication", hostname="mysql-0")
    assert done.rc == 0 and "replicating from mysql-2.mysql" in done.err, done.err


def test_sidecar_does_nothing_to_replication_on_the_recorded_primary(pod, tmp_path):
    write_topology(tmp_path, primary="mysql-1")
    (tmp_path / "read_only").write_text("0\n")
    done = pod("sidecar.sh", SQL_STUB + "set_up_replication", hostname="mysql-1")
    assert done.rc == 0 and sql_log(tmp_path) == ""


def test_sidecar_never_demotes_a_promoted_primary_whose_record_is_stale(pod, tmp_path):
    write_topology(tmp_path, primary="mysql-0")  # mysql-1 was promoted; not refreshed here yet
    (tmp_path / "read_only").write_text("0\n")
    done = pod("sidecar.sh", SQL_STUB + "set_up_replication", hostname="mysql-1")
    assert done.rc == 0 and sql_log(tmp_path) == ""
    assert "left as it is" in done.err


def test_sidecar_leaves_a_demoted_primary_whose_record_is_stale_replicating(pod, tmp_path):
    write_topology(tmp_path, primary="mysql-0")  # mysql-0 was demoted; not refreshed here yet
    shutil.copy(os.path.join(FIXTURES, "status-11.8-mysql-1.txt"), tmp_path / "status")
    done = pod("sidecar.sh", SQL_STUB + "set_up_replication", hostname="mysql-0")
    assert done.rc == 0 and sql_log(tmp_path) == ""
    assert "left replicating as it is" in done.err


def test_sidecar_sets_up_a_replica_named_as_such_by_the_record(pod, tmp_path):
    write_topology(tmp_path, primary="mysql-0")
    write_credentials(tmp_path, {"replication-password": "p"})
    shutil.copy(os.path.join(FIXTURES, "status-11.8-mysql-1.txt"), tmp_path / "status")
    done = pod("sidecar.sh", SQL_STUB + "set_up_replication", hostname="mysql-1")
    assert done.rc == 0 and "CHANGE MASTER TO" in sql_log(tmp_path), done.err


def test_sidecar_gives_the_exporter_a_monitoring_account_outside_the_binary_log(pod, tmp_path):
    # Binary-logged on a replica, the account would be an errant transaction.
    done = pod("sidecar.sh", SQL_STUB + "create_exporter_account", hostname="mysql-1")
    assert done.rc == 0, done.err
    statements = [line for line in sql_log(tmp_path).splitlines() if not line.startswith("--")]
    assert statements == ["SET SESSION sql_log_bin = 0;",
                          "CREATE USER IF NOT EXISTS nobody@localhost IDENTIFIED VIA unix_socket;",
                          "GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO nobody@localhost;"]


# role.sh: the role changes move_primary makes

@pytest.mark.parametrize("args", [[], ["bogus"], ["fence", "now"], ["promote", "1"], ["unfence", "x"], ["replicate"],
                                  ["replicate", "1", "2"]])
def test_role_usage_errors_change_nothing(pod, tmp_path, args):
    done = pod("role.sh", SQL_STUB + 'main "$@"', args=args)
    assert done.rc != 0 and "usage: role.sh" in done.err
    assert sql_log(tmp_path) == ""


@pytest.mark.parametrize("ordinal", ["x", "-1", "mysql-2", ""])
def test_role_replicate_needs_an_ordinal(pod, tmp_path, ordinal):
    done = pod("role.sh", SQL_STUB + 'main "$@"', args=["replicate", ordinal])
    assert done.rc != 0 and "replicate needs an ordinal" in done.err
    assert sql_log(tmp_path) == ""


def test_role_replicate_points_a_replica_at_the_given_ordinal_not_the_record(pod, tmp_path):
    shutil.copy(os.path.join(FIXTURES, "status-11.8-mysql-1.txt"), tmp_path / "status")
    write_topology(tmp_path, primary="mysql-0")  # not refreshed in this pod yet
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("role.sh", SQL_STUB + 'main "$@"', hostname="mysql-1", args=["replicate", "2"])
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    assert skeleton.startswith("-- sql -e SET GLOBAL read_only = ON; SET GLOBAL rpl_semi_sync_master_enabled = OFF\n"
                               "-- sql \nSTOP SLAVE;\nCHANGE MASTER TO MASTER_HOST = ?")
    assert "gtid_slave_pos" not in skeleton  # a replica keeps its position
    assert literals[0] == "mysql-2.mysql"


def test_role_replicate_on_a_former_primary_continues_after_its_history(pod, tmp_path):
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("role.sh", SQL_STUB + 'main "$@"', hostname="mysql-0", args=["replicate", "1"])
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    assert skeleton.startswith("-- sql \nSET GLOBAL read_only = ON;\nSET GLOBAL rpl_semi_sync_master_enabled = OFF;\nSTOP SLAVE;\n"
                               "SET GLOBAL gtid_slave_pos = @@gtid_current_pos;\n-- sql \nSTOP SLAVE;\nCHANGE MASTER TO")
    assert literals[0] == "mysql-1.mysql"


def test_role_fence_turns_read_only_first_closes_client_sessions_and_prints_the_position(pod, tmp_path):
    stub = r"""
sql() {
  { printf -- '-- sql %s\n' "$*"; cat; } >> "$SQL_LOG"
  case "$*" in
    "-N -e SELECT id FROM"*) printf '12\n13\n' ;;
    "-N -e SELECT @@gtid_binlog_pos") echo 0-100-9 ;;
  esac
}
"""
    done = pod("role.sh", stub + 'main "$@"', hostname="mysql-0", args=["fence"])
    assert (done.rc, done.out.splitlines()[-1]) == (0, "0-100-9"), done.err
    log = sql_log(tmp_path)
    assert log.startswith("-- sql -e SET SESSION lock_wait_timeout = 10; SET GLOBAL read_only = ON\n")
    assert "KILL CONNECTION 12;\nKILL CONNECTION 13;\n" in log
    assert log.index("KILL CONNECTION") < log.index("SELECT @@gtid_binlog_pos")


# A stand-in for sql() when role.sh isolate runs: $T/waiting lists the
# sessions waiting for a semi-sync acknowledgement, @@pid_file is $T/pid.
ISOLATE_STUB = r"""
sql() {
  { printf -- '-- sql %s\n' "$*"; cat; } >> "$SQL_LOG"
  case "$*" in
    *"Waiting for semi-sync ACK"*) cat "$T/waiting" 2>/dev/null || true ;;
    "-N -e SELECT @@pid_file") echo "$T/pid" ;;
    "-N -e SELECT @@gtid_binlog_pos") echo 0-100-9 ;;
  esac
}
"""


def test_role_isolate_without_unacknowledged_commits_fences_and_marks_the_server(pod, tmp_path):
    done = pod("role.sh", ISOLATE_STUB + 'main "$@"', hostname="mysql-0", args=["isolate"])
    assert (done.rc, done.out.splitlines()[-1]) == (0, "0-100-9"), done.err
    assert (tmp_path / "data" / ".fenced-primary").exists()
    assert "SET GLOBAL read_only = ON" in sql_log(tmp_path) and "KILL" not in sql_log(tmp_path)


def test_role_isolate_crashes_a_server_with_unacknowledged_commits(pod, tmp_path):
    # Killed, their sessions would commit them; crashed, recovery as a
    # replica rolls them back. The crash comes after the exec has answered.
    (tmp_path / "waiting").write_text("41\n42\n")
    server = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "pid").write_text("%d\n" % server.pid)
        done = pod("role.sh", ISOLATE_STUB + 'main "$@"', hostname="mysql-0", args=["isolate"])
        assert (done.rc, done.out) == (0, "crashing\n"), done.err
        assert "2 commits wait" in done.err
        assert server.wait(timeout=10) == -signal.SIGKILL
    finally:
        server.kill()
    assert (tmp_path / "data" / ".fenced-primary").exists()
    assert "read_only" not in sql_log(tmp_path) and "KILL" not in sql_log(tmp_path)


def test_role_isolate_fences_a_server_that_is_pid_1_after_killing_the_waiting_sessions(pod, tmp_path):
    # A pod of an earlier release: PID 1 ignores SIGKILL from its own container.
    (tmp_path / "waiting").write_text("41\n")
    (tmp_path / "pid").write_text("1\n")
    done = pod("role.sh", ISOLATE_STUB + 'main "$@"', hostname="mysql-0", args=["isolate"])
    assert (done.rc, done.out.splitlines()[-1]) == (0, "0-100-9"), done.err
    log = sql_log(tmp_path)
    assert log.index("KILL CONNECTION 41;") < log.index("SET GLOBAL read_only = ON")
    assert (tmp_path / "data" / ".fenced-primary").exists()


def fake_processes(tmp_path, processes):
    """A /proc for role.sh crash: {pid: comm}."""
    for pid, comm in processes.items():
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "comm").write_text(comm + "\n")
    return 'PROC_ROOT="$T/proc"; main "$@"'


def test_role_crash_kills_a_frozen_server_without_sql_and_marks_it(pod, tmp_path):
    # Stopped (SIGSTOP) it cannot answer SQL; SIGKILL still ends it, after
    # the exec has answered. Restarted, it starts read-only.
    server = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(server.pid, signal.SIGSTOP)
        body = fake_processes(tmp_path, {1: "bash", 7: "sleep", server.pid: "mariadbd"})
        done = pod("role.sh", ISOLATE_STUB + body, hostname="mysql-0", args=["crash", str(int(time.time()) + 3)])
        assert (done.rc, done.out) == (0, "crashing\n"), done.err
        assert server.wait(timeout=10) == -signal.SIGKILL
    finally:
        server.kill()
    assert (tmp_path / "data" / ".fenced-primary").exists()
    assert sql_log(tmp_path) == ""


def test_role_crash_run_after_its_deadline_kills_nothing(pod, tmp_path):
    # The exec waited for its frozen pod to thaw: the server it would kill
    # has fenced itself and replicates again by now.
    server = subprocess.Popen(["sleep", "60"])
    try:
        body = fake_processes(tmp_path, {1: "bash", server.pid: "mariadbd"})
        done = pod("role.sh", ISOLATE_STUB + body, hostname="mysql-0", args=["crash", str(int(time.time()) - 5)])
        assert (done.rc, done.out) == (0, ""), done.err
        assert "left to its guard" in done.err and server.poll() is None
    finally:
        server.kill()
    assert not (tmp_path / "data" / ".fenced-primary").exists()


@pytest.mark.parametrize("processes,said", [
    ({1: "mariadbd"}, "mariadbd is PID 1 of its container"),  # a pod of an earlier release
    ({1: "bash"}, "no mariadbd runs"),
])
def test_role_crash_only_marks_a_server_it_cannot_kill(pod, tmp_path, processes, said):
    done = pod("role.sh", ISOLATE_STUB + fake_processes(tmp_path, processes), hostname="mysql-0", args=["crash"])
    assert (done.rc, done.out) == (0, ""), done.err
    assert said in done.err and (tmp_path / "data" / ".fenced-primary").exists()


@pytest.mark.parametrize("cnf,statements", [
    ("[mysqld]\nrpl_semi_sync_master_enabled = ON\n",
     ["STOP SLAVE; RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = OFF"]),
    ("[mysqld]\nsync_binlog = 1\n", ["STOP SLAVE; RESET SLAVE ALL", "SET GLOBAL read_only = OFF"]),
])
def test_role_promote_turns_semi_sync_on_before_taking_writes(pod, tmp_path, cnf, statements):
    (tmp_path / "my.cnf").write_text(cnf)
    (tmp_path / "data" / ".fenced-primary").write_text("")  # an isolated old primary may be promoted again
    done = pod("role.sh", SQL_STUB + 'CNF=$T/my.cnf; main "$@"', hostname="mysql-1", args=["promote"])
    assert done.rc == 0, done.err
    assert sql_log(tmp_path) == "".join("-- sql -e %s\n" % statement for statement in statements)
    assert not (tmp_path / "data" / ".fenced-primary").exists()


# TLS: fixed by the record's key tls for the cluster's life

def test_replication_verifies_the_primarys_certificate_when_the_cluster_uses_tls(pod, tmp_path):
    (tmp_path / "topology" / "tls").write_text("true")
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("sidecar.sh", SQL_STUB + "replicate_from_primary 2", hostname="mysql-1")
    assert done.rc == 0, done.err
    skeleton, literals = parse_sql(sql_log(tmp_path))
    assert "MASTER_CONNECT_RETRY = 5,\n  MASTER_SSL = 1, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = 1;\n" in skeleton
    assert literals == ["mysql-2.mysql", "repl", "p", "/etc/mysql/tls/ca.crt"]


@pytest.mark.parametrize("tls", [None, "false"])
def test_replication_leaves_tls_to_the_server_defaults_without_it(pod, tmp_path, tls):
    if tls is not None:
        (tmp_path / "topology" / "tls").write_text(tls)
    write_credentials(tmp_path, {"replication-password": "p"})
    done = pod("sidecar.sh", SQL_STUB + "replicate_from_primary 2", hostname="mysql-1")
    assert done.rc == 0, done.err
    assert "MASTER_SSL" not in sql_log(tmp_path)


@pytest.mark.parametrize("tls,listen,connect", [
    ("true", "OPENSSL-LISTEN:3307,cert=/etc/mysql/tls/tls.crt,key=/etc/mysql/tls/tls.key,verify=0",
     "OPENSSL:mysql-0.mysql:3307,cafile=/etc/mysql/tls/ca.crt,verify=1"),
    ("false", "TCP-LISTEN:3307", "TCP:mysql-0.mysql:3307"),
])
def test_the_clone_port_uses_tls_when_the_cluster_does(pod, tmp_path, tls, listen, connect):
    (tmp_path / "topology" / "tls").write_text(tls)
    done = pod("common.sh", 'clone_listen_address; echo; clone_connect_address mysql-0.mysql')
    assert done.rc == 0, done.err
    assert done.out.splitlines() == [listen, connect]


@pytest.mark.parametrize("table,listening", [
    # /proc/net/tcp of a pod: socat listening on 3307 (0CEB), state 0A.
    ("  sl  local_address rem_address   st\n   0: 00000000:0CEB 00000000:0000 0A 00000000:00000000 00:00000000\n", True),
    # Only a connection from 3307, no listener.
    ("  sl  local_address rem_address   st\n   0: 0A580003:0CEB 0A580002:D2F0 01 00000000:00000000 00:00000000\n", False),
    ("  sl  local_address rem_address   st\n   0: 00000000:0CEA 00000000:0000 0A 00000000:00000000 00:00000000\n", False),
])
def test_the_clone_port_probe_reads_the_listener_from_the_kernel(pod, tmp_path, table, listening):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(table)
    done = pod("common.sh", 'PROC_NET=$T/net; clone_port_listening')
    assert (done.rc == 0) is listening, done.err


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(FIXTURES) if f.startswith("slave-status-")))
def test_the_probe_reads_each_replica_field_as_the_python_does(pod, name):
    """probe.sh's status_field and replication.parse_vertical: one reading of SHOW SLAVE STATUS\\G."""
    [row] = replication.parse_vertical(fixture(name))
    names = sorted(row)
    done = pod("probe.sh", 'for name in "${@:2}"; do printf "%s\\0" "$(status_field "$1" "$name")"; done',
               args=[fixture(name)] + names)
    assert dict(zip(names, done.out.split("\0"))) == row


# self-fence.sh: the primary's guard while the autopilot runs.

SETTINGS = {"mariadb_autopilot": True, "mariadb_autopilot_failover_after": 5.0, "mariadb_replicas": 3,
            "mariadb_server_settings": {"a": 1}, "mariadb_tls": True}


def write_settings(tmp_path, **changes):
    """The settings record as record_settings.yml writes it (to_json, sorted keys)."""
    (tmp_path / "topology" / "settings").write_text(json.dumps(dict(SETTINGS, **changes), sort_keys=True))


def test_the_guard_reads_the_mounted_settings_record(pod, tmp_path):
    write_settings(tmp_path)
    body = 'for name in mariadb_autopilot mariadb_autopilot_failover_after mariadb_replicas mariadb_missing; do ' \
           'printf "%s|" "$(recorded_setting "$name")"; done'
    assert pod("self-fence.sh", body).out == "true|5.0|3||"
    (tmp_path / "topology" / "settings").unlink()  # a cluster whose record holds no settings yet
    assert pod("self-fence.sh", body).out == "||||"


@pytest.mark.parametrize("changes,guarded", [
    ({}, True),
    ({"mariadb_autopilot": False}, False),
    ({"mariadb_replicas": 2}, False),  # two pods never fail over: no replica is a quorum
    ({"mariadb_replicas": 5}, True),
])
def test_the_guard_acts_only_with_the_autopilot_and_three_pods_or_more(pod, tmp_path, changes, guarded):
    write_settings(tmp_path, **changes)
    assert pod("self-fence.sh", "guarded").rc == (0 if guarded else 1)


@pytest.mark.parametrize("reached,pods,outvoted", [
    (0, 3, True), (1, 3, False),
    (0, 4, True), (1, 4, False),  # the 2 it cannot reach are no quorum of 4
    (1, 5, True), (2, 5, False),  # a primary with one replica beside it: the other three could promote
])
def test_a_primary_is_outvoted_when_the_pods_it_cannot_reach_are_a_quorum(pod, reached, pods, outvoted):
    assert pod("self-fence.sh", "outvoted %d %d" % (reached, pods)).rc == (0 if outvoted else 1)


@pytest.mark.parametrize("failover_after,fence_after", [(5.0, 2000000), (10.5, 7500000), (3, 1000000), (None, 2000000)])
def test_the_fence_comes_three_seconds_before_the_autopilot_may_fail_over(pod, tmp_path, failover_after, fence_after):
    write_settings(tmp_path, mariadb_autopilot_failover_after=failover_after)
    assert pod("self-fence.sh", "fence_after_us").out == str(fence_after)


PEER_CLIENT_STUB = r"""#!/bin/bash
printf '%s\n' "$@" > "$T/argv"
printf '%s' "$MYSQL_PWD" > "$T/password"
cat "$T/answer"
exit "$(cat "$T/rc")"
"""


@pytest.mark.parametrize("answer,rc,answers", [
    ("1\n", 0, True),
    ("ERROR 1045 (28000): Access denied for user 'repl'@'10.0.0.1' (using password: YES)\n", 1, True),
    ("ERROR 4151 (HY000): Access denied, this account is locked\n", 1, True),
    ("ERROR 2002 (HY000): Can't connect to server on 'mysql-2.mysql' (115)\n", 1, False),
    ("ERROR 2005 (HY000): Unknown server host 'mysql-2.mysql' (-3)\n", 1, False),
    ("", 124, False),  # timeout killed it
])
def test_a_peer_answers_with_any_server_reply_and_the_password_stays_out_of_argv(pod, tmp_path, answer, rc, answers):
    write_credentials(tmp_path, {"replication-password": NASTY[1]})
    (tmp_path / "topology" / "tls").write_text("true")
    (tmp_path / "bin" / "mariadb").write_text(PEER_CLIENT_STUB)
    (tmp_path / "bin" / "mariadb").chmod(0o755)
    (tmp_path / "answer").write_text(answer)
    (tmp_path / "rc").write_text(str(rc))
    assert pod("self-fence.sh", "peer_answers 2").rc == (0 if answers else 1)
    argv = (tmp_path / "argv").read_text().splitlines()
    assert (tmp_path / "password").read_text() == NASTY[1]
    assert not any(NASTY[1] in arg for arg in argv)
    assert argv[0] == "--no-defaults" and "--host=mysql-2.mysql" in argv and "--ssl-verify-server-cert" in argv


# As server.sh starts them: the stall watch, the server (SERVER: a sleep),
# then the guard, in the background ($!).
START_GUARD = 'exec {w}> >(watch); watcher=$!; command sleep 60 {w}>&- & server=$!; echo "$server" >&"$w"; guard "$w" & '


# The guard's rounds with look_bounded answering from $T/looks, one line a
# round ("idle" once fence_self ran: the server is read-only then).
GUARD_STUB = r"""
look_bounded() {
  if [ -e "$T/fenced" ]; then echo idle; return; fi
  local line; line=$(head -n 1 "$T/looks"); sed -i '1{$!d}' "$T/looks"
  # As look does: superseded only against the epoch the guard says it served under.
  if [[ $line =~ ^superseded\ (.*) ]] && ! [ "${1:-0}" -lt "${BASH_REMATCH[1]}" ]; then line="primary ${BASH_REMATCH[1]} no 2 3"; fi
  if [[ $line =~ ^stuck\ (.*) ]]; then sleep "${BASH_REMATCH[1]}"; echo idle; else echo "$line"; fi
}
fence_self() { printf '%s %s\n' "$(date +%s%6N)" "$*" >> "$T/fenced"; }
"""


def run_guard(pod, tmp_path, looks, seconds,
              body=START_GUARD + "command sleep {seconds}; kill $! $server"):
    write_settings(tmp_path, mariadb_autopilot_failover_after=4)  # fence after 1 s
    (tmp_path / "looks").write_text("".join(line + "\n" for line in looks))
    started = time.time()
    done = pod("self-fence.sh", GUARD_STUB + body.replace("{seconds}", str(seconds)))
    assert done.rc == 0, done.err
    fenced = (tmp_path / "fenced").read_text().splitlines() if (tmp_path / "fenced").exists() else []
    return [(int(line.split()[0]) / 1e6 - started, line.split(" ", 1)[1]) for line in fenced]


@pytest.mark.parametrize("changes,every,said", [
    ({}, 1, "guarding: the autopilot runs and the cluster has 3 pods"),
    ({"mariadb_autopilot": False}, 10, "not guarding: the mounted settings record says the autopilot is off"),
])
def test_the_guard_looks_every_second_and_checks_every_ten_while_it_has_nothing_to_guard(pod, tmp_path, changes, every, said):
    write_settings(tmp_path, **changes)
    (tmp_path / "looks").write_text("replica 0 no 2 3\n")
    body = GUARD_STUB + ('sleep() { printf "%s\\n" "$1" >> "$T/slept"; command sleep 0.2; }; '
                         + START_GUARD + 'command sleep 1; kill $! $server')
    done = pod("self-fence.sh", body)
    assert done.rc == 0
    asked = [float(seconds) for seconds in (tmp_path / "slept").read_text().split()]
    assert asked and all(every - 0.5 < seconds <= every for seconds in asked), asked
    # Said once, when it changes, not at every look.
    assert [line.split("] ", 1)[1][:len(said)] for line in done.err.splitlines() if "guarding" in line] == [said], done.err


def test_the_guard_fences_a_primary_outvoted_for_fence_after_seconds(pod, tmp_path):
    fenced = run_guard(pod, tmp_path, ["primary 0 yes 2 3"] + ["primary 0 yes 0 3"], 5)
    ((at, why),) = fenced
    assert "only 0 of the 2 other pods answered" in why and 1.9 <= at <= 3.5, fenced


def test_the_guard_forgives_a_primary_that_reaches_a_quorum_again(pod, tmp_path):
    assert run_guard(pod, tmp_path, ["primary 0 yes 0 3", "primary 0 yes 1 3"], 4) == []


def test_the_guard_fences_a_primary_once_the_record_names_another_at_a_newer_epoch(pod, tmp_path):
    fenced = run_guard(pod, tmp_path, ["primary 3 yes 2 3", "superseded 4"], 4)
    assert [why for _at, why in fenced] == ["the record names mysql-0 at epoch 4; this pod was the primary at epoch 3"]


@pytest.mark.parametrize("served,epoch,looked", [
    ("3", "4", "superseded 4"),  # thawed after a failover: fenced without waiting for the peers
    ("4", "4", "primary 4 no 0 3"),  # promoted, its mounted record not refreshed yet
    ("", "4", "primary 4 no 0 3"),  # it never served under this record
])
def test_a_look_names_a_newer_epoch_before_asking_the_peers(pod, tmp_path, served, epoch, looked):
    write_settings(tmp_path)
    (tmp_path / "topology" / "epoch").write_text(epoch)
    (tmp_path / "read_only").write_text("0")  # acting as the primary: writable, replicating from nobody
    write_credentials(tmp_path, {"replication-password": "secret"})
    (tmp_path / "bin" / "mariadb").write_text("#!/bin/bash\ntouch \"$T/peer-asked\"; exit 1\n")
    (tmp_path / "bin" / "mariadb").chmod(0o755)
    done = pod("self-fence.sh", SQL_STUB + 'look "$@"', args=[served])
    assert done.out.strip() == looked, done.err
    assert (tmp_path / "peer-asked").exists() == looked.startswith("primary")


def test_a_look_that_did_not_finish_keeps_the_epoch_the_primary_served_under(pod, tmp_path):
    fenced = run_guard(pod, tmp_path, ["primary 3 yes 2 3", "unknown", "superseded 4"], 4)
    assert [why for _at, why in fenced] == ["the record names mysql-0 at epoch 4; this pod was the primary at epoch 3"]


def test_the_guard_leaves_a_new_primary_whose_mounted_record_is_still_the_old_one(pod, tmp_path):
    # Promoted at epoch 5, its kubelet has not refreshed the record yet.
    assert run_guard(pod, tmp_path, ["primary 4 no 2 3"], 3) == []


def test_a_guard_whose_stall_watch_died_still_fences(pod, tmp_path):
    """Its writes to the watch's pipe fail (EPIPE): it goes on guarding."""
    body = ('exec {w}> >(true); command sleep 0.3; command sleep 60 {w}>&- & server=$!; guard "$w" & '
            'command sleep {seconds}; kill $! $server')
    fenced = run_guard(pod, tmp_path, ["primary 0 yes 2 3"] + ["primary 0 yes 0 3"], 5, body=body)
    assert [why[:len("only 0 of the 2")] for _at, why in fenced] == ["only 0 of the 2"], fenced


def test_the_stall_watch_keeps_a_line_its_timeout_cut_in_two(pod, tmp_path):
    """Ticking every 10 ms, it may time out in the middle of the guard's line."""
    done = pod("self-fence.sh", 'exec {w}> >(watch); command sleep 60 {w}>&- & server=$!; echo "$server" >&"$w"; '
               'echo "primary 9000000" >&"$w"; command sleep 0.1; printf prim >&"$w"; command sleep 0.1; '
               'printf "ary 1\\n" >&"$w"; command sleep 0.5; '
               'if kill -0 "$server" 2>/dev/null; then echo server-runs; kill "$server"; else echo server-killed; fi')
    assert done.out.split() == ["server-killed"], done.err


def test_the_stall_watch_stops_once_the_guard_is_gone(pod, tmp_path):
    """Else it would keep the last state it was told, and could kill a pod
    that no longer acts as the primary."""
    done = pod("self-fence.sh", 'exec {w}> >(watch); watcher=$!; echo 12345 >&"$w"; echo "primary 9000000" >&"$w"; '
               'exec {w}>&-; command sleep 1; if kill -0 "$watcher" 2>/dev/null; then echo watching; fi')
    assert done.rc == 0 and done.out == "", done.err
    assert "the guard is gone: no more stall watch" in done.err


# The guard and its stall watch stopped (SIGSTOP, as a frozen pod's every
# process stands still) for STALL seconds, 2 s after they started; SERVER
# stands for mariadbd.
STALL_BODY = GUARD_STUB + START_GUARD + r"""guard=$!
command sleep 2
stopped=("$guard" $(pgrep -P "$guard" || true) "$watcher" $(pgrep -P "$watcher" || true))
kill -STOP "${stopped[@]}"; command sleep "$STALL"; kill -CONT "${stopped[@]}"
command sleep 0.5
if kill -0 "$server" 2>/dev/null; then echo server-runs; kill "$server"; else echo server-killed; fi
kill "$guard"
"""


@pytest.mark.parametrize("looks,stall,killed", [
    (["primary 3 yes 2 3"], 3.5, True),  # stall limit: failover_after 4 - 1 s
    (["primary 3 yes 2 3"], 2.5, False),  # shorter than any failover
    (["replica 3 no 2 3"], 3.5, False),  # a replica's server is never the one a failover replaces
])
def test_a_primary_that_stood_still_for_failover_after_less_one_second_is_killed_at_once(pod, tmp_path, looks, stall, killed):
    write_settings(tmp_path, mariadb_autopilot_failover_after=4)
    (tmp_path / "looks").write_text("".join(line + "\n" for line in looks))
    done = pod("self-fence.sh", "STALL=%s\n%s" % (stall, STALL_BODY))
    assert done.rc == 0, done.err
    assert done.out.split() == ["server-killed" if killed else "server-runs"], done.err
    # Marked first, in the pod's memory: it restarts read-only (server.sh).
    assert (tmp_path / "shm-stalled").exists() == killed
    assert ("crashed mariadbd: this pod stood still for" in done.err) == killed, done.err
    assert not (tmp_path / "fenced").exists()  # no SQL: the kill is all


# tls.sh: a renewed certificate loaded without a restart.

PEM = {"ca.crt": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
       "tls.crt": "-----BEGIN CERTIFICATE-----\nSERVER\n-----END CERTIFICATE-----\n",
       "tls.key": "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"}


def write_tls(tmp_path, values):
    (tmp_path / "tls").mkdir(exist_ok=True)
    for key, value in values.items():
        (tmp_path / "tls" / key).write_text(value)
    return 'TLS_DIR=$T/tls; '


def test_the_mounted_certificate_checksum_matches_the_ansible_definition(pod, tmp_path):
    done = pod("tls.sh", write_tls(tmp_path, PEM) + "mounted")
    assert done.rc == 0 and done.out.strip() == ansible_checksum(PEM, "tls"), done.err


def test_tls_exits_3_until_the_certificate_is_mounted_then_reloads_it_outside_the_binary_log(pod, tmp_path):
    expected = ansible_checksum(dict(PEM, **{"tls.crt": "renewed"}), "tls")
    done = pod("tls.sh", write_tls(tmp_path, PEM) + SQL_STUB + 'main "$@"', args=[expected])
    assert done.rc == 3 and expected in done.err and sql_log(tmp_path) == ""
    listener = subprocess.Popen(["sleep", "60"])  # the sidecar's socat, which read the old certificate
    try:
        (tmp_path / "listener.pid").write_text("%d\n" % listener.pid)
        done = pod("tls.sh", write_tls(tmp_path, {"tls.crt": "renewed"}) + SQL_STUB
                   + 'CLONE_LISTENER_PID=$T/listener.pid; main "$@"', args=[expected])
        assert done.rc == 0, done.err
        assert listener.wait(timeout=10) == -signal.SIGTERM  # restarted by the sidecar's loop with the new one
    finally:
        listener.kill()
    assert sql_log(tmp_path) == "-- sql -e FLUSH LOCAL SSL\n"


def test_the_sidecar_reloads_a_certificate_changed_in_the_secret(pod, tmp_path):
    # The kubelet swaps the files when the Secret changes (cert-manager renewed it).
    body = (write_tls(tmp_path, PEM) + SQL_STUB + 'CLONE_LISTENER_PID=$T/none; WATCH_EVERY=0.2; watch & sleep 0.7; '
            'printf renewed > "$TLS_DIR/tls.crt"; sleep 0.7; kill $!')
    done = pod("tls.sh", body)
    assert sql_log(tmp_path) == "-- sql -e FLUSH LOCAL SSL\n", done.err
    assert "certificate reloaded: the mounted Secret changed" in done.err


def test_role_mark_only_marks_the_datadir(pod, tmp_path):
    # Run in the sidecar while the server's container restarts: no SQL, no process.
    done = pod("role.sh", SQL_STUB + 'main "$@"', hostname="mysql-0", args=["mark"])
    assert (done.rc, done.out) == (0, ""), done.err
    assert (tmp_path / "data" / ".fenced-primary").exists() and sql_log(tmp_path) == ""


# metrics.sh: the certificate's expiry, which the exporter drops.

def served_status(tmp_path, not_after):
    """A mariadb client answering SHOW STATUS LIKE 'Ssl_server_not_after' (-N)
    as the server does (the page runs in a bash of its own, which sources
    common.sh: the client, not sql(), is replaced); None: no server."""
    client = tmp_path / "bin" / "mariadb"
    if not_after is None:
        client.write_text("#!/bin/bash\necho \"ERROR 2002 (HY000): Can't connect to local server\" >&2\nexit 1\n")
    else:
        # The status is the session's: empty unless it speaks TLS. A warning on stderr.
        client.write_text("#!/bin/bash\necho 'a client warning' >&2\ncase \" $* \" in\n"
                          "  *' --ssl '*) printf 'Ssl_server_not_after\\t%s\\n' ;;\n"
                          "  *) printf 'Ssl_server_not_after\\t\\n' ;;\nesac\n" % not_after)
    client.chmod(0o755)
    return ""


REQUEST = "printf 'GET /metrics HTTP/1.1\\r\\nHost: mysql-0:9105\\r\\nAccept: */*\\r\\n\\r\\n' | respond"


def http_answer(out):
    head, body = out.split("\r\n\r\n", 1)
    status = head.split("\r\n")[0]
    length = int(re.search(r"Content-Length: (\d+)", head).group(1))
    return status, length, body


def test_the_metrics_page_gives_the_served_certificates_expiry_and_days_left(pod, tmp_path):
    done = pod("metrics.sh", served_status(tmp_path, "Dec  6 12:00:00 2099 GMT") + REQUEST)
    status, length, body = http_answer(done.out)
    assert done.rc == 0 and status == "HTTP/1.0 200 OK" and length == len(body.encode()), done.err
    values = dict(line.split() for line in body.splitlines() if not line.startswith("#"))
    assert values["mariadb_tls_certificate_expiry_timestamp_seconds"] == "4100241600"
    assert int(values["mariadb_tls_certificate_days_left"]) == (4100241600 - int(time.time())) // 86400
    assert body.endswith("\n") and "# TYPE mariadb_tls_certificate_days_left gauge" in body


def test_without_tls_the_metrics_page_is_empty_and_without_a_server_it_is_a_503(pod, tmp_path):
    status, length, body = http_answer(pod("metrics.sh", served_status(tmp_path, "") + REQUEST).out)
    assert (status, length, body) == ("HTTP/1.0 200 OK", 1, "\n")
    status, _, body = http_answer(pod("metrics.sh", served_status(tmp_path, None) + REQUEST).out)
    assert status == "HTTP/1.0 503 Service Unavailable" and "Can't connect" in body


def test_a_server_that_hangs_gives_a_503_within_the_page_timeout(pod, tmp_path):
    started = time.monotonic()
    client = tmp_path / "bin" / "mariadb"
    client.write_text("#!/bin/bash\nsleep 30\n")
    client.chmod(0o755)
    done = pod("metrics.sh", "PAGE_TIMEOUT=1; " + REQUEST)
    assert http_answer(done.out)[0] == "HTTP/1.0 503 Service Unavailable" and time.monotonic() - started < 10


def test_an_expired_certificate_counts_negative_days(pod, tmp_path):
    done = pod("metrics.sh", served_status(tmp_path, "Dec  6 12:00:00 2001 GMT") + "page")
    days = int(re.search(r"^mariadb_tls_certificate_days_left (-?\d+)$", done.out, re.M).group(1))
    assert days < -9000
