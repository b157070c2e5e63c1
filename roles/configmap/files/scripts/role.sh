#!/usr/bin/env bash
# Changes this server's role; switchover.yml and failover.yml run it through
# the exec API in the server container, in the order the move_primary module decides:
#   bash role.sh fence           read-only, clients disconnected; prints the
#                                final GTID position (gtid_binlog_pos)
#   bash role.sh isolate         a primary its replicas lost, or an old one
#                                back after a failover (the autopilot): it
#                                starts read-only from now on; with commits
#                                waiting for an acknowledgement no replica
#                                can send, the server is crashed, so they are
#                                rolled back, never acknowledged
#   bash role.sh crash [UNTIL]   a primary that answers nobody (frozen) once
#                                the autopilot fails it over: without SQL, it
#                                starts read-only from now on and is killed,
#                                so a thaw never makes it writable again; not
#                                after UNTIL (seconds since the epoch): an
#                                exec that waited for its whole pod to thaw
#                                would kill a server that its guard fenced
#                                and the autopilot pointed at the new primary
#   bash role.sh mark            only the mark crash leaves: run in the sidecar
#                                when the server's container answers no exec
#                                (restarting), so it starts read-only
#   bash role.sh unfence         writable again (a switchover rolled back, or
#                                a primary that fenced itself has its
#                                replicas back: the autopilot)
#   bash role.sh hand-over N     the preStop hook while the autopilot runs: a
#                                writable server, or one replicas still fetch
#                                from, waits up to N seconds for the autopilot
#                                to move the primary away (or fence it)
#   bash role.sh promote         stop replicating, writable
#   bash role.sh replicate N     read-only replica of ordinal N
# The mounted record may be a few seconds old when this runs: the new
# primary is passed explicitly.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Client sessions: everything but replication, the server's own threads and
# the local admin (this script, the probes).
CLIENT_SESSIONS="SELECT id FROM information_schema.PROCESSLIST WHERE id <> CONNECTION_ID()
  AND user NOT IN ('system user', 'event_scheduler', 'unauthenticated user', 'mysql', 'repl')
  AND command NOT IN ('Binlog Dump', 'Daemon')"

fence() {
  # Waits for commits in flight (at most 10 s: the caller's exec times out
  # later, so this never lands after a rollback); later commits fail, so every
  # write that was acknowledged is in the position printed below.
  sql -e 'SET SESSION lock_wait_timeout = 10; SET GLOBAL read_only = ON'
  # Pooled connections would keep hitting a read-only server: closed, they
  # reconnect through the write Service to the new primary.
  sql -N -e "$CLIENT_SESSIONS" | sed 's/.*/KILL CONNECTION &;/' | sql --force 2>/dev/null || true
  sql -N -e 'SELECT @@gtid_binlog_pos'
}

# Commits waiting for a semi-sync acknowledgement, from any session.
UNACKNOWLEDGED="SELECT id FROM information_schema.PROCESSLIST WHERE state LIKE 'Waiting for semi-sync ACK%'"

isolate() {
  touch "$DATADIR/$FENCED_MARK"
  sync
  local waiting pid
  waiting=$(sql -N -e "$UNACKNOWLEDGED" | wc -l)
  if [ "$waiting" -gt 0 ]; then
    # They are in the binary log but not committed: killed, or fenced, they
    # would commit and make this server errant. Crashed, it restarts as a
    # replica (server.sh), whose recovery rolls them back.
    pid=$(<"$(sql -N -e 'SELECT @@pid_file')")
    if [ "$pid" -ne 1 ]; then
      log "crashing mariadbd: $waiting commits wait for an acknowledgement no replica can send"
      # Once this exec has answered: the crash ends the container's every process.
      (sleep 1; kill -KILL "$pid") >/dev/null 2>&1 &
      printf 'crashing\n'
      return
    fi
    # A pod started before this release runs mariadbd as PID 1, which
    # ignores the signal. The waiting sessions are killed so the fence does
    # not wait for them: never acknowledged, they stay in its history.
    log "mariadbd is PID 1 of its container: fencing instead of crashing it"
    sql -N -e "$UNACKNOWLEDGED" | sed 's/.*/KILL CONNECTION &;/' | sql --force 2>/dev/null || true
  fi
  fence
}

