"""Pure logic of the replication check: SQL to run, output parsing, verdicts.

Nothing here talks to Kubernetes, so it is unit-tested on captured output of
real MariaDB 10.11 and 11.8 servers.
"""

import datetime
import re

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid, rollout

# One exec per pod: server identity, then the replica status (no row on a
# server that replicates from nobody). Vertical output parses the same way
# for both statements. fenced: the datadir holds the mark role.sh isolate and
# crash leave (common.sh FENCED_MARK): the server starts read-only.
STATUS_SQL = (
    "SELECT @@server_id AS server_id, @@read_only AS read_only, @@version AS version, "
    "@@gtid_current_pos AS gtid_current_pos, @@gtid_binlog_pos AS gtid_binlog_pos, "
    "@@gtid_slave_pos AS gtid_slave_pos, @@gtid_binlog_state AS gtid_binlog_state, "
    "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
    "WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS') AS semi_sync, "
    "LOAD_FILE(CONCAT(@@datadir, '.fenced-primary')) IS NOT NULL AS fenced\\G "
    "SHOW SLAVE STATUS\\G"
)

# The certificate the server presents. Only a TLS session sees it: the pods'
# own clients skip TLS on the socket, so this is asked with --ssl.
SERVED_CERTIFICATE_SQL = "SHOW STATUS LIKE 'Ssl_server_not_after'"

SENTINEL_DATABASE = "mariadb_k8s"
SENTINEL_TABLE = SENTINEL_DATABASE + ".sentinel"

# A replica's IO thread retries these errors on its own (the primary is
# unreachable or restarting); 0 means it has not tried yet. probe.sh keeps
# such a replica Ready for the same reason.
RECONNECT_ERRNOS = (0, 2003, 2005, 2006, 2013)
# What fixes a replica that no wait heals (its position gone, its SQL thread stopped on an error).
REBUILD = "; rebuild.yml -e pod=%s re-clones it"

_ROW_SEPARATOR = re.compile(r"^\*+ \d+\. row \*+$")
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*): ?(.*)$")
_TOKEN = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def parse_vertical(text):
    """Parse the output of `mariadb` for statements ended by \\G into a list of dicts.

    A line that does not start a field continues the previous field's value
    (error messages may span lines).
    """
    rows = []
    row = None
    last = None
    for line in text.splitlines():
        if _ROW_SEPARATOR.match(line.strip()):
            row = {}
            rows.append(row)
            last = None
            continue
        if row is None:
            continue
        match = _FIELD.match(line)
        if match:
            last = match.group(1)
            row[last] = match.group(2)
        elif last is not None:
            row[last] += "\n" + line
    return rows


def _int_or_none(value):
    if value in (None, "", "NULL"):
        return None
    return int(value)


def pod_state(output):
    """Turn the STATUS_SQL output of one pod into the reported state."""
    rows = parse_vertical(output)
    if not rows or "server_id" not in rows[0]:
        raise ValueError("no server variables in the output: %r" % output[:200])
    server = rows[0]
    replica = rows[1] if len(rows) > 1 else None
    state = {
        "server_id": int(server["server_id"]),
        "read_only": server["read_only"] in ("1", "ON"),
        "version": server["version"],
        "gtid_current_pos": server["gtid_current_pos"],
        "gtid_binlog_pos": server["gtid_binlog_pos"],
        "gtid_slave_pos": server["gtid_slave_pos"],
        "gtid_binlog_state": server.get("gtid_binlog_state", ""),
        # Whether this server, as a primary, waits for a replica's acknowledgement.
        "semi_sync": server.get("semi_sync") == "ON",
        "fenced": server.get("fenced") == "1",
        "gtid_io_pos": "",
        "replicating": replica is not None,
        "primary_host": None,
        "io_running": None,
        "sql_running": None,
        "seconds_behind_primary": None,
        "last_io_errno": None,
        "last_io_error": "",
        "last_sql_errno": None,
        "last_sql_error": "",
        "using_gtid": None,
        # The channel to the primary: TLS, and the primary's certificate verified.
        "tls": None,
        "tls_verified": None,
    }
    if replica is not None:
        state.update({
            "primary_host": replica.get("Master_Host"),
            "io_running": replica.get("Slave_IO_Running"),
            "sql_running": replica.get("Slave_SQL_Running"),
            "seconds_behind_primary": _int_or_none(replica.get("Seconds_Behind_Master")),
            "last_io_errno": _int_or_none(replica.get("Last_IO_Errno")),
            "last_io_error": replica.get("Last_IO_Error", ""),
            "last_sql_errno": _int_or_none(replica.get("Last_SQL_Errno")),
            "last_sql_error": replica.get("Last_SQL_Error", ""),
            "using_gtid": replica.get("Using_Gtid"),
            "gtid_io_pos": replica.get("Gtid_IO_Pos", ""),
            "tls": replica.get("Master_SSL_Allowed") == "Yes",
            "tls_verified": replica.get("Master_SSL_Verify_Server_Cert") == "Yes",
        })
    return state


def certificate_expiry(output):
    """The end of validity in SERVED_CERTIFICATE_SQL's output (OpenSSL's
    form, "Dec  6 12:00:00 2027 GMT") as an aware UTC datetime; None when the
    server presents no certificate."""
    value = output.split("\t", 1)[-1].strip() if "\t" in output else ""
    if not value:
        return None
    try:
        return datetime.datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ValueError("not a certificate's end of validity: %r" % value)


