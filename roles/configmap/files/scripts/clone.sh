#!/bin/bash
# Init container: give a new replica the data of the previous ordinal,
# streamed by mariadb-backup over TCP and prepared. The data only lands in
# the datadir once complete, so an interrupted clone is retried from scratch.
. "$(dirname "$0")/common.sh"

if [ -d "$DATADIR/mysql" ]; then
  log "data present: no clone needed"
  exit 0
fi
if is_primary; then
  exit 0
fi

donor=$STATEFULSET_NAME-$((ORDINAL - 1)).$SERVICE_NAME
stage=$DATADIR/$STAGE_PREFIX-clone
clear_incomplete_datadir
mkdir -p "$stage"
log "cloning from $donor:$CLONE_PORT"
started=$(date +%s.%N)
since_start() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }'; }
# The donor streams only after reading the clone token. socat keeps reading
# after our side's EOF (-t) until the donor closes the stream.
printf '%s\n' "$CLONE_TOKEN" \
  | socat -t 86400 - "TCP:$donor:$CLONE_PORT,connect-timeout=10" \
  | mbstream -x -C "$stage"
ls "$stage"/*_checkpoints >/dev/null 2>&1 || die "the stream from $donor was empty or cut short"
log "stream received in $(since_start)s ($(du -sh "$stage" | cut -f1)); preparing"
mariadb-backup --prepare --target-dir="$stage" --use-memory="${PREPARE_MEMORY:-256M}" 2>"$stage.prepare.log" \
  || { cat "$stage.prepare.log" >&2; die "prepare failed"; }
rm -f "$stage.prepare.log"

# The replication start position: a replica donor records its gtid_slave_pos
# in *_slave_info; the primary records its binlog GTID as the third field of
# *_binlog_info. 10.11 names the files xtrabackup_*, 11.x mariadb_backup_*.
position=
for f in "$stage"/xtrabackup_slave_info "$stage"/mariadb_backup_slave_info; do
  [ -f "$f" ] && position=$(sed -n "s/.*gtid_slave_pos *= *'\([^']*\)'.*/\1/p" "$f" | head -n1)
  [ -n "$position" ] && break
done
if [ -z "$position" ]; then
  for f in "$stage"/xtrabackup_binlog_info "$stage"/mariadb_backup_binlog_info; do
    [ -f "$f" ] && read -r _ _ position < "$f" && break
  done
fi
printf '%s\n' "$position" > "$stage/clone-position"
move_into_datadir "$stage"
log "clone complete in $(since_start)s; replication will start at GTID '${position}'"
