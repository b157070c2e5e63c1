#!/usr/bin/env bash
# Applies the mounted credentials Secret to the running servers, each its own
# accounts (never binary-logged). The Ansible role runs it through the exec
# API in each pod's sidecar, the primary first:
#   bash credentials.sh EXPECTED_SHA256
# Exit 3: the mounted Secret is not the expected one yet (the kubelet
# refreshes it a little later); the caller retries. Idempotent.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The checksum of the mounted passwords (common.sh), as the Ansible side
# computes it from the Secret.
credentials_checksum() {
  mounted_checksum "$CREDENTIALS" root-password replication-password backup-password
}

main() {
  [ $# -eq 1 ] || die "usage: credentials.sh EXPECTED_SHA256"
  local actual
  actual=$(credentials_checksum)
  if [ "$actual" != "$1" ]; then
    log "the mounted credentials have checksum $actual, not $1: the Secret is not refreshed in this pod yet"
    exit 3
  fi
  if acting_primary; then
    set_account_passwords
    log "account passwords set"
  else
    # Until the sidecar has started replication from a fresh clone's
    # position, re-pointing here would lose that position.
    if [ -e "$DATADIR/clone-position" ] || [ -z "$(sql -e 'SHOW SLAVE STATUS')" ]; then
      die "replication is not set up yet (the sidecar is starting); try again"
    fi
    set_account_passwords
    replicate_from_primary
    log "account and replication passwords set"
  fi
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
