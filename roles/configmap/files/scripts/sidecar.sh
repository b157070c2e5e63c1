#!/bin/bash
# Sidecar: once the server answers, bring system tables up to date after a
# version step, point a freshly cloned replica at the primary from the cloned
# GTID position, then serve backups to the next ordinal on the clone port.
. "$(dirname "$0")/common.sh"

BACKUP_CNF=/tmp/backup.cnf

write_backup_credentials() {
  umask 077
  cat > "$BACKUP_CNF" <<CNF
!include $CNF
[client]
user = backup
password = $BACKUP_PASSWORD
socket = $SOCKET
CNF
}

upgrade_system_tables() {
  # mariadb-upgrade records the version it ran for in mysql_upgrade_info and
  # does nothing on later starts of the same version. It does not binlog.
  mariadb-upgrade --defaults-file="$CNF" --protocol=socket --user=mysql --silent >/dev/null \
    || die "mariadb-upgrade failed"
}

# Every start re-asserts host, user and password (a changed Secret takes
# effect on the next restart); a fresh clone first sets the GTID position it
# was taken at. Safe to repeat after a crash at any point.
configure_replication() {
  if [ -z "$(sql -e 'SHOW SLAVE STATUS')" ]; then
    [ -f "$DATADIR/clone-position" ] || die "replica has data but neither a replication setup nor a clone position"
    local position
    position=$(cat "$DATADIR/clone-position")
    sql -e "SET GLOBAL gtid_slave_pos = '$(sql_quote "$position")'"
    log "fresh clone: replication starts at GTID '$position'"
  fi
  sql <<SQL
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST = '$PRIMARY_HOST', MASTER_PORT = 3306, MASTER_USER = 'repl',
  MASTER_PASSWORD = '$(sql_quote "$REPLICATION_PASSWORD")', MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5;
START SLAVE;
SQL
  rm -f "$DATADIR/clone-position"
  log "replicating from $PRIMARY_HOST"
}

serve_backups() {
  local pid
  trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
  log "serving backups on port $CLONE_PORT"
  # bash stays PID 1 and restarts the listener if it ever exits.
  while true; do
    # -t: after the peer has sent its token and half-closed, keep the
    # connection until the backup has been streamed (socat's default 0.5 s
    # would cut every stream longer than that).
    socat -t 86400 "TCP-LISTEN:$CLONE_PORT,reuseaddr,fork" "EXEC:$(dirname "$0")/serve-backup.sh" &
    pid=$!
    wait "$pid" || true
    log "listener exited; restarting"
    sleep 1
  done
}

write_backup_credentials
wait_for_server
upgrade_system_tables
is_primary || configure_replication
serve_backups
