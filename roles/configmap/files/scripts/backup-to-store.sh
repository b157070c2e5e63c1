#!/usr/bin/env bash
# One backup request on the clone port (serve-backup.sh), on the donor:
#   backup-to-store.sh TIME KEEP [THROTTLE]
# names the backup TIME-TIMELINE (the cluster's own identity: two clusters
# writing to one store never share a backup id), streams mariadb-backup
# straight to the object store (nothing is staged: rclone holds a few parts
# in memory), records the backup's manifest, then keeps the newest KEEP
# backups (retention.sh); mariadb-backup does at most THROTTLE read-and-write
# operations a second on the InnoDB files (--throttle; 0: no limit). stdout is the requester's connection: a progress
# line every 10 s (which also keeps the connection from idling out), then
# "BACKUP OK <manifest>", "BACKUP FAILED <why>", or "BACKUP DECLINED <why>"
# from a replica too far behind its primary (the requester asks the next).
#
# In the store, under TIMELINE/backups/ID/: backup.mbstream and
# manifest.json, written last: a backup without a manifest is incomplete.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

fail() { log "ERROR: backup $id: $*"; printf 'BACKUP FAILED %s\n' "$*"; exit 1; }

# backup_gtid LOG: the position the backup holds, from mariadb-backup's log:
# a replica's gtid_slave_pos (what clone.sh starts replication from), else
# the server's GTID of its last change.
backup_gtid() {
  local gtid
  gtid=$(sed -n "s/.*slave binlog position: gtid_slave_pos '\([^']*\)'.*/\1/p" "$1" | tail -n 1)
  [ -n "$gtid" ] || gtid=$(sed -n "s/.*binlog position: .*GTID of the last change '\([^']*\)'.*/\1/p" "$1" | tail -n 1)
  printf '%s' "$gtid"
}

progress() {
  # sleep holds no descriptor of the connection: once this loop is killed,
  # the connection closes.
  while sleep 10 >/dev/null; do
    printf 'PROGRESS %s\n' "$(tail -n 1 "$work/rclone.log" 2>/dev/null | sed 's/^.*NOTICE: *//')"
  done
}

main() {
  id=$1
  local keep=$2 throttle=${3:-0} limit=() dir object started finished tap gtid version size sha manifest position domains refusal
  [[ $id =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || fail "'$id' is not a backup time (YYYYMMDDTHHMMSSZ)"
  id=$id-$(timeline)
  [[ $keep =~ ^[1-9][0-9]*$ ]] || fail "'$keep' is not a number of backups to keep"
  [[ $throttle =~ ^[0-9]+$ ]] || fail "'$throttle' is not a number of operations a second"
  [ "$throttle" = 0 ] || limit=(--throttle="$throttle")
  store_configured || fail "no object store is configured on $HOSTNAME (mariadb_backup_store_secret)"
  refusal=$(lag_refusal)
  if [ -n "$refusal" ]; then
    log "declined backup $id: $refusal"
    printf 'BACKUP DECLINED %s\n' "$refusal"
    exit 0
  fi
  # A backup's position, its restore's roll-forward and retention follow one
  # domain's sequence numbers.
  position=$(sql -N -e 'SELECT @@gtid_current_pos')
  domains=$(gtid_domains "$position")
  [[ $domains != *" "* ]] || fail "$HOSTNAME's GTID position $position spans several GTID domains ($domains): backups and the archive follow one; remove the others (README, backup limits)"
  dir=$(store_root)/$(timeline)/backups/$id
  object=$dir/backup.mbstream
  work=$(mktemp -d /tmp/backup.XXXXXX)
  # Global, not local: the trap runs after main has returned.
  ticker=
  trap '[ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true; rm -rf "$work"' EXIT
  mkfifo "$work/tap"
  sha256sum < "$work/tap" | cut -d' ' -f1 > "$work/sha256" &
  tap=$!
  progress &
  ticker=$!
  log "backup $id: streaming to $object"
  started=$(date -u +%s)
  set +e
  mariadb-backup --defaults-file="$CNF" --protocol=socket --user=mysql --backup --slave-info \
      --stream=mbstream --target-dir="$work" --tmpdir="$work" --parallel="${BACKUP_PARALLEL:-2}" "${limit[@]}" 2>"$work/log" \
    | tee "$work/tap" \
    | store rcat --s3-chunk-size "$STORE_CHUNK_SIZE" --stats 10s --stats-one-line -v "$object" 2>"$work/rclone.log"
  local status=("${PIPESTATUS[@]}")
  set -e
  wait "$tap"
  # Nothing left to report progress on, and the verdict must be the last line.
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  ticker=
  finished=$(date -u +%s)
  if [ "${status[0]}" != 0 ]; then
    tail -n 20 "$work/log" >&2
    fail "mariadb-backup exited with ${status[0]}: $(grep -m1 -i error "$work/log" || tail -n 1 "$work/log")"
  fi
  [ "${status[2]}" = 0 ] || { tail -n 20 "$work/rclone.log" >&2; fail "uploading to the store failed: $(tail -n 1 "$work/rclone.log")"; }
  gtid=$(backup_gtid "$work/log")
  valid_position "${gtid:-empty}" || fail "mariadb-backup's log holds no GTID position"
  version=$(sed -n 's/.*Using server version \([0-9][0-9.]*\).*/\1/p' "$work/log" | head -n 1)
  size=$(store lsjson --stat "$object" | sed -n 's/.*"Size": *\([0-9]*\).*/\1/p')
  sha=$(<"$work/sha256")
  [ -n "$size" ] && [ "$size" -gt 0 ] || fail "the store does not hold $object after the upload"
  manifest=$(printf '{"id": "%s", "timeline": "%s", "epoch": %s, "object": "backups/%s/backup.mbstream", "gtid": "%s", "server_version": "%s", "donor": "%s", "started": %s, "finished": %s, "size": %s, "sha256": "%s"}' \
    "$id" "$(timeline)" "$(recorded_epoch)" "$id" "$gtid" "$version" "$HOSTNAME" "$started" "$finished" "$size" "$sha")
  printf '%s\n' "$manifest" | store rcat "$dir/manifest.json"
  log "backup $id: $size bytes at GTID ${gtid:-empty} in $((finished - started))s"
  # The backup is stored whatever retention does: a failure is only reported.
  bash "$(dirname "${BASH_SOURCE[0]}")/retention.sh" "$keep" | sed 's/^/RETENTION /' \
    || { log "WARNING: retention after backup $id failed"; printf 'RETENTION FAILED (see %s'"'"'s sidecar log)\n' "$HOSTNAME"; }
  printf 'BACKUP OK %s\n' "$manifest"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
