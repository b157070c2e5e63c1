#!/bin/bash
# Readiness of the server container: the primary must answer queries; a
# replica must also have its SQL thread running and its IO thread running
# or reconnecting, so a broken replica never serves reads or donates a clone.
. "$(dirname "$0")/common.sh"

if is_primary; then
  sql -e 'SELECT 1' >/dev/null
  exit
fi
status=$(sql -e 'SHOW SLAVE STATUS\G')
io=$(awk -F': ' '$1 ~ /^ *Slave_IO_Running$/ {print $2}' <<<"$status")
sql_thread=$(awk -F': ' '$1 ~ /^ *Slave_SQL_Running$/ {print $2}' <<<"$status")
[ "$sql_thread" = Yes ] || { echo "replication SQL thread: ${sql_thread:-not configured}"; exit 1; }
case $io in
  Yes | Connecting) ;;
  *) echo "replication IO thread: ${io:-not configured}"; exit 1 ;;
esac
