#!/usr/bin/env bash
# The restore Job's container (restore.yml), with the first pod's volume
# mounted and the first pod's config: seed the datadir from a backup in the
# object store and roll it forward through archived binary logs. The plan
# comes from the backup_catalog module, in the environment:
#   RESTORE_SOURCE   NAMESPACE/NAME of the cluster the backup is of
#   RESTORE_BACKUP   the backup's object, its RESTORE_SIZE, RESTORE_SHA256
#                    and RESTORE_GTID (its manifest's)
#   RESTORE_BINLOGS  a file: "OBJECT SHA256 LAST_GTID" per binary log, in
#                    order
#   RESTORE_STOP     UTC "YYYY-MM-DD HH:MM:SS": apply the transactions, in
#                    commit order, up to the first that started at or after
#                    it; empty: every one the logs hold
#   RESTORE_STOP_GTID  or apply them up to this GTID, inclusive
#                    (verify-backup.sh)
# Everything lands in a staging directory, checked, and only then becomes
# the datadir: a backup or binary log that fails its checksum leaves the
# volume empty.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/clone.sh"

STAGE=$DATADIR/$STAGE_PREFIX-restore

# fetch OBJECT SHA256 DEST_COMMAND...: stream OBJECT into DEST_COMMAND,
# failing unless its bytes have SHA256.
fetch() {
  local object=$1 expected=$2 actual
  shift 2
  mkfifo "$STAGE/tap"
  sha256sum < "$STAGE/tap" | cut -d' ' -f1 > "$STAGE/sha256" &
  store cat "$(store_root "$RESTORE_SOURCE")/$object" | tee "$STAGE/tap" | "$@" \
    || die "$object could not be read whole from the store and unpacked: it is damaged or incomplete (or the store failed); nothing was restored"
  wait "$!"
  actual=$(<"$STAGE/sha256")
  rm -f "$STAGE/tap" "$STAGE/sha256"
  [ "$actual" = "$expected" ] \
    || die "$object fails its checksum (sha256 $actual, the manifest says $expected): it is damaged or incomplete; nothing was restored"
}

# The position the extracted backup holds, read as clone.sh reads a clone's:
# a replica's gtid_slave_pos, else the server's own position.
backup_position() {
  local info
  for info in "$1/xtrabackup_slave_info" "$1/mariadb_backup_slave_info"; do
    if grep -qs "^SET GLOBAL gtid_slave_pos = '.\+';$" "$info"; then
      clone_position "$1" replica
      return
    fi
  done
  clone_position "$1" primary
}

start_server() {
  # No TLS: nothing connects but this script, over the socket, and the Job
  # is given no private key.
  mariadbd --defaults-file="$CNF" --datadir="$STAGE/data" --skip-networking --skip-ssl --read-only=OFF \
    --rpl-semi-sync-master-enabled=OFF --skip-slave-start &
  server=$!
  until sql -e 'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || die "the server did not start on the restored data"
    sleep 1
  done
}

# last_before_stop FILE AFTER_SEQ: the stop time resolved to a GTID. A
# binary log's event times are when statements started, not when they
# committed, so they are not in the log's order: the restore applies, in
# commit order, the transactions before the first (after sequence number
# AFTER_SEQ, which the server holds already) that started at or after
# RESTORE_STOP. Prints "STOP GTID", the last one to apply (GTID empty: none
# of this log's), or nothing when every transaction of FILE started before it.
last_before_stop() {
  local stop
  stop=$(date -u -d "$RESTORE_STOP" +%Y-%m-%dT%H:%M:%S)
  # Read to the end, not exit at the stop: the parser would die of SIGPIPE,
  # and pipefail fail the restore.
  binlog_transactions "$1" | awk -v after="$2" -v stop="$stop" '
    # Sequence numbers as strings: up to 2^64 - 1, past what awk counts exactly.
    function later(a, b) { return length(a) != length(b) ? length(a) > length(b) : (a "") > (b "") }
    found { next }
    {
      split($1, part, "-")
      if (!later(part[3], after)) next
      if ($2 >= stop) { print "STOP " last; found = 1; next }
      last = $1
    }'
}