def certificate_problem(pod, expires, now):
    """What is wrong with the certificate a pod serves, the playbook that
    renews it named; None when it is valid."""
    if expires is None:
        return "%s: serves no TLS certificate; renew_tls.yml issues one" % pod
    if expires <= now:
        return "%s: its TLS certificate expired on %s; renew_tls.yml renews it" % (pod, expires.strftime("%Y-%m-%d %H:%M UTC"))
    return None


def reconnecting(state):
    """Whether a replica's IO thread is only waiting to reconnect to its primary."""
    return state["io_running"] == "Connecting" and (state["last_io_errno"] or 0) in RECONNECT_ERRNOS


def problems(pod, state, is_primary, primary_host, max_lag=None, allow_reconnecting=False, tls=False):
    """Why this pod is not a healthy member of the cluster (empty when it is).

    With allow_reconnecting, an IO thread that is reconnecting is no problem
    (yet): the caller proves replication with a sentinel row instead. With
    tls, a replica must replicate over TLS, verifying the primary's certificate."""
    found = []
    if is_primary:
        if state["read_only"]:
            found.append("the primary is read-only")
        if state["replicating"]:
            found.append("the primary is configured as a replica of %s" % state["primary_host"])
        return ["%s: %s" % (pod, p) for p in found]
    if not state["read_only"]:
        found.append("the replica is not read-only")
    if not state["replicating"]:
        found.append("replication is not configured")
    else:
        if state["primary_host"] != primary_host:
            found.append("replicates from %s instead of %s" % (state["primary_host"], primary_host))
        if state["io_running"] != "Yes" and not (allow_reconnecting and reconnecting(state)):
            found.append("IO thread %s%s" % (state["io_running"], error_suffix(state["last_io_error"]))
                         + (REBUILD % pod if (state["last_io_errno"] or 0) == rollout.POSITION_GONE else ""))
        if state["sql_running"] != "Yes":
            found.append("SQL thread %s%s" % (state["sql_running"], error_suffix(state["last_sql_error"]))
                         + (REBUILD % pod if state["last_sql_errno"] else ""))
        if tls and not (state["tls"] and state["tls_verified"]):
            found.append("replicates without TLS verifying the primary's certificate (Master_SSL_Allowed %s, "
                         "Master_SSL_Verify_Server_Cert %s)" % ("Yes" if state["tls"] else "No",
                                                                "Yes" if state["tls_verified"] else "No"))
        lag = state["seconds_behind_primary"]
        if max_lag is not None and lag is not None and lag > max_lag:
            found.append("lag %ds exceeds %ds" % (lag, max_lag))
    return ["%s: %s" % (pod, p) for p in found]


def cluster_problems(pods, primary):
    """More than one writable pod; replicas whose history the primary lacks.

    Returns (the writable pods, one line per problem); sets each replica's
    errant_gtids."""
    found = []
    writable = sorted(pod for pod, state in pods.items() if not state["read_only"])
    if len(writable) > 1:
        found.append("%d pods are writable (%s); only the primary %s may be" % (len(writable), ", ".join(writable), primary))
    if primary in pods:
        for pod, state in sorted(pods.items()):
            if pod == primary:
                continue
            errant = gtid.errant(state["gtid_current_pos"], pods[primary]["gtid_binlog_state"],
                                 pods[primary]["gtid_slave_pos"])
            state["errant_gtids"] = gtid.format_gtids(errant)
            if errant:
                found.append("%s: errant GTIDs %s, not in the history of the primary %s: it must not serve"
                             % (pod, state["errant_gtids"], primary) + REBUILD % pod)
    return writable, found


def error_suffix(message):
    return ": " + message.strip() if message and message.strip() else ""


def _create_unless_exists(count_sql, ddl):
    """Run ddl only when count_sql counts nothing. CREATE ... IF NOT EXISTS is
    binary-logged even when nothing is created, and a DDL statement after a
    commit still waiting for its acknowledgement keeps crash recovery from
    rolling that commit back (the server does not start again). The ddl
    keeps IF NOT EXISTS for two checks racing."""
    return ("SET @mariadb_k8s_ddl = IF((%s) = 0, '%s', 'DO 0'); PREPARE mariadb_k8s_ddl FROM @mariadb_k8s_ddl; "
            "EXECUTE mariadb_k8s_ddl; DEALLOCATE PREPARE mariadb_k8s_ddl; " % (count_sql, ddl))


def sentinel_write_sql(token):
    """SQL that records a new sentinel token on the primary (one row,
    replaced), creating its database and table only the first time."""
    _check_token(token)
    database, table = SENTINEL_TABLE.split(".")
    return (
        _create_unless_exists("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '%s'" % database,
                              "CREATE DATABASE IF NOT EXISTS %s" % database)
        + _create_unless_exists("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' "
                                "AND TABLE_NAME = '%s'" % (database, table),
                                "CREATE TABLE IF NOT EXISTS %s (id TINYINT PRIMARY KEY, token VARCHAR(64) NOT NULL, "
                                "written_at TIMESTAMP(6) NOT NULL)" % SENTINEL_TABLE)
        + "REPLACE INTO %s VALUES (1, '%s', NOW(6));" % (SENTINEL_TABLE, token)
    )


def sentinel_read_sql():
    return "SELECT token FROM %s WHERE id = 1" % SENTINEL_TABLE


def sentinel_seen(output, token):
    """Whether the batch output of sentinel_read_sql shows the token."""
    return token in output.split()


def _check_token(token):
    if not _TOKEN.match(token):
        raise ValueError("sentinel token must be 1-64 letters, digits or '-': %r" % token)
