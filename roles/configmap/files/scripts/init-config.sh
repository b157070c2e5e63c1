#!/usr/bin/env bash
# Init container: compose this pod's server config from its ordinal. The role
# (read-only or not) is decided by server.sh at every start of the server.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

{
  cat "$CONFIG_SOURCE/server.cnf"
  printf '\n[mysqld]\nserver-id = %d\nreport-host = %s.%s\n' $((100 + ORDINAL)) "$HOSTNAME" "$SERVICE_NAME"
} > "$CNF"
log "pod $HOSTNAME: server-id $((100 + ORDINAL))"