# Transactions of later binary logs that an earlier one held already are
# skipped: each log is applied after the position reached so far, whole or
# up to the stop time's GTID, and then the server must be at its last GTID.
apply_binlogs() {
  local object sha last position file stop why n=0
  while read -r object sha last; do
    [ -n "$object" ] || continue
    n=$((n + 1))
    file=$STAGE/binlog.$n
    fetch "$object" "$sha" dd of="$file" status=none
    position=$(sql -N -e 'SELECT @@gtid_binlog_pos')
    stop='' why=''
    if [ -n "$RESTORE_STOP" ]; then
      stop=$(last_before_stop "$file" "$(gtid_seq "${position:-0-0-0}")")
      why=", the last transaction started before $RESTORE_STOP UTC"
    elif [ -n "${RESTORE_STOP_GTID:-}" ] && [ "$(gtid_seq "$last")" -ge "$(gtid_seq "$RESTORE_STOP_GTID")" ]; then
      stop="STOP $RESTORE_STOP_GTID"
    fi
    [ -z "$stop" ] || last=${stop#STOP }
    log "applying $object after GTID ${position:-(none)}${stop:+ up to ${last:-(none of it)}$why}"
    if [ -n "$last" ]; then
      TZ=UTC mariadb-binlog --no-defaults ${position:+--start-position="$position"} ${stop:+--stop-position="$last"} \
        "$file" | sql || die "applying $object failed"
    fi
    rm -f "$file"
    [ "$(sql -N -e 'SELECT @@gtid_binlog_pos')" = "${last:-$position}" ] \
      || die "$object ends before ${last:-$position}: it is incomplete; nothing was restored"
    [ -z "$stop" ] || break
  done <"$RESTORE_BINLOGS"
}

# restore_to_stage: the backup, prepared and rolled forward in $STAGE/data,
# its server running ($server, since $started).
restore_to_stage() {
  local position
  [ ! -d "$DATADIR/mysql" ] || die "the volume holds data already: a restore never overwrites it"
  clear_incomplete_datadir
  mkdir -p "$STAGE/data"
  started=$SECONDS
  log "restoring backup $RESTORE_BACKUP of $RESTORE_SOURCE ($RESTORE_SIZE bytes)"
  fetch "$RESTORE_BACKUP" "$RESTORE_SHA256" mbstream -x -C "$STAGE/data"
  position=$(backup_position "$STAGE/data")
  [ "$position" = "${RESTORE_GTID:-empty}" ] \
    || die "the backup holds GTID position $position, its manifest says ${RESTORE_GTID:-empty}"
  log "backup received in $((SECONDS - started))s; preparing"
  mariadb-backup --prepare --target-dir="$STAGE/data" --use-memory="${PREPARE_MEMORY:-256M}" 2>"$STAGE/prepare.log" \
    || { cat "$STAGE/prepare.log" >&2; die "prepare failed"; }
  # The donor's replication state and binary logs are not this cluster's.
  rm -f "$STAGE/data"/master.info "$STAGE/data"/relay-log.info "$STAGE/data"/multi-master.info \
    "$STAGE/data"/*relay-bin* "$STAGE/data"/mysql-bin.* "$STAGE/prepare.log"
  start_server
  # The history continues after the backup's position.
  [ "$position" = empty ] && position=
  sql <<SQL
RESET MASTER;
SET GLOBAL gtid_binlog_state = '$(sql_quote "$position")';
SET GLOBAL gtid_slave_pos = '$(sql_quote "$position")';
SQL
  apply_binlogs
}

main() {
  local position
  restore_to_stage
  # The accounts take this cluster's passwords, after the roll-forward: an
  # older release's rotation was binary-logged and would set the source's
  # (not binary-logged here: the replicas clone them).
  set_account_passwords
  # The replayed transactions keep the server ids that wrote them, and
  # gtid_current_pos (what clones start from) counts another server's binlog
  # GTIDs only through gtid_slave_pos.
  position=$(sql -N -e 'SELECT @@gtid_binlog_pos')
  sql <<<"SET GLOBAL gtid_slave_pos = '$(sql_quote "$position")';"
  sql -e 'SHUTDOWN'
  wait "$server" || true
  move_into_datadir "$STAGE/data"
  rm -rf "$STAGE"
  log "restored in $((SECONDS - started))s"
  printf 'RESTORED %s\n' "${position:-empty}"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
