#!/usr/bin/env bash
# Loads a renewed certificate into the running server, without a restart.
#   bash tls.sh EXPECTED_SHA256   the tls role, through the exec API in each
#                                 pod's sidecar once the Secret changed. Exit
#                                 3: the mounted Secret is not the expected
#                                 one yet (the kubelet refreshes it a little
#                                 later); the caller retries. Idempotent.
#   bash tls.sh watch             the sidecar: a Secret renewed without a
#                                 playbook (cert-manager) is loaded within
#                                 the kubelet's sync and WATCH_EVERY seconds.
# New connections (clients, replicas, clones) get the new certificate: the
# server's after FLUSH SSL, the clone port's once its listener restarted
# (the sidecar's loop starts it again within a second; a clone retries).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WATCH_EVERY=10

mounted() { mounted_checksum "$TLS_DIR" ca.crt tls.crt tls.key; }

# LOCAL: a FLUSH is binary-logged otherwise, and on a replica that would be
# a transaction of its own (errant). Clones under way keep their connection.
reload() {
  sql -e 'FLUSH LOCAL SSL'
  if [ -s "$CLONE_LISTENER_PID" ]; then kill -TERM "$(<"$CLONE_LISTENER_PID")" 2>/dev/null || true; fi
}

watch() {
  local loaded current
  loaded=$(mounted) || loaded=
  while sleep "$WATCH_EVERY"; do
    current=$(mounted 2>/dev/null) || continue
    if [ "$current" != "$loaded" ] && reload; then
      loaded=$current
      log "certificate reloaded: the mounted Secret changed"
    fi
  done
}

main() {
  case ${1:-}/$# in
    watch/1) watch ;;
    */1)
      local actual
      actual=$(mounted)
      if [ "$actual" != "$1" ]; then
        log "the mounted certificate has checksum $actual, not $1: the Secret is not refreshed in this pod yet"
        exit 3
      fi
      reload
      log "certificate reloaded" ;;
    *) die "usage: tls.sh EXPECTED_SHA256 | watch" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
