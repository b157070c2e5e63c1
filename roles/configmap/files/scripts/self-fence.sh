#!/usr/bin/env bash
# While the autopilot runs, the primary guards itself, so a failover's
# safety does not depend on the autopilot reaching it (a node cut off from
# the API server, a watcher that is down). server.sh runs this beside
# mariadbd, in the server's container: role.sh isolate may have to kill it.
#
# Every second the pod acting as primary asks each other pod for a SQL
# answer. When the pods it cannot reach could be a quorum (more than half of
# the cluster), the other side may promote one of them: once that has lasted
# FENCE_AFTER seconds, it isolates itself (role.sh isolate: read-only from
# then on, and commits waiting for an acknowledgement are rolled back).
# FENCE_AFTER is mariadb_autopilot_failover_after - 3 s (at least 4 s, so
# at least 1 s): cut off at T, the primary fences by T + 1 (the next look) +
# 1 (its probes' timeout) + FENCE_AFTER = T + failover_after - 1, while the
# autopilot counts failover_after from a read that ended after T, and then
# still has to move. A pod whose mounted record names another primary at a
# newer epoch than the one it served under isolates itself too. The
# autopilot makes a recorded primary that fenced itself writable again once
# more than half of the pods replicate from it (autopilot.py).
#
# Beside the guard, its stall watch (watch_stalls) kills mariadbd when the
# pod stood still for failover_after less 1 s while acting as the primary
# (its pod frozen, its node hung): another pod may have been promoted
# meanwhile, and the mounted record, which the kubelet refreshes up to a
# minute late, cannot tell. server.sh starts the watch before mariadbd
# (self-fence.sh watch), and the guard after, telling it the watch's pipe.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Seconds per peer's answer, and for a whole look: a frozen server makes
# the look time out, and a server that answers nobody is guarded by the
# autopilot (role.sh crash).
PEER_TIMEOUT=1
LOOK_TIMEOUT=3
# Seconds between two checks of whether to guard at all (the autopilot off,
# or fewer than 3 pods): the check is all that runs then, on every pod.
IDLE_EVERY=10

