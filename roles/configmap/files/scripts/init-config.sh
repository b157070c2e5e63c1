#!/bin/bash
# Init container: compose this pod's server config from its ordinal.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

role=replica
is_primary && role=primary
{
  cat "$CONFIG_SOURCE/server.cnf"
  echo
  cat "$CONFIG_SOURCE/$role.cnf"
  printf '\n[mysqld]\nserver-id = %d\nreport-host = %s.%s\n' $((100 + ORDINAL)) "$HOSTNAME" "$SERVICE_NAME"
} > "$CNF"
log "pod $HOSTNAME: role $role, server-id $((100 + ORDINAL))"
