#!/usr/bin/env bash
# Sidecar, in the background when backups are configured: on the recorded
# primary, every ARCHIVE_INTERVAL seconds, close the binary log if it holds
# new transactions and upload every closed one whose transactions the archive
# lacks. A transaction is archived at most about two intervals after its
# commit, whichever pod is primary then: a promoted replica uploads the tail
# of the history its own binary logs hold (log-slave-updates) that the old
# primary did not archive.
#
# The archive follows the record's epoch: a pod whose record is older than
# the archive's uploads nothing. A new primary that lacks what the archive
# holds (an old primary archived transactions no replica received, or whose
# unacknowledged commits a crash rolled back) records a divergence after the
# last sequence number both hold and uploads its own history from there;
# restores never roll forward across it (backup_catalog).
#
# In the store, under TIMELINE/: binlogs/ holds each binary log and its index
# (binlog_object_name, store.sh), and archived-until.json: every transaction
# committed before its time is archived; divergences/EPOCH.json each
# divergence.
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
  range=$(binlog_transactions "$DATADIR/$1" \
    | awk 'NR == 1 { first = $1; first_time = $2 } { last = $1; last_time = $2 } END { if (NR) print first, last, first_time, last_time }')
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

# history_holds STATE GTID: a server whose @@gtid_binlog_state is STATE holds
# GTID D-S-N (its last transaction from D-S reaches N).
history_holds() {
  local entry
  for entry in ${1//,/ }; do
    if [ "${entry%-*}" = "${2%-*}" ] && [ "$(gtid_seq "$entry")" -ge "$(gtid_seq "$2")" ]; then return 0; fi
  done
  return 1
}

# common_seq DIR STATE NEWEST: the last sequence number that the archive,
# whose newest transaction is NEWEST, and a server whose @@gtid_binlog_state
# is STATE both hold. Replication is in order: the server holds the archive's
# history up to the last transaction of NEWEST's writer that it holds, and up
# to the end of every archived log whose last transaction it holds.
common_seq() {
  local docs line last entry common=0
  for entry in ${2//,/ }; do
    if [ "${entry%-*}" = "${3%-*}" ]; then common=$(gtid_seq "$entry"); fi
  done
  docs=$(store cat --filter '- archived-until.json' --filter '+ *.json' --filter '- **' "$1/")
  while IFS= read -r line; do
    last=$(json_field "$line" last_gtid)
    if [ -n "$last" ] && history_holds "$2" "$last" && [ "$(gtid_seq "$last")" -gt "$common" ]; then
      common=$(gtid_seq "$last")
    fi
  done <<<"$docs"
  printf '%s' "$common"
}

# record_divergence EPOCH COMMON ARCHIVED_GTID STATE
record_divergence() {
  log "WARNING: the archive holds transactions up to $3 that this server's history ($4) lacks: the histories diverge after sequence number $2; archiving this server's own from there (epoch $1); point-in-time restores do not cross it"
  printf '{"timeline": "%s", "epoch": %s, "after_seq": %s, "pod": "%s", "time": %s, "archived_gtid": "%s", "server_state": "%s"}\n' \
    "$(timeline)" "$1" "$2" "$HOSTNAME" "$(date -u +%s)" "$3" "$4" | store rcat "$(store_root)/$(timeline)/divergences/$1.json"
}

upload_binlog() {
  local dir=$1 epoch=$2 file=$3 size=$4 first=$5 last=$6 first_time=$7 last_time=$8 name sha timeline_id
  name=$(binlog_object_name "$first" "$last" "$HOSTNAME" "$file")
  sha=$(sha256sum "$DATADIR/$file" | cut -d' ' -f1)
  store copyto "$DATADIR/$file" "$dir/$name"
  timeline_id=$(timeline)
  printf '{"timeline": "%s", "epoch": %s, "object": "binlogs/%s", "pod": "%s", "file": "%s", "first_gtid": "%s", "last_gtid": "%s", "first_time": %s, "last_time": %s, "size": %s, "sha256": "%s"}\n' \
    "$timeline_id" "$epoch" "$name" "$HOSTNAME" "$file" "$first" "$last" "$first_time" "$last_time" "$size" "$sha" \
    | store rcat "$dir/$name.json"
  log "archived $file ($first..$last)"
}

archive_round() {
  # A writable pod the record does not name (a thawed old primary) archives nothing.
  acting_primary && is_primary || return 0
  local dir epoch marker marker_epoch newest state started position domains archived entry file size range first last first_time last_time
  dir=$(store_root)/$(timeline)/binlogs
  epoch=$(recorded_epoch)
  marker=$(archive_marker "$dir")
  marker_epoch=$(json_field "$marker" epoch)
  if [ "$epoch" -lt "${marker_epoch:-0}" ]; then
    log "WARNING: the archive is at epoch $marker_epoch and this pod's record at $epoch: archiving once the record here is current"
    return 0
  fi
  started=$(date -u +%s)
  position=$(sql -N -e 'SELECT @@gtid_binlog_pos')
  domains=$(gtid_domains "$position")
  # The archive's order, its gaps and divergences are one domain's sequence
  # numbers: nothing more is archived, and the marker stays where it is.
  [[ $domains != *" "* ]] || die "the binary logs hold transactions of several GTID domains ($domains, at $position): nothing more is archived until one is left (README, backup limits)"
  if [ "$position" != "$(cat "$FLUSHED_AT" 2>/dev/null)" ]; then
    sql -e 'FLUSH BINARY LOGS'
    printf '%s' "$position" > "$FLUSHED_AT"
  fi
  archived=$(archived_max_seq "$dir" "$marker")
  newest=$(json_field "$marker" gtid)
  state=$(sql -N -e 'SELECT @@gtid_binlog_state')
  if [ -n "$newest" ] && ! history_holds "$state" "$newest"; then
    if [ "$epoch" -gt "${marker_epoch:-0}" ]; then
      archived=$(common_seq "$dir" "$state" "$newest")
      record_divergence "$epoch" "$archived" "$newest" "$state"
    else
      log "WARNING: the archive holds transactions up to $newest that this server's history ($state) lacks, at this pod's own epoch $epoch: archiving what follows them"
    fi
  fi
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
    upload_binlog "$dir" "$epoch" "$file" "$size" "$first" "$last" "$first_time" "$last_time"
    archived=$(gtid_seq "$last")
  done
  printf '{"timeline": "%s", "epoch": %s, "time": %s, "gtid": "%s", "pod": "%s"}\n' "$(timeline)" "$epoch" "$started" "$position" "$HOSTNAME" \
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