# The container's processes (the tests point it elsewhere).
PROC_ROOT=/proc

crash() {
  if [ -n "${1:-}" ] && [ "$(date +%s)" -gt "$1" ]; then
    log "asked to crash mariadbd until $1, $(($(date +%s) - $1)) s ago (its pod was frozen): left to its guard"
    return
  fi
  touch "$DATADIR/$FENCED_MARK"
  local proc pid comm
  for proc in "$PROC_ROOT"/[0-9]*; do
    comm=$(cat "$proc/comm" 2>/dev/null) || continue
    [ "$comm" = mariadbd ] || continue
    pid=${proc##*/}
    if [ "$pid" -eq 1 ]; then
      log "mariadbd is PID 1 of its container: it cannot be crashed, only marked to start read-only"
      return
    fi
    log "crashing mariadbd: it answers nobody, and another server takes over"
    # SIGKILL ends a stopped process too; once this exec has answered.
    (sleep 1; kill -KILL "$pid") >/dev/null 2>&1 &
    printf 'crashing\n'
    return
  done
  log "no mariadbd runs: marked to start read-only"
}

HANDED_OVER="SELECT @@global.read_only AND NOT EXISTS (SELECT 1 FROM information_schema.PROCESSLIST
  WHERE command LIKE 'Binlog Dump%')"

main() {
  case ${1:-}/$# in
    fence/1) fence ;;
    isolate/1) isolate ;;
    crash/1 | crash/2) crash "${2:-}" ;;
    mark/1) touch "$DATADIR/$FENCED_MARK"; log "marked to start read-only" ;;
    unfence/1)
      # A switchover rolled back, or a primary that fenced itself (its
      # replicas are back): it starts writable again, as the primary.
      rm -f "$DATADIR/$FENCED_MARK"
      if semi_sync_wanted; then sql -e 'SET GLOBAL rpl_semi_sync_master_enabled = ON'; fi
      sql -e 'SET GLOBAL read_only = OFF'
      log "writable again" ;;
    hand-over/2)
      [[ $2 =~ ^[0-9]+$ ]] || die "hand-over needs seconds, got '$2'"
      # Done once fenced and no replica fetches from it any more: the new
      # primary has fetched the last transaction before its promotion.
      for ((i = 0; i < $2 * 2; i++)); do
        [ "$(sql -N -e "$HANDED_OVER" 2>/dev/null)" != 1 ] || break
        sleep 0.5
      done ;;
    promote/1)
      # RESET SLAVE ALL removes master.info: server.sh starts it writable.
      sql -e 'STOP SLAVE; RESET SLAVE ALL'
      rm -f "$DATADIR/$FENCED_MARK"
      if semi_sync_wanted; then sql -e 'SET GLOBAL rpl_semi_sync_master_enabled = ON'; fi
      sql -e 'SET GLOBAL read_only = OFF'
      log "promoted to primary" ;;
    replicate/2)
      [[ $2 =~ ^[0-9]+$ ]] || die "replicate needs an ordinal, got '$2'"
      if [ -z "$(sql -e 'SHOW SLAVE STATUS')" ]; then
        continue_after_own_history
      else
        sql -e 'SET GLOBAL read_only = ON; SET GLOBAL rpl_semi_sync_master_enabled = OFF'
      fi
      replicate_from_primary "$2"
      log "replicating from $(pod_host "$2")" ;;
    *) die "usage: role.sh fence | isolate | crash [UNTIL] | mark | unfence | hand-over SECONDS | promote | replicate ORDINAL" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
