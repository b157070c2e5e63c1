#!/usr/bin/env bash
# Readiness of the server container: a primary (writable, replicating from
# nobody) must answer queries; a replica must also have its SQL thread
# running and its IO thread running, or reconnecting after a network error
# (the primary restarting or gone: a replica stays Ready, a candidate for
# failover.yml), so a broken or fenced replica never serves reads or donates
# a clone. The server's state decides, not the record: a replica promoted by
# switchover.yml is Ready at once, before its mounted record is refreshed.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# status_field STATUS NAME: NAME's value in SHOW SLAVE STATUS\G output.
status_field() {
  awk -v name="$2" '{ key = $0; sub(/:.*/, "", key); sub(/^ +/, "", key) } key == name { sub(/^[^:]*: ?/, ""); print }' <<<"$1"
}

# replica_ready STATUS: succeed if SHOW SLAVE STATUS\G output STATUS is a
# replica fit to serve, otherwise say why not and fail.
replica_ready() {
  local sql_thread io_thread io_errno
  sql_thread=$(status_field "$1" Slave_SQL_Running)
  io_thread=$(status_field "$1" Slave_IO_Running)
  io_errno=$(status_field "$1" Last_IO_Errno)
  [ -n "$sql_thread" ] || { echo "replication is not configured"; return 1; }
  if [ "$sql_thread" != Yes ]; then
    echo "replication SQL thread: $sql_thread (error $(status_field "$1" Last_SQL_Errno): $(status_field "$1" Last_SQL_Error))"
    return 1
  fi
  case $io_thread/$io_errno in
    Yes/*) ;;
    # 0: not tried yet; 2003, 2005, 2006, 2013: the primary is unreachable or restarting.
    Connecting/0 | Connecting/2003 | Connecting/2005 | Connecting/2006 | Connecting/2013) ;;
    *) echo "replication IO thread: $io_thread (error $io_errno: $(status_field "$1" Last_IO_Error))"; return 1 ;;
  esac
}

main() {
  local status
  status=$(sql -e 'SHOW SLAVE STATUS\G')
  if [ -z "$status" ] && writable; then
    return
  fi
  replica_ready "$status"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
