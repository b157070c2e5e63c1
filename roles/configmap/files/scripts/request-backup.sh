#!/usr/bin/env bash
# The backup Job's container (backup.yml, or the CronJob of
# mariadb_backup_schedule): ask a healthy replica to stream a backup to the
# object store, over the clone port, where the clone token authenticates the
# request (TLS when the cluster uses it). Replicas are asked highest ordinal
# first, the primary only when it is the only pod; a donor that is not fit
# to serve (serve-backup.sh) answers nothing and the next one is asked.
# Prints the donor's progress; the last line is "BACKUP OK <manifest>".
#   env: REPLICAS, BACKUP_KEEP
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

main() {
  local id token primary ordinal donor round reply=/tmp/reply candidates=()
  id=$(date -u +%Y%m%dT%H%M%SZ)
  read_clone_token token
  primary=$(recorded_primary)
  for ((ordinal = REPLICAS - 1; ordinal >= 0; ordinal--)); do
    [ "$ordinal" -eq "$primary" ] || candidates+=("$ordinal")
  done
  [ "${#candidates[@]}" -gt 0 ] || candidates=("$primary")
  # Three rounds: a network policy controller may admit this new pod's
  # address some seconds after it starts.
  for round in 1 2 3; do
    for ordinal in "${candidates[@]}"; do
      donor=$(pod_host "$ordinal")
      log "asking $donor for backup $id"
      printf 'backup %s %s\n%s\n' "$id" "$BACKUP_KEEP" "$token" \
        | socat -T "$CLONE_IDLE_TIMEOUT" -t 1 STDIO,ignoreeof "$(clone_connect_address "$donor"),connect-timeout=10,$CLONE_KEEPALIVE" \
        | tee "$reply" || true
      case $(tail -n 1 "$reply") in
        "BACKUP OK "*) exit 0 ;;
        "BACKUP FAILED "*) die "$donor could not take the backup" ;;
        "BACKUP DECLINED "*) log "$donor declined the backup: $(tail -n 1 "$reply" | cut -d' ' -f3-)" ;;
        *) log "$donor did not take the backup (not fit to serve, unreachable, or gone)" ;;
      esac
    done
    [ "$round" = 3 ] || sleep 10
  done
  die "no pod took the backup: none of $(for o in "${candidates[@]}"; do pod_host "$o"; printf ' '; done)is fit to serve"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
