#!/bin/bash
# One clone-port connection: stream a backup only to a peer that sends the
# clone token first. stdin/stdout are the TCP connection.
. "$(dirname "$0")/common.sh"

peer=${SOCAT_PEERADDR:-unknown}
IFS= read -r -t 10 token || exit 0
if [ "$token" != "$CLONE_TOKEN" ]; then
  log "refused a clone request from $peer: wrong token"
  exit 0
fi
log "streaming a backup to $peer"
exec mariadb-backup --defaults-file=/tmp/backup.cnf --backup --slave-info --stream=mbstream \
  --target-dir=/tmp --tmpdir=/tmp --parallel="${BACKUP_PARALLEL:-2}" 2>/tmp/last-backup.log
