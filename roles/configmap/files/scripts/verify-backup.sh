#!/usr/bin/env bash
# A backup verification Job (verify_backup.yml, or the CronJob of
# mariadb_backup_verify_schedule) proves that the newest backup restores: it
#   verify-backup.sh source   (an init container) asks a pod of the cluster
#                             for its tables' checksums, all read in one
#                             snapshot at GTID G (table-checksums.sh, over the
#                             clone port), waits until the archive holds G and
#                             reads the store's catalog;
#   (backup_verification.py, the next init container, plans the restore: the
#   newest backup at or before G and the archived binary logs up to G;)
#   verify-backup.sh restore  restores that plan on the Job's scratch volume,
#                             as restore.sh does, starts a server on it with
#                             no network, rolls it forward to exactly G and
#                             compares its tables' checksums with the
#                             source's.
# The verdict is recorded in the backup's manifest (verified_time,
# verified_gtid, verified_tables, verified_result: match, mismatch or
# restore failed) and, for a match, in TIMELINE/verified.json, which the
# pods' metrics report (mariadb_backup_verified_timestamp). The last line is
# "VERIFIED MATCH <json>", or "VERIFIED MISMATCH <json>" or "VERIFIED FAILED
# <why>", and the Job fails.
#   env: REPLICAS, ARCHIVE_INTERVAL
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/restore.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/table-checksums.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/catalog.sh"

WORK=/tmp/verify

# wait_for_archive GTID: until the cluster's archive holds GTID (the
# primary's archiver uploads a transaction within about two intervals).
wait_for_archive() {
  local want dir deadline=$((SECONDS + 3 * ARCHIVE_INTERVAL + 60))
  [ -n "$1" ] || return 0
  want=$(gtid_seq "$1")
  dir=$(store_root)/$(timeline)/binlogs
  until [ "$(archived_max_seq "$dir")" -ge "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] \
      || die "the archive does not hold GTID $1, where $ASKED_POD read its tables, after $((3 * ARCHIVE_INTERVAL + 60))s: the primary does not archive its binary logs (its sidecar's log says why), or $ASKED_POD holds a transaction the primary lacks"
    log "waiting for the archive to hold GTID $1"
    sleep 5
  done
}

source_step() {
  local gtid
  store_configured || die "no object store is configured (mariadb_backup_store_secret)"
  mkdir -p "$WORK"
  timeline > "$WORK/timeline"
  ask_pods checksums "$WORK/source" "the table checksums" >/dev/null
  [ "$(tail -n 1 "$WORK/source")" = "CHECKSUMS OK" ] \
    || die "$ASKED_POD could not read its table checksums: $(tail -n 1 "$WORK/source")"
  gtid=$(sed -n 's/^GTID //p' "$WORK/source")
  log "$ASKED_POD: $(grep -c '^TABLE' "$WORK/source") tables at GTID ${gtid:-(empty)}"
  wait_for_archive "$gtid"
  catalog "$BACKUP_PATH" > "$WORK/catalog"
}

# differences SOURCE RESTORED: one line per table whose checksums differ.
differences() {
  awk -F'\t' '
    FNR == NR { if (/^GTID /) want = substr($0, 6); if ($1 == "TABLE") src[$2] = $3 " " $4 " " $5; next }
    /^GTID / { got = substr($0, 6) }
    $1 == "TABLE" { dst[$2] = $3 " " $4 " " $5 }
    END {
      if (want != got) print "the restore reached GTID " (got == "" ? "(empty)" : got) ", the source " (want == "" ? "(empty)" : want)
      for (t in src) {
        split(src[t], a, " ")
        if (!(t in dst)) print t ": missing from the restore"
        else if (src[t] != dst[t]) {
          split(dst[t], b, " ")
          print t ": " (a[1] != b[1] ? a[1] " rows in the source, " b[1] " restored" : "the rows differ (" a[1] " rows each)")
        }
      }
      for (t in dst) if (!(t in src)) print t ": only in the restore"
    }' "$1" "$2" | sort
}

# record RESULT: the verdict in the backup's manifest, and a match as the
# timeline's newest verification.
record() {
  local path manifest now tables gtid
  now=$(date -u +%s)
  tables=$(grep -c '^TABLE' "$WORK/source" || true)
  gtid=$(sed -n 's/^GTID //p' "$WORK/source")
  path=$(store_root)/$VERIFY_MANIFEST
  manifest=$(store cat "$path")
  manifest=${manifest%%, \"verified_time\"*}
  manifest=${manifest%\}}
  manifest=$(printf '%s, "verified_time": %s, "verified_gtid": "%s", "verified_tables": %s, "verified_result": "%s"}' \
    "$manifest" "$now" "$gtid" "$tables" "$1")
  printf '%s\n' "$manifest" | store rcat "$path"
  if [ "$1" = match ]; then
    printf '{"timeline": "%s", "backup": "%s", "time": %s, "gtid": "%s", "tables": %s}\n' \
      "${VERIFY_MANIFEST%%/*}" "$VERIFY_BACKUP_ID" "$now" "$gtid" "$tables" \
      | store rcat "$(store_root)/${VERIFY_MANIFEST%%/*}/verified.json"
  fi
  printf '%s' "$manifest"
}

restore_step() {
  local status why found line verdict
  # shellcheck source=/dev/null
  . "$WORK/plan"
  RESTORE_SOURCE=$BACKUP_PATH RESTORE_BINLOGS=$WORK/binlogs RESTORE_STOP=
  log "verifying backup $VERIFY_BACKUP_ID: restoring it up to GTID ${RESTORE_STOP_GTID:-(empty)}"
  # Not in a condition: there errexit would be off in the subshell too.
  set +e
  (
    set -e
    restore_to_stage
    table_checksums "$WORK/restored-raw" > "$WORK/restored"
    sql -e 'SHUTDOWN'
    wait "$server" || true
    rm -rf "$STAGE"
  ) 2> "$WORK/restore.log"
  status=$?
  set -e
  cat "$WORK/restore.log" >&2
  if [ "$status" != 0 ]; then
    why=$(sed -n 's/.*ERROR: //p' "$WORK/restore.log" | tail -n 1)
    record "restore failed" >/dev/null
    printf 'VERIFIED FAILED backup %s did not restore: %s\n' "$VERIFY_BACKUP_ID" "${why:-see the log above}"
    exit 1
  fi
  found=$(differences "$WORK/source" "$WORK/restored")
  while IFS=$'\t' read -r _ line why; do
    log "not compared: $line ($why)"
  done < <(grep '^SKIPPED' "$WORK/source" || true)
  if [ -n "$found" ]; then
    while IFS= read -r line; do printf 'MISMATCH %s\n' "$line"; done <<<"$found"
    verdict=$(record mismatch)
    printf 'VERIFIED MISMATCH %s\n' "$verdict"
    exit 1
  fi
  verdict=$(record match)
  printf 'VERIFIED MATCH %s\n' "$verdict"
}

main() {
  case ${1:-} in
    source) source_step ;;
    restore) restore_step ;;
    *) die "usage: verify-backup.sh source | restore" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
