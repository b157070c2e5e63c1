#!/usr/bin/env bash
# Row checksums of every user table, all read in one consistent snapshot,
# and the GTID position that snapshot is at: what verify-backup.sh compares
# between a cluster's pod (asked over the clone port, serve-backup.sh) and the
# scratch server it restored to that position.
#   table-checksums.sh    prints "GTID <position>" (empty: none), then
#                         "TABLE <schema.table> <rows> <sum1> <sum2>" per
#                         InnoDB table and "SKIPPED <schema.table> <engine>"
#                         per table of another engine, whose rows no
#                         snapshot holds still; the last line is
#                         "CHECKSUMS OK" or "CHECKSUMS FAILED <why>".
# Each row is hashed (MD5 of its columns as bytes, NULL marked apart from
# empty) and the two halves of the hashes summed: the order of the rows does
# not matter, and two equal rows do not cancel each other out.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# checksum_queries: one line per user table, "SELECT 'schema.table', rows,
# sum1, sum2 FROM ...;" for InnoDB tables, "SKIPPED schema.table engine" for
# the others.
checksum_queries() {
  sql -N <<'SQL'
SET SESSION group_concat_max_len = 4294967295;
SELECT IF(t.engine = 'InnoDB',
  CONCAT('SELECT ', QUOTE(CONCAT(t.table_schema, '.', t.table_name)), ', COUNT(*), ',
    'COALESCE(SUM(CAST(CONV(LEFT(h, 15), 16, 10) AS UNSIGNED)), 0), COALESCE(SUM(CAST(CONV(RIGHT(h, 15), 16, 10) AS UNSIGNED)), 0) ',
    'FROM (SELECT MD5(CONCAT_WS(0x1f, ',
    GROUP_CONCAT(CONCAT('CAST(`', REPLACE(c.column_name, '`', '``'), '` AS BINARY)') ORDER BY c.ordinal_position),
    ', CONCAT(', GROUP_CONCAT(CONCAT('ISNULL(`', REPLACE(c.column_name, '`', '``'), '`)') ORDER BY c.ordinal_position),
    '))) AS h FROM `', REPLACE(t.table_schema, '`', '``'), '`.`', REPLACE(t.table_name, '`', '``'), '`) AS r;'),
  CONCAT('SKIPPED ', t.table_schema, '.', t.table_name, ' ', IFNULL(t.engine, 'unknown')))
FROM information_schema.tables t
JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_type = 'BASE TABLE'
  AND t.table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
GROUP BY t.table_schema, t.table_name, t.engine
ORDER BY t.table_schema, t.table_name;
SQL
}

table_checksums() {
  local queries
  queries=$(checksum_queries)
  {
    cat <<'SQL'
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;
START TRANSACTION WITH CONSISTENT SNAPSHOT;
SELECT 'GTID', IFNULL(BINLOG_GTID_POS(
  (SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'BINLOG_SNAPSHOT_FILE'),
  (SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'BINLOG_SNAPSHOT_POSITION')), '');
SQL
    grep -v '^SKIPPED ' <<<"$queries" || true
    echo 'COMMIT;'
  } | sql -N | awk -F'\t' '$1 == "GTID" { print "GTID " $2; next } { print "TABLE", $1, $2, $3, $4 }'
  grep '^SKIPPED ' <<<"$queries" || true
}

main() {
  local out
  if out=$(table_checksums 2>&1); then
    printf '%s\nCHECKSUMS OK\n' "$out"
  else
    log "ERROR: table checksums failed: $out"
    printf 'CHECKSUMS FAILED %s\n' "$(tail -n 1 <<<"$out")"
    exit 1
  fi
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
