#!/usr/bin/env bash
# The catalog Job's container (backup.yml -e list=true, restore.yml): what
# the object store holds for a cluster, read by the backup_catalog module:
#   catalog.sh NAMESPACE/NAME
# OBJECTS <rclone lsjson of every object>, then MANIFEST <json> per complete
# backup, BINLOG <json> per archived binary log, ARCHIVED <json> per
# timeline's archived-until marker, DIVERGED <json> per divergence.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

# catalog NAMESPACE/NAME: the lines above (verify-backup.sh runs it too).
catalog() {
  local root
  store_configured || die "no object store is configured (mariadb_backup_store_secret)"
  root=$(store_root "$1")
  printf 'OBJECTS %s\n' "$(store lsjson -R --files-only --no-mimetype --no-modtime "$root" | tr -d '\n')"
  store cat --include '*/backups/*/manifest.json' "$root" | sed 's/^/MANIFEST /'
  store cat --filter '- archived-until.json' --filter '+ */binlogs/*.json' --filter '- **' "$root" | sed 's/^/BINLOG /'
  store cat --include '*/binlogs/archived-until.json' "$root" | sed 's/^/ARCHIVED /'
  store cat --include '*/divergences/*.json' "$root" | sed 's/^/DIVERGED /'
}

[ "${BASH_SOURCE[0]}" != "$0" ] || catalog "$@"
