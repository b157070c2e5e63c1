#!/usr/bin/env bash
# After a backup (backup-to-store.sh), in the donor's sidecar:
#   retention.sh KEEP
# keeps this cluster's newest KEEP complete backups (complete_backups in
# store.sh: a damaged one is never counted) and the archived binary logs
# they need, and deletes the rest: older backups, incomplete or damaged ones
# older than the oldest kept, and the binary logs whose transactions every
# kept backup holds already. Prints what it deleted, one line each.
# Only this cluster's timeline is touched: another cluster writing to the
# same store path (staging and production, a DR region), or the cluster this
# one was restored from, keeps every object it wrote.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

main() {
  local keep=$1 root own complete line id tl gtid dir name last oldest floor=
  root=$(store_root)
  own=$(timeline)
  # An assignment, not a process substitution: a failed read stops here,
  # before logs whose backups' manifests went unread are deleted.
  complete=$(complete_backups "$root")
  local -a backups=() kept
  while read -r id tl gtid; do
    [ "$tl" != "$own" ] || backups+=("$id $gtid")
  done <<<"$complete"
  [ "${#backups[@]}" -gt 0 ] || return 0
  kept=("${backups[@]:0:keep}")
  oldest=${kept[-1]%% *}
  local -A keep_id=()
  for line in "${kept[@]}"; do
    read -r id gtid <<<"$line"
    keep_id[$id]=1
    if [ -z "$floor" ] || [ "$gtid" -lt "$floor" ]; then floor=$gtid; fi
  done
  while IFS= read -r dir; do
    [[ $dir =~ ^backups/([0-9]{8}T[0-9]{6}Z(-[a-z0-9]+)?)/$ ]] || continue
    id=${BASH_REMATCH[1]}
    [ -n "${keep_id[$id]:-}" ] && continue
    # Incomplete or damaged and newer than the oldest kept: a backup still
    # running, or one left for the user to look at.
    if ! printf '%s\n' "${backups[@]}" | grep -q "^$id "; then [[ $id < $oldest ]] || continue; fi
    store purge "$root/$own/$dir"
    echo "deleted backup $id"
  done < <(store lsf --dirs-only -R --max-depth 2 "$root/$own")
  while IFS= read -r name; do
    last=$(binlog_last_seq "$name") || continue
    # Kept: a binary log that a kept backup still needs.
    [ "$last" -le "$floor" ] || continue
    store deletefile "$root/$own/binlogs/$name"
    echo "deleted binary log $own/binlogs/$name"
  done < <(store lsf --files-only "$root/$own/binlogs")
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