# recorded_setting NAME: its value in the mounted settings record
# (mariadb/tasks/record_settings.yml: JSON with sorted keys), "" when
# absent. Builtins only: the guard asks every second on every pod.
recorded_setting() {
  local json='' pattern="\"$1\": ([^,}]*)"
  if [ -r "$TOPOLOGY/settings" ]; then IFS= read -r -d '' json < "$TOPOLOGY/settings" || true; fi
  if [[ $json =~ $pattern ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
}

# guarded: the cluster runs the autopilot and has at least 3 pods (with
# fewer, no replica is ever a quorum, so nothing is promoted behind the
# primary's back).
guarded() {
  local pods
  pods=$(recorded_setting mariadb_replicas)
  [ "$(recorded_setting mariadb_autopilot)" = true ] && [[ $pods =~ ^[0-9]+$ ]] && [ "$pods" -ge 3 ]
}

# peer_answers ORDINAL: the pod's server answers over the network as the
# replication account; a server error (a password being rotated) is an
# answer too, a client error (2xxx: no route, no name) is not. The password
# reaches the client in its environment only.
peer_answers() {
  local password output tls=()
  read_credential password replication-password
  if tls_enabled; then tls=(--ssl --ssl-ca="$TLS_DIR/ca.crt" --ssl-verify-server-cert); fi
  output=$(MYSQL_PWD=$password timeout "$PEER_TIMEOUT" mariadb --no-defaults --user=repl --host="$(pod_host "$1")" \
    --connect-timeout="$PEER_TIMEOUT" "${tls[@]}" -N -e 'SELECT 1' 2>&1) && return 0
  [[ $output =~ ERROR\ ([0-9]+) ]] && ! [[ ${BASH_REMATCH[1]} =~ ^2[0-9]{3}$ ]]
}

# look [SERVED]: one line. "idle" unless this pod acts as the primary;
# "superseded EPOCH" when the mounted record names another pod at an epoch
# newer than SERVED, the one this pod served under, without asking the
# peers: a primary thawed after a failover is writable until it fences.
# Else "primary EPOCH NAMED REACHED PODS": the mounted record's epoch,
# whether it names this pod (yes/no), how many other pods answered, and how
# many pods the cluster has.
look() {
  local pods ordinal reached=0 named=no pid pids=() epoch
  if ! acting_primary; then
    echo idle
    return
  fi
  epoch=$(recorded_epoch)
  if is_primary; then
    named=yes
  elif [ -n "${1:-}" ] && [ "$epoch" -gt "$1" ]; then
    echo "superseded $epoch"
    return
  fi
  pods=$(recorded_setting mariadb_replicas)
  for ((ordinal = 0; ordinal < pods; ordinal++)); do
    if [ "$ordinal" -ne "$ORDINAL" ]; then
      peer_answers "$ordinal" &
      pids+=($!)
    fi
  done
  for pid in "${pids[@]}"; do
    if wait "$pid"; then reached=$((reached + 1)); fi
  done
  echo "primary $epoch $named $reached $pods"
}

# outvoted REACHED PODS: the pods this one cannot reach are more than half
# of the cluster, enough for the autopilot's quorum.
outvoted() { [ $(($2 - 1 - $1)) -ge $(($2 / 2 + 1)) ]; }

# before_failover_us SECONDS: the recorded mariadb_autopilot_failover_after
# (seconds, possibly fractional) less SECONDS, at least 1 s, in microseconds.
before_failover_us() {
  local seconds
  seconds=$(recorded_setting mariadb_autopilot_failover_after)
  [[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || seconds=5
  awk -v s="$seconds" -v less="$1" 'BEGIN { f = s - less; if (f < 1) f = 1; printf "%d", f * 1000000 }'
}

# FENCE_AFTER: how long the primary may miss a quorum of its peers.
fence_after_us() { before_failover_us 3; }

# How long the pod may stand still: the autopilot counts failover_after
# from a read that ended after the pod froze, so a shorter stall cannot
# have seen a failover decided.
stall_limit_us() { before_failover_us 1; }

# look in a process of its own, bounded: "unknown" when it does not finish.
look_bounded() { timeout -k 1 "$LOOK_TIMEOUT" bash "${BASH_SOURCE[0]}" look "$@" 2>/dev/null || echo unknown; }

# clock: NOW, microseconds of a clock that never steps back (seconds since
# boot, to 1/100). Builtins only, and no subshell: the stall watch reads it.
clock() {
  local up
  read -r up _ < /proc/uptime
  NOW=$((10#${up/./} * 10000))
}

# watch_stalls SERVER: the loop beside the guard, told after each look
# "primary LIMIT" (this pod acts as the primary; LIMIT is stall_limit_us) or
# "idle" on its standard input. A frozen pod thaws all at once, and its
# server greets a client that waited on it within 0.1 ms: this loop must
# kill mariadbd before that client, authenticated, asks its first question.
# It runs in a process started before mariadbd's (watch), which the freezer
# thaws first, and its steps are builtins; but its sleep, a read's timeout,
# sleeps again after the thaw for what it had left when the pod froze. So
# while the pod acts as the primary it sleeps 10 ms at a time (about 1% of
# a CPU). Marked (STALL_MARK), the server restarts read-only (server.sh),
# and crash recovery rolls back the commits that waited for an
# acknowledgement.
watch_stalls() {
  local server=$1 acting=idle limit=0 line pending='' last gap status tick=0.5
  clock
  last=$NOW
  while true; do
    # A timeout in the middle of a line keeps what was read of it.
    if IFS= read -r -t "$tick" line; then
      read -r acting limit <<<"$pending$line"
      pending='' limit=${limit:-0} tick=0.5
      if [ "$acting" = primary ]; then tick=0.01; fi
    elif status=$? && [ "$status" -le 128 ]; then
      log "the guard is gone: no more stall watch"
      return
    else
      pending+=$line
    fi
    clock
    gap=$((NOW - last)) last=$NOW
    if [ "$acting" = primary ] && [ "$gap" -gt "$limit" ]; then
      : > "$STALL_MARK" || true
      kill -KILL "$server" 2>/dev/null || true
      acting=idle tick=0.5
      log "crashed mariadbd: this pod stood still for $((gap / 1000)) ms (its pod frozen, or its node hung) while" \
        "acting as the primary: another pod may have been promoted meanwhile; it restarts read-only"
    fi
  done
}

# tell_watch LINE: to the stall watch (the guard's $watch), if it still reads.
tell_watch() { echo "$1" 1>&"$watch" 2>/dev/null || true; }

fence_self() {
  local said
  log "fencing itself: $*"
  if ! said=$(timeout 20 bash "$(dirname "${BASH_SOURCE[0]}")/role.sh" isolate); then
    log "role.sh isolate failed"
  elif [ "${said##*$'\n'}" = crashing ]; then
    log "crashing: the commits waiting for an acknowledgement roll back as it restarts read-only"
  else
    log "read-only at GTID ${said##*$'\n'}"
  fi
}

# watch: the stall watch's process; the first line on its standard input is
# mariadbd's PID, the guard's lines follow.
watch() {
  local server
  read -r server || return 0
  watch_stalls "$server"
}

# guard WATCH: the guard's loop; WATCH is the file descriptor of the stall
# watch's pipe.
guard() {
  local watch=$1 line state epoch named reached pods lost_since='' lost_for served_epoch='' started every left
  local guarding=''
  trap '' PIPE # a stall watch that died leaves the guard guarding
  while true; do
    clock
    started=$NOW line=idle every=$IDLE_EVERY
    if guarded; then
      [ "$guarding" = yes ] || log "guarding: the autopilot runs and the cluster has $(recorded_setting mariadb_replicas) pods"
      guarding=yes line=$(look_bounded "$served_epoch") every=1
    elif [ "$guarding" != no ]; then
      # A new cluster: until deploy.yml has written the record and the kubelet refreshed the mount.
      log "not guarding: the mounted settings record says the autopilot is off or the cluster has fewer than 3" \
        "pods, or there is none yet"
      guarding=no
    fi
    read -r state epoch named reached pods <<<"$line"
    if [ "$state" = superseded ]; then
      tell_watch idle
      fence_self "the record names $STATEFULSET_NAME-$(recorded_primary) at epoch $epoch; this pod was the primary" \
        "at epoch $served_epoch"
      lost_since='' served_epoch=''
    elif [ "$state" = unknown ]; then
      : # the look did not finish (the server hung): nothing learnt, nothing forgotten
    elif [ "$state" != primary ]; then
      tell_watch idle
      lost_since='' served_epoch=''
    else
      tell_watch "primary $(stall_limit_us)"
      if [ "$named" = yes ]; then served_epoch=$epoch; fi
      if ! outvoted "$reached" "$pods"; then
        lost_since=''
      else
        lost_since=${lost_since:-$started}
        clock
        lost_for=$((NOW - lost_since))
        if [ "$lost_for" -ge "$(fence_after_us)" ]; then
          tell_watch idle
          fence_self "only $reached of the $((pods - 1)) other pods answered for $((lost_for / 1000)) ms:" \
            "the others could promote one of them"
          lost_since=''
        fi
      fi
    fi
    clock
    left=$((started + every * 1000000 - NOW))
    if [ "$left" -gt 0 ]; then sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"; fi
  done
}

main() {
  case ${1:-} in
    look) look "${@:2}" ;;
    watch) watch ;;
    guard) guard "$2" ;;
    *) die "usage: self-fence.sh watch | guard WATCH_FD | look [SERVED_EPOCH]" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
