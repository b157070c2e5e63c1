#!/usr/bin/env bash
# Main container: initialise the primary's datadir when the cluster is new,
# then run mariadbd: writable on the recorded primary, read-only everywhere
# else. SIGTERM shuts it down cleanly.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
  until sql --socket="$init_socket" -e 'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "bootstrap server exited"
    sleep 1
  done
  # Accounts: root for users (no READ_ONLY ADMIN, so it cannot write on a
  # read-only replica), repl for replication, backup for mariadb-backup run
  # by hand. The local admin mysql@localhost (unix socket), which the pods'
  # scripts use, comes from install-db. Passwords go in on stdin.
  {
    cat <<SQL
CREATE USER root@'%';
GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION;
REVOKE READ_ONLY ADMIN ON *.* FROM root@'%';
REVOKE READ_ONLY ADMIN ON *.* FROM root@localhost;
CREATE USER repl@'%';
GRANT REPLICATION SLAVE ON *.* TO repl@'%';
CREATE USER backup@localhost;
GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO backup@localhost;
SQL
    account_passwords_sql
  } | sql --socket="$init_socket"
  kill -TERM "$pid"
  wait "$pid" || true
  move_into_datadir "$stage"
  log "datadir initialised"
}

if [ ! -d "$DATADIR/mysql" ]; then
  is_primary || die "no data in $DATADIR: the clone init container should have filled it (delete the pod to clone again)"
  # A new datadir here would be an empty primary that the replicas refuse
  # (error 1236) and that takes writes meant for the cluster's data.
  cluster_initialised && die "this pod is the recorded primary but its volume is empty while the cluster holds data: run failover.yml to promote the most advanced replica; this pod then rejoins as a replica"
  initialize_primary
fi
# The stall watch's mark, kept on the data volume from now on (role.sh
# promote and unfence remove it there).
if [ -e "$STALL_MARK" ]; then
  touch "$DATADIR/$FENCED_MARK"
  sync
  rm -f "$STALL_MARK"
fi
# A server whose replication is configured (master.info) was a replica when
# it stopped, and one role.sh isolate or the stall watch fenced was a
# primary its replicas lost, or that stood still long enough to be replaced:
# either starts read-only even when the record names it, since a record
# refreshed late would make a demoted primary writable again (role.sh
# promote removes both).
read_only=ON semi_sync=OFF role=SLAVE
if is_primary && [ ! -e "$DATADIR/master.info" ] && [ ! -e "$DATADIR/$FENCED_MARK" ]; then
  read_only=OFF role=MASTER
  if semi_sync_wanted; then semi_sync=ON; fi
fi
# As a replica (init-rpl-role SLAVE), crash recovery rolls back the
# transactions that were written to the binary log but never committed,
# those a primary was still waiting to have acknowledged, and truncates the
# log before them: an old primary then rejoins as a prefix of the new one.
log "starting mariadbd, read_only $read_only, semi-sync primary side $semi_sync, role $role"
# The primary's guard while the autopilot runs (self-fence.sh): in this
# container, since isolating the server may mean killing mariadbd, which
# only this container's processes can signal. Its stall watch is started
# first: a frozen pod's processes thaw in the order they started, so the
# watch runs again before any thread of mariadbd and can kill it before it
# answers anyone. It learns mariadbd's PID on its pipe.
fence=$(dirname "${BASH_SOURCE[0]}")/self-fence.sh
exec {watch}> >(exec bash "$fence" watch)
# A child, not PID 1: the kernel ignores SIGKILL sent to a PID namespace's
# init from inside it, and role.sh isolate must be able to crash the server.
mariadbd --defaults-file="$CNF" --read-only="$read_only" --rpl-semi-sync-master-enabled="$semi_sync" \
  --init-rpl-role="$role" {watch}>&- &
server=$!
trap '' PIPE
echo "$server" 1>&"$watch" 2>/dev/null || log "the stall watch is gone: a frozen pod is left to the guard and the autopilot"
trap - PIPE
bash "$fence" guard "$watch" &
guard=$!
# The guard alone writes to the watch now: gone, the watch stops with it.
exec {watch}>&-
trap 'kill -TERM "$server" 2>/dev/null' TERM INT
# wait returns early when a signal is trapped: wait again until it is gone.
# At least once: bash may have reaped a server that exited at once, and
# only wait still knows its status.
while :; do
  wait "$server" && status=0 || status=$?
  kill -0 "$server" 2>/dev/null || break
done
kill "$guard" 2>/dev/null || true
exit "$status"
