# Sourced by every pod script: paths, identity and helpers.
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
set -euo pipefail

DATADIR=/var/lib/mysql
CNF=/etc/mysql/cluster/my.cnf
CONFIG_SOURCE=/etc/mysql/cluster-config
SOCKET=/run/mysqld/mysqld.sock
CLONE_PORT=3307
ORDINAL=${HOSTNAME##*-}
PRIMARY_HOST=$STATEFULSET_NAME-0.$SERVICE_NAME
# Remnants of an interrupted clone or initialisation; never real data.
STAGE_PREFIX=.staging

log() { printf '[%s %s] %s\n' "$(date -u +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
is_primary() { [ "$ORDINAL" -eq 0 ]; }

# SQL as the local admin account: unix socket authentication as the OS user
# mysql, so no password is needed or exposed.
sql() { mariadb --defaults-file="$CNF" --protocol=socket --user=mysql --batch "$@"; }

# Quote a value for a single-quoted SQL string literal.
sql_quote() { local v=${1//\\/\\\\}; printf '%s' "${v//\'/\\\'}"; }

wait_for_server() {
  until sql -e 'SELECT 1' >/dev/null 2>&1; do sleep 1; done
}

# move_into_datadir DIR: rename DIR's entries into the datadir with mysql/
# last, so mysql/ existing means the data is complete.
move_into_datadir() {
  local dir=$1 entry
  for entry in "$dir"/* "$dir"/.[!.]*; do
    [ -e "$entry" ] || continue
    [ "${entry##*/}" = mysql ] && continue
    mv "$entry" "$DATADIR/"
  done
  mv "$dir/mysql" "$DATADIR/mysql"
  rmdir "$dir"
}

# Anything in a datadir without mysql/ is a remnant of an interrupted run.
clear_incomplete_datadir() {
  find "$DATADIR" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
}
