#!/usr/bin/env bash
# Sidecar, in the background when backups are configured: on the pod acting
# as primary, every ARCHIVE_INTERVAL seconds, close the binary log if it holds
# new transactions and upload every closed one whose transactions the archive
# lacks. A transaction is archived at most about two intervals after its
# commit, whichever pod is primary then: a promoted replica uploads the tail
# of the history its own binary logs hold (log-slave-updates) that the old
# primary did not archive.
#
# In the store, under TIMELINE/binlogs/: each binary log and its index
# (binlog_object_name, store.sh), and archived-until.json: every transaction
# committed before its time is archived.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

ARCHIVE_INTERVAL=${ARCHIVE_INTERVAL:-60}
# The GTID range of each closed binary log, by name and size: parsed once.
RANGES=/tmp/binlog-ranges
FLUSHED_AT=/tmp/binlog-flushed-at

# binlog_range FILE: "FIRST_GTID LAST_GTID FIRST_TIME LAST_TIME" (UTC epoch
# seconds) of the transactions in FILE; nothing when it holds none.
binlog_range() {
  local range first last first_time last_time
  range=$(TZ=UTC mariadb-binlog --no-defaults "$DATADIR/$1" | awk '
    /^#[0-9][0-9][0-9][0-9][0-9][0-9] .*[[:space:]]GTID [0-9]+-[0-9]+-[0-9]+/ {
      for (i = 1; i < NF; i++) if ($i == "GTID") gtid = $(i + 1)
      time = "20" substr($1, 2, 2) "-" substr($1, 4, 2) "-" substr($1, 6, 2) "T" $2
      if (first == "") { first = gtid; first_time = time }
      last = gtid; last_time = time
    }
    END { if (first != "") print first, last, first_time, last_time }')
  [ -n "$range" ] || return 0
  read -r first last first_time last_time <<<"$range"
  printf '%s %s %s %s\n' "$first" "$last" "$(date -u -d "${first_time/T/ }" +%s)" "$(date -u -d "${last_time/T/ }" +%s)"
}

cached_range() {
  local cache=$RANGES/$1.$2
  if [ ! -e "$cache" ]; then
    mkdir -p "$RANGES"
    binlog_range "$1" > "$cache.tmp"
    mv "$cache.tmp" "$cache"
  fi
  cat "$cache"
}

# The highest sequence number the timeline's archive holds, 0 when empty:
# its newest log, or its marker's position, since retention may have
# deleted every log the kept backups hold already.
archived_max_seq() {
  local marker=0 listing name last max=0
  # An assignment, not a process substitution: a failed listing stops here.
  listing=$(store lsf --files-only --include '*.json' "$1/")
  while IFS= read -r name; do
    last=$(binlog_last_seq "$name") || continue
    [ "$last" -le "$max" ] || max=$last
  done <<<"$listing"
  if [ -n "$(store lsf --files-only --include archived-until.json "$1/")" ]; then
    marker=$(json_field "$(store cat "$1/archived-until.json")" gtid)
    marker=$([ -n "$marker" ] && gtid_seq "$marker" || echo 0)
  fi
  printf '%s' "$((max > marker ? max : marker))"
}

upload_binlog() {
  local dir=$1 file=$2 size=$3 first=$4 last=$5 first_time=$6 last_time=$7 name sha timeline_id
  name=$(binlog_object_name "$first" "$last" "$HOSTNAME" "$file")
  sha=$(sha256sum "$DATADIR/$file" | cut -d' ' -f1)
  store copyto "$DATADIR/$file" "$dir/$name"
  timeline_id=$(timeline)
  printf '{"timeline": "%s", "object": "binlogs/%s", "pod": "%s", "file": "%s", "first_gtid": "%s", "last_gtid": "%s", "first_time": %s, "last_time": %s, "size": %s, "sha256": "%s"}\n' \
    "$timeline_id" "$name" "$HOSTNAME" "$file" "$first" "$last" "$first_time" "$last_time" "$size" "$sha" \
    | store rcat "$dir/$name.json"
  log "archived $file ($first..$last)"
}

archive_round() {
  acting_primary || return 0
  local dir started position archived entry file size range first last first_time last_time
  dir=$(store_root)/$(timeline)/binlogs
  started=$(date -u +%s)
  position=$(sql -N -e 'SELECT @@gtid_binlog_pos')
  if [ "$position" != "$(cat "$FLUSHED_AT" 2>/dev/null)" ]; then
    sql -e 'FLUSH BINARY LOGS'
    printf '%s' "$position" > "$FLUSHED_AT"
  fi
  archived=$(archived_max_seq "$dir")
  local listing
  local -a closed
  # An assignment, not a process substitution: errexit applies to it.
  listing=$(sql -N -e 'SHOW BINARY LOGS')
  mapfile -t closed < <(awk '{ print $1, $2 }' <<<"$listing" | sed '$d')
  for entry in "${closed[@]}"; do
    read -r file size <<<"$entry"
    range=$(cached_range "$file" "$size")
    [ -n "$range" ] || continue
    read -r first last first_time last_time <<<"$range"
    [ "$(gtid_seq "$last")" -gt "$archived" ] || continue
    if [ "$archived" -gt 0 ] && [ "$(gtid_seq "$first")" -gt $((archived + 1)) ]; then
      log "WARNING: the archive lacks the transactions after sequence number $archived and before $first: point-in-time recovery cannot cross that gap"
    fi
    upload_binlog "$dir" "$file" "$size" "$first" "$last" "$first_time" "$last_time"
    archived=$(gtid_seq "$last")
  done
  printf '{"timeline": "%s", "time": %s, "gtid": "%s", "pod": "%s"}\n' "$(timeline)" "$started" "$position" "$HOSTNAME" \
    | store rcat "$dir/archived-until.json"
}

main() {
  if [ "${1:-}" = round ]; then
    archive_round
    return
  fi
  store_configured || exit 0
  log "archiving binary logs to $(store_root) every ${ARCHIVE_INTERVAL}s while this pod acts as primary"
  while true; do
    # A process of its own: errexit does not apply on the left of ||.
    bash "${BASH_SOURCE[0]}" round || log "WARNING: archiving the binary logs failed; trying again in ${ARCHIVE_INTERVAL}s"
    sleep "$ARCHIVE_INTERVAL"
  done
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
