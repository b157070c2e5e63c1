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
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Seconds per peer's answer, and for a whole look: a frozen server makes
# the look time out, and a server that answers nobody is guarded by the
# autopilot (role.sh crash).
PEER_TIMEOUT=1
LOOK_TIMEOUT=3

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

# look: one line. "idle" unless this pod acts as the primary; else
# "primary EPOCH NAMED REACHED PODS": the mounted record's epoch, whether it
# names this pod (yes/no), how many other pods answered, and how many pods
# the cluster has.
look() {
  local pods ordinal reached=0 named=no pid pids=()
  if ! acting_primary; then
    echo idle
    return
  fi
  pods=$(recorded_setting mariadb_replicas)
  if is_primary; then named=yes; fi
  for ((ordinal = 0; ordinal < pods; ordinal++)); do
    if [ "$ordinal" -ne "$ORDINAL" ]; then
      peer_answers "$ordinal" &
      pids+=($!)
    fi
  done
  for pid in "${pids[@]}"; do
    if wait "$pid"; then reached=$((reached + 1)); fi
  done
  echo "primary $(recorded_epoch) $named $reached $pods"
}

# outvoted REACHED PODS: the pods this one cannot reach are more than half
# of the cluster, enough for the autopilot's quorum.
outvoted() { [ $(($2 - 1 - $1)) -ge $(($2 / 2 + 1)) ]; }

# fence_after_us: FENCE_AFTER in microseconds, from the recorded
# mariadb_autopilot_failover_after (seconds, possibly fractional).
fence_after_us() {
  local seconds
  seconds=$(recorded_setting mariadb_autopilot_failover_after)
  [[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || seconds=5
  awk -v s="$seconds" 'BEGIN { f = s - 3; if (f < 1) f = 1; printf "%d", f * 1000000 }'
}

# look in a process of its own, bounded: "idle" when it does not finish.
look_bounded() { timeout -k 1 "$LOOK_TIMEOUT" bash "${BASH_SOURCE[0]}" look 2>/dev/null || echo idle; }

# Microseconds of a clock that never steps back (seconds since boot, to 1/100).
now_us() {
  local up
  read -r up _ < /proc/uptime
  printf '%s' "$((${up/./} * 10000))"
}

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

guard() {
  local started line state epoch named reached pods lost_since='' lost_for served_epoch='' left
  log "guard started: it acts while the autopilot runs and this pod acts as the primary"
  while true; do
    started=$(now_us)
    line=idle
    if guarded; then line=$(look_bounded); fi
    read -r state epoch named reached pods <<<"$line"
    if [ "$state" != primary ]; then
      lost_since='' served_epoch=''
    elif [ "$named" = no ] && [ -n "$served_epoch" ] && [ "$epoch" -gt "$served_epoch" ]; then
      fence_self "the record names $STATEFULSET_NAME-$(recorded_primary) at epoch $epoch; this pod was the primary" \
        "at epoch $served_epoch"
      lost_since='' served_epoch=''
    else
      if [ "$named" = yes ]; then served_epoch=$epoch; fi
      if ! outvoted "$reached" "$pods"; then
        lost_since=''
      else
        lost_since=${lost_since:-$started}
        lost_for=$(($(now_us) - lost_since))
        if [ "$lost_for" -ge "$(fence_after_us)" ]; then
          fence_self "only $reached of the $((pods - 1)) other pods answered for $((lost_for / 1000)) ms:" \
            "the others could promote one of them"
          lost_since=''
        fi
      fi
    fi
    left=$((1000000 - ($(now_us) - started)))
    if [ "$left" -gt 0 ]; then sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"; fi
  done
}

main() {
  case ${1:-} in
    look) look ;;
    *) guard ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
