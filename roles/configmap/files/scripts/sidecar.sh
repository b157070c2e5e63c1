#!/usr/bin/env bash
# Sidecar: once the server answers, bring system tables up to date after a
# version step, point a replica at the recorded primary (a fresh clone from
# its cloned GTID position, a former primary after its own history), then
# serve backups to the next ordinal on the clone port, archive the binary
# logs while this pod acts as primary, follow the backup verifications, load
# a renewed certificate (tls.sh) and serve the pod's own metrics (metrics.sh,
# on METRICS_PORT).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

upgrade_system_tables() {
  # mariadb-upgrade records the version it ran for in mysql_upgrade_info and
  # does nothing on later starts of the same version. It does not binlog.
  mariadb-upgrade --defaults-file="$CNF" --protocol=socket --user=mysql --silent >/dev/null \
    || die "mariadb-upgrade failed"
}

# Every start re-asserts host, user and password (credentials.sh applies a
# changed Secret without a restart); a fresh clone first sets the GTID
# position it was taken at. Safe to repeat after a crash at any point.
configure_replication() {
  local file=$DATADIR/clone-position position
  if [ -z "$(sql -e 'SHOW SLAVE STATUS')" ]; then
    if [ -e "$file" ]; then
      position=$(<"$file")
      valid_position "$position" || die "$file holds '$position', not a GTID position: replication not started"
      if [ "$position" = empty ]; then
        log "fresh clone of a donor without transactions: replication starts at the primary's first binlog event"
        position=
      else
        log "fresh clone: replication starts at GTID $position"
      fi
      sql <<<"SET GLOBAL gtid_slave_pos = '$(sql_quote "$position")';"
    else
      # Data that never replicated: a former primary. If its history holds
      # a transaction the primary lacks, the primary refuses it (error 1236)
      # and it stays out of service until rebuild.yml re-clones it.
      log "former primary: replication continues after its own history"
      continue_after_own_history
    fi
  fi
  replicate_from_primary
  rm -f "$file"
  log "replicating from $(pod_host "$(recorded_primary)")"
}

serve_metrics() {
  while true; do
    socat "TCP-LISTEN:$METRICS_PORT,reuseaddr,fork,max-children=4" \
      "EXEC:bash $(dirname "${BASH_SOURCE[0]}")/metrics.sh respond" || true
    log "metrics listener exited; restarting"
    sleep 1
  done
}

# The timeline's newest verified backup, for the metrics: read once a minute.
follow_verifications() {
  while true; do
    if store cat "$(store_root)/$(timeline)/verified.json" > "$VERIFIED.new" 2>/dev/null; then
      mv "$VERIFIED.new" "$VERIFIED"
    fi
    sleep 60
  done
}

serve_backups() {
  local pid archiver='' verifications='' tls='' metrics=''
  # Uploads the binary logs while this pod acts as primary (backups configured).
  if store_configured; then
    bash "$(dirname "${BASH_SOURCE[0]}")/archive-binlogs.sh" &
    archiver=$!
    follow_verifications &
    verifications=$!
  fi
  # Loads a certificate renewed in the Secret without a restart.
  if tls_enabled; then
    bash "$(dirname "${BASH_SOURCE[0]}")/tls.sh" watch &
    tls=$!
  fi
  # The pod's own metrics (metrics.sh), beside the exporter's.
  if [ -n "${METRICS_PORT:-}" ]; then
    serve_metrics &
    metrics=$!
  fi
  trap 'kill "$pid" $archiver $verifications $tls $metrics 2>/dev/null; exit 0' TERM INT
  log "serving backups on port $CLONE_PORT"
  # bash stays PID 1 and restarts the listener if it ever exits.
  while true; do
    # A connection ends after the idle timeout without a byte: -T while
    # both directions are open, -t once the peer has sent its token and
    # ended its side. Two at a time (the next ordinal, and its retry while
    # a dead attempt times out); more wait in the listen queue.
    socat -T "$CLONE_IDLE_TIMEOUT" -t "$CLONE_IDLE_TIMEOUT" \
      "$(clone_listen_address),reuseaddr,fork,max-children=2,$CLONE_KEEPALIVE" \
      "EXEC:$(dirname "${BASH_SOURCE[0]}")/serve-backup.sh" &
    pid=$!
    printf '%s\n' "$pid" > "$CLONE_LISTENER_PID"
    wait "$pid" || true
    log "listener exited; restarting"
    sleep 1
  done
}

# Replication is set up only on a server that is neither acting as the
# primary nor named by the record: a record that the kubelet has not
# refreshed yet after a move must not demote the new primary or point the
# old one at itself.
set_up_replication() {
  if acting_primary; then
    is_primary || log "writable and replicating from nobody, while the mounted record names another pod: left as it is"
  elif is_primary; then
    log "the mounted record names this pod, but it runs as a replica: left replicating as it is"
  else
    configure_replication
  fi
}

# The metrics exporter runs as the OS user nobody (uid 65534 in the official
# and Debian images) and connects over the socket as nobody@localhost
# (unix_socket, no password): it reads status, variables, replication and
# threads; it can read no table and write nothing, a replica past its fence
# included. On every server, outside the binary log, like the passwords.
create_exporter_account() {
  sql <<'SQL'
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS nobody@localhost IDENTIFIED VIA unix_socket;
GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO nobody@localhost;
SQL
}

main() {
  wait_for_server
  upgrade_system_tables
  # A pod that missed a rotation (stopped, scaled in, cloned or restored from
  # older data) takes the mounted passwords.
  set_account_passwords
  create_exporter_account
  set_up_replication
  serve_backups
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
