#!/usr/bin/env bash
# One clone-port connection: stream a backup only to a peer that sends the
# clone token first. stdin/stdout are the TCP connection; the log goes to
# the sidecar's stderr, the container log. A backup Job (request-backup.sh)
# sends "backup ID KEEP [THROTTLE]" before the token: the backup then goes to the
# object store (backup-to-store.sh) instead of the connection. A backup
# verification (verify-backup.sh) sends "checksums": it gets the tables'
# checksums and their GTID position (table-checksums.sh).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

peer=${SOCAT_PEERADDR:-unknown}
token=
read_clone_token token
IFS= read -r -t 10 received || exit 0
request=()
if [[ $received =~ ^backup\ ([0-9]{8}T[0-9]{6}Z)\ ([1-9][0-9]*)(\ ([0-9]+))?$ ]]; then
  request=(backup-to-store.sh "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]:-0}")
  IFS= read -r -t 10 received || exit 0
elif [ "$received" = checksums ]; then
  request=(table-checksums.sh)
  IFS= read -r -t 10 received || exit 0
fi
if [ "$received" != "$token" ]; then
  log "refused a clone request from $peer: wrong token"
  exit 0
fi
# A server that would not be Ready (its replication broken or refused, an
# errant former primary) never hands out its data.
if ! unfit=$(bash "$(dirname "${BASH_SOURCE[0]}")/probe.sh"); then
  log "refused a clone request from $peer: this server is not fit to donate ($unfit)"
  exit 0
fi
if [ "${#request[@]}" -gt 0 ]; then
  log "running ${request[*]} for $peer"
  exec bash "$(dirname "${BASH_SOURCE[0]}")/${request[0]}" "${request[@]:1}"
fi
log "streaming a backup to $peer"
# Connections can overlap: each has its own directory and log.
work=$(mktemp -d /tmp/backup.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
# As the local admin over the socket, like every other script: whoever can
# run mariadb-backup here reads the datadir anyway, so a password-protected
# account would only add a secret on disk.
mariadb-backup --defaults-file="$CNF" --protocol=socket --user=mysql --backup --slave-info \
  --stream=mbstream --target-dir="$work" --tmpdir="$work" --parallel="${BACKUP_PARALLEL:-2}" 2>"$work/log" &
backup=$!
# socat sends SIGTERM when the connection ends early (peer gone, or idle
# too long): stop the backup too, rather than leave it holding its locks.
trap 'log "the connection to $peer ended early: stopping the backup"; kill "$backup" 2>/dev/null' TERM
wait "$backup" || true  # returns early on SIGTERM; the next wait has the exit status
if wait "$backup"; then
  log "streamed a backup to $peer in $((SECONDS - started))s"
else
  status=$?
  log "ERROR: the backup for $peer failed after $((SECONDS - started))s (mariadb-backup exit $status); its last output:"
  tail -n 20 "$work/log" >&2
  exit "$status"
fi
