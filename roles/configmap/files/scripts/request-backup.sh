#!/usr/bin/env bash
# The backup Job's container (backup.yml, or the CronJob of
# mariadb_backup_schedule): ask a healthy replica to stream a backup to the
# object store, over the clone port, where the clone token authenticates the
# request (TLS when the cluster uses it; ask_pods in common.sh chooses the
# pod). Prints the donor's progress; the last line is "BACKUP OK <manifest>".
#   env: REPLICAS, BACKUP_KEEP, BACKUP_THROTTLE
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

main() {
  local id reply=/tmp/reply
  id=$(date -u +%Y%m%dT%H%M%SZ)
  ask_pods "backup $id $BACKUP_KEEP ${BACKUP_THROTTLE:-0}" "$reply" "the backup"
  [[ $(tail -n 1 "$reply") == "BACKUP OK "* ]] || die "$ASKED_POD could not take the backup"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
