#!/usr/bin/env bash
# Row checksums of every user table, all read in one consistent snapshot,
# and the GTID position that snapshot is at: what verify-backup.sh compares
# between a cluster's pod (asked over the clone port, serve-backup.sh) and the
# scratch server it restored to that position.
#   table-checksums.sh    prints "GTID <position>" (empty: none), then
#                         "TABLE<tab>schema.table<tab>rows<tab>sum1<tab>sum2"
#                         per InnoDB table and "SKIPPED<tab>schema.table<tab>why"
#                         per table that no snapshot holds still (another
#                         engine) or a sequence; a "PROGRESS" line every 10 s
#                         while it reads (the connection must not idle out);
#                         the last line is "CHECKSUMS OK", "CHECKSUMS FAILED
#                         <why>", or "CHECKSUMS DECLINED <why>" from a replica
#                         too far behind its primary (the requester asks the
#                         next).
# Each row is hashed (MD5 of its columns as bytes, then of their lengths, a
# NULL's -1) and the two halves of the hashes summed: the order of the rows
# does not matter, and two equal rows do not cancel each other out.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# checksum_queries: one line per user table, "SELECT 'schema.table', rows,
# sum1, sum2 FROM ...;" for InnoDB tables, "SKIPPED<tab>schema.table<tab>why"
# for the others.
checksum_queries() {
  sql -N --raw <<'SQL'
SET SESSION group_concat_max_len = 4294967295;
SELECT IF(t.engine = 'InnoDB' AND t.table_type <> 'SEQUENCE',
  CONCAT('SELECT ', QUOTE(CONCAT(t.table_schema, '.', t.table_name)), ', COUNT(*), ',
    'COALESCE(SUM(CAST(CONV(LEFT(h, 15), 16, 10) AS UNSIGNED)), 0), COALESCE(SUM(CAST(CONV(RIGHT(h, 15), 16, 10) AS UNSIGNED)), 0) ',
    'FROM (SELECT MD5(CONCAT_WS(0x1f, ',
    GROUP_CONCAT(CONCAT('CAST(`', REPLACE(c.column_name, '`', '``'), '` AS BINARY)') ORDER BY c.ordinal_position),
    ', CONCAT_WS(0x2c, ', GROUP_CONCAT(CONCAT('IFNULL(OCTET_LENGTH(`', REPLACE(c.column_name, '`', '``'), '`), -1)') ORDER BY c.ordinal_position),
    '))) AS h FROM `', REPLACE(t.table_schema, '`', '``'), '`.`', REPLACE(t.table_name, '`', '``'), '`) AS r;'),
  CONCAT('SKIPPED\t', t.table_schema, '.', t.table_name, '\t',
    IF(t.table_type = 'SEQUENCE', 'a sequence', CONCAT('engine ', IFNULL(t.engine, 'unknown'), ': no snapshot holds its rows still'))))
FROM information_schema.tables t
JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_type IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE')
  AND t.table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
GROUP BY t.table_schema, t.table_name, t.engine, t.table_type
ORDER BY t.table_schema, t.table_name;
SQL
}

# table_checksums: the lines above but the last, or a failure. The table list
# is read before the snapshot and again after it: a table created, dropped or
# altered in between would be compared with a restore that has another list,
# so the reading is done again (at most three times).
table_checksums() {
  local queries again attempt
  for attempt in 1 2 3; do
    queries=$(checksum_queries) || return
    {
      cat <<'SQL'
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;
START TRANSACTION WITH CONSISTENT SNAPSHOT;
SELECT 'GTID', IFNULL(BINLOG_GTID_POS(
  (SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'BINLOG_SNAPSHOT_FILE'),
  (SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'BINLOG_SNAPSHOT_POSITION')), '');
SQL
      grep -v '^SKIPPED' <<<"$queries" || true
      echo 'COMMIT;'
    } | sql -N > "$1" || return
    again=$(checksum_queries) || return
    if [ "$again" = "$queries" ]; then
      awk -F'\t' '$1 == "GTID" { print "GTID " $2; next } { print "TABLE\t" $1 "\t" $2 "\t" $3 "\t" $4 }' "$1"
      grep '^SKIPPED' <<<"$queries" || true
      return 0
    fi
    log "the tables changed while they were read (attempt $attempt of 3)"
  done
  echo "the tables changed while they were read, three times: DDL ran meanwhile" >&2
  return 1
}

main() {
  local refusal status ticker
  refusal=$(lag_refusal)
  if [ -n "$refusal" ]; then
    log "declined the table checksums: $refusal"
    printf 'CHECKSUMS DECLINED %s\n' "$refusal"
    exit 0
  fi
  # Global, not local: the trap runs after main has returned.
  work=$(mktemp -d /tmp/checksums.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  # sleep holds no descriptor of the connection: once killed, the loop is gone.
  while sleep 10 >/dev/null 2>&1; do echo PROGRESS reading the tables; done &
  ticker=$!
  status=0
  table_checksums "$work/sums" > "$work/out" 2> "$work/err" || status=$?
  kill "$ticker"
  if [ "$status" = 0 ]; then
    cat "$work/out"
    echo "CHECKSUMS OK"
  else
    log "ERROR: table checksums failed: $(cat "$work/err")"
    printf 'CHECKSUMS FAILED %s\n' "$(tail -n 1 "$work/err")"
    exit 1
  fi
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
