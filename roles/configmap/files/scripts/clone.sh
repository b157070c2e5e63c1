#!/usr/bin/env bash
# Init container: give a new replica the data of the previous ordinal (of
# the primary, for ordinal 0), streamed by mariadb-backup over TCP and
# prepared. The data only lands in
# the datadir once complete, so an interrupted clone is retried from scratch.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# position_file DIR KIND: the file mariadb-backup wrote with KIND (binlog_info
# or slave_info); 10.11 names it xtrabackup_*, 11.x mariadb_backup_*.
position_file() {
  local path
  for path in "$1/xtrabackup_$2" "$1/mariadb_backup_$2"; do
    [ -e "$path" ] && break
  done
  [ -r "$path" ] || die "no readable $1/xtrabackup_$2 or $1/mariadb_backup_$2: cannot tell where replication starts"
  printf '%s' "$path"
}

# binlog_gtid DIR: the donor's gtid_current_pos from its binlog_info,
# FILE<TAB>OFFSET<TAB>GTID (releases that copy the binlogs list one line per
# file, the backup's position last), or "empty".
binlog_gtid() {
  local path line gtid
  path=$(position_file "$1" binlog_info)
  line=$(tail -n 1 "$path")
  [[ $line =~ ^[^[:space:]]+$'\t'[0-9]+($'\t'(.*))?$ ]] || die "$path holds no binlog position: '$line'"
  gtid=${BASH_REMATCH[2]:-empty}
  valid_position "$gtid" || die "$path: '$gtid' is not a GTID position"
  printf '%s' "$gtid"
}

# clone_position DIR primary|replica: print the GTID position the backup in
# DIR was taken at, from a primary or a replica donor. Fails naming the file
# when it is missing, unreadable or holds no position.
#
# An empty position is real, not lost: the primary creates its accounts
# without the binary log (server.sh), so until the first write its GTID
# position is empty and every clone of a new cluster is taken there. The
# primary's binlog_info then ends after the offset; a replica whose
# gtid_slave_pos is empty gets a slave_info with a file/offset CHANGE MASTER
# instead of a gtid_slave_pos line, and an empty gtid_current_pos. That is
# recorded as "empty": replication starts at the primary's first binlog
# event, the first change the backup lacks.
clone_position() {
  local dir=$1 path gtid
  if [ "$2" = primary ]; then
    gtid=$(binlog_gtid "$dir")
  else
    path=$(position_file "$dir" slave_info)
    gtid=$(sed -n "s/^SET GLOBAL gtid_slave_pos = '\(.*\)';$/\1/p" "$path")
    if [ -n "$gtid" ]; then
      valid_position "$gtid" || die "$path: '$gtid' is not a GTID position"
    else
      grep -q "^CHANGE MASTER TO MASTER_LOG_FILE=" "$path" || die "$path holds no replication position: '$(cat "$path")'"
      gtid=$(binlog_gtid "$dir")
      [ "$gtid" = empty ] || die "$path has no gtid_slave_pos, yet the donor had executed $gtid"
    fi
  fi
  printf '%s\n' "$gtid"
}

# receive_stream DONOR DIR: the donor's backup, unpacked into DIR. The donor
# streams only after reading the clone token. Our side never ends
# (ignoreeof): a TLS connection cannot be half-closed, so socat would wait
# for the donor forever; in its transfer loop -T gives up after the idle
# timeout without a byte, so a vanished donor fails the clone instead of
# hanging it, and -t 1 ends it once the donor has sent everything.
receive_stream() {
  local token
  read_clone_token token
  printf '%s\n' "$token" \
    | socat -T "$CLONE_IDLE_TIMEOUT" -t 1 STDIO,ignoreeof "$(clone_connect_address "$1"),connect-timeout=10,$CLONE_KEEPALIVE" \
    | mbstream -x -C "$2" \
    || die "receiving the stream from $1 failed"
  # mariadb-backup sends *_checkpoints last: without it the stream was cut.
  ls "$2"/*_checkpoints >/dev/null 2>&1 \
    || die "the stream from $1 was empty or cut short (donor gone, refused, or silent for ${CLONE_IDLE_TIMEOUT}s)"
}

main() {
  if [ -d "$DATADIR/mysql" ]; then
    log "data present: no clone needed"
    exit 0
  fi
  # The primary never clones: server.sh initialises a new cluster's data or
  # refuses to start on an empty volume.
  if is_primary; then
    exit 0
  fi

  # With OrderedReady, every lower ordinal is Ready before this pod starts.
  local donor_ordinal=$((ORDINAL - 1)) donor donor_role=replica stage=$DATADIR/$STAGE_PREFIX-clone position started
  [ "$donor_ordinal" -ge 0 ] || donor_ordinal=$(recorded_primary)
  donor=$(pod_host "$donor_ordinal")
  is_primary "$donor_ordinal" && donor_role=primary
  clear_incomplete_datadir
  mkdir -p "$stage"
  log "cloning from $donor:$CLONE_PORT$(tls_enabled && printf ' over TLS')"
  started=$(date +%s.%N)
  since_start() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }'; }
  receive_stream "$donor" "$stage"
  position=$(clone_position "$stage" "$donor_role")
  log "stream received in $(since_start)s ($(du -sh "$stage" | cut -f1)); preparing"
  mariadb-backup --prepare --target-dir="$stage" --use-memory="${PREPARE_MEMORY:-256M}" 2>"$stage.prepare.log" \
    || { cat "$stage.prepare.log" >&2; die "prepare failed"; }
  rm -f "$stage.prepare.log"
  printf '%s\n' "$position" > "$stage/clone-position"
  move_into_datadir "$stage"
  log "clone complete in $(since_start)s; replication will start at GTID position $position"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
