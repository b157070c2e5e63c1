#!/bin/bash
# Readiness of the server container: the primary must answer queries; a
# replica must also have its SQL thread running and its IO thread running,
# or reconnecting after a network error (the primary restarting), so a
# broken replica never serves reads or donates a clone.
. "$(dirname "$0")/common.sh"

if is_primary; then
  sql -e 'SELECT 1' >/dev/null
  exit
fi
status=$(sql -e 'SHOW SLAVE STATUS\G')
field() { awk -F': ' -v name="$1" '{ key = $1; sub(/^ +/, "", key) } key == name { print $2 }' <<<"$status"; }
sql_thread=$(field Slave_SQL_Running)
io_thread=$(field Slave_IO_Running)
io_errno=$(field Last_IO_Errno)
[ "$sql_thread" = Yes ] || { echo "replication SQL thread: ${sql_thread:-not configured}"; exit 1; }
case $io_thread/$io_errno in
  Yes/*) ;;
  # 0: not tried yet; 2003, 2005, 2006, 2013: the primary is unreachable or restarting.
  Connecting/0 | Connecting/2003 | Connecting/2005 | Connecting/2006 | Connecting/2013) ;;
  *) echo "replication IO thread: $io_thread (error $io_errno: $(field Last_IO_Error))"; exit 1 ;;
esac
