#!/usr/bin/env bash
# After a backup (backup-to-store.sh), in the donor's sidecar:
#   retention.sh KEEP
# keeps this cluster's newest KEEP complete backups (complete_backups in
# store.sh: a damaged one is never counted), across its timelines,
# and the archived binary logs they need, and deletes the rest: older
# backups, incomplete or damaged ones older than the oldest kept, and the
# binary logs whose transactions every kept backup of their timeline holds
# already. Prints what it deleted, one line each.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

main() {
  local keep=$1 root complete line id tl gtid dir name last oldest
  root=$(store_root)
  # An assignment, not a process substitution: a failed read stops here,
  # before a timeline whose manifests went unread loses its logs.
  complete=$(complete_backups "$root")
  local -a backups=() kept
  [ -z "$complete" ] || mapfile -t backups <<<"$complete"
  [ "${#backups[@]}" -gt 0 ] || return 0
  kept=("${backups[@]:0:keep}")
  oldest=${kept[-1]%% *}
  local -A keep_id=() timeline_floor=()
  for line in "${kept[@]}"; do
    read -r id tl gtid <<<"$line"
    keep_id[$id]=1
    if [ -z "${timeline_floor[$tl]:-}" ] || [ "$gtid" -lt "${timeline_floor[$tl]}" ]; then timeline_floor[$tl]=$gtid; fi
  done
  while IFS= read -r dir; do
    [[ $dir =~ ^([a-z0-9]+)/backups/([0-9]{8}T[0-9]{6}Z)/$ ]] || continue
    id=${BASH_REMATCH[2]}
    [ -n "${keep_id[$id]:-}" ] && continue
    # Incomplete or damaged and newer than the oldest kept: a backup still
    # running, or one left for the user to look at.
    if ! printf '%s\n' "${backups[@]}" | grep -q "^$id "; then [[ $id < $oldest ]] || continue; fi
    store purge "$root/$dir"
    echo "deleted backup $id"
  done < <(store lsf --dirs-only -R --max-depth 3 "$root")
  while IFS= read -r name; do
    [[ $name =~ ^([a-z0-9]+)/binlogs/(.*)$ ]] || continue
    tl=${BASH_REMATCH[1]}
    last=$(binlog_last_seq "${BASH_REMATCH[2]}") || continue
    # Kept: a binary log that a kept backup of its timeline still needs.
    if [ -n "${timeline_floor[$tl]:-}" ] && [ "$last" -gt "${timeline_floor[$tl]}" ]; then continue; fi
    store deletefile "$root/$name"
    echo "deleted binary log $name"
  done < <(store lsf --files-only -R "$root" | grep '/binlogs/')
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
