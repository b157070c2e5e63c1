#!/bin/bash
# Main container: initialise the primary's datadir on first start, then run
# mariadbd as PID 1 so SIGTERM shuts it down cleanly.
. "$(dirname "$0")/common.sh"

initialize_primary() {
  local stage=$DATADIR/$STAGE_PREFIX-init init_socket=/run/mysqld/init.sock pid
  clear_incomplete_datadir
  mkdir -p "$stage"
  log "initialising a new datadir"
  mariadb-install-db --defaults-file="$CNF" --datadir="$stage" --user=mysql \
    --auth-root-authentication-method=socket --skip-test-db >/dev/null
  mariadbd --defaults-file="$CNF" --datadir="$stage" --skip-networking --skip-log-bin \
    --socket="$init_socket" &
  pid=$!
  until mariadb --protocol=socket --socket="$init_socket" --user=mysql -e 'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "bootstrap server exited"
    sleep 1
  done
  # Accounts: root for users (no READ_ONLY ADMIN, so it cannot write on a
  # read-only replica), repl for replication, backup for mariadb-backup.
  # The local admin mysql@localhost (unix socket) comes from install-db.
  mariadb --protocol=socket --socket="$init_socket" --user=mysql <<SQL
ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$(sql_quote "$ROOT_PASSWORD")');
CREATE USER root@'%' IDENTIFIED BY '$(sql_quote "$ROOT_PASSWORD")';
GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION;
REVOKE READ_ONLY ADMIN ON *.* FROM root@'%';
REVOKE READ_ONLY ADMIN ON *.* FROM root@localhost;
CREATE USER repl@'%' IDENTIFIED BY '$(sql_quote "$REPLICATION_PASSWORD")';
GRANT REPLICATION SLAVE ON *.* TO repl@'%';
CREATE USER backup@localhost IDENTIFIED BY '$(sql_quote "$BACKUP_PASSWORD")';
GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO backup@localhost;
SQL
  kill -TERM "$pid"
  wait "$pid" || true
  move_into_datadir "$stage"
  log "datadir initialised"
}

if [ ! -d "$DATADIR/mysql" ]; then
  is_primary || die "no data in $DATADIR: the clone init container should have filled it"
  initialize_primary
fi
exec mariadbd --defaults-file="$CNF"
