# Sourced by every pod script: paths, identity and helpers. It only defines
# variables and functions, so tests can source it and point the paths at
# temporary directories.
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

DATADIR=/var/lib/mysql
CNF=/etc/mysql/cluster/my.cnf
CONFIG_SOURCE=/etc/mysql/cluster-config
# The credentials Secret, mounted: one file per key.
CREDENTIALS=/etc/mysql/credentials
# The cluster's record of its primary (ConfigMap <name>-topology), mounted:
# key primary names the primary pod; initialised is true once the cluster
# holds data. Only switchover.yml and failover.yml change it.
TOPOLOGY=/etc/mysql/topology
# The TLS Secret, mounted when the cluster uses TLS: ca.crt, tls.crt, tls.key.
TLS_DIR=/etc/mysql/tls
CLONE_PORT=3307
# Seconds without a byte on a clone connection before either side gives up.
CLONE_IDLE_TIMEOUT=${CLONE_IDLE_TIMEOUT:-120}
# A peer whose host vanished is noticed even while the stream is idle.
CLONE_KEEPALIVE=keepalive,keepidle=30,keepintvl=10,keepcnt=3
ORDINAL=${HOSTNAME##*-}
# Remnants of an interrupted clone or initialisation; never real data.
STAGE_PREFIX=.staging
# Left by role.sh isolate: this server was a primary its replicas lost; it
# starts read-only until a promotion removes the mark.
FENCED_MARK=.fenced-primary
# Left by the stall watch (self-fence.sh) the instant before it kills
# mariadbd, for server.sh to turn into FENCED_MARK: in the pod's shared
# memory (the tmpfs of the pod's IPC namespace, one per pod with every CRI
# runtime, which the container's restarts keep), because creating a file on
# the data volume can wait 0.1 s on its journal, time a thawed server uses
# to answer the clients that waited on it.
STALL_MARK=/dev/shm/mariadb-k8s-stalled

log() { printf '[%s %s] %s\n' "$(date -u +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# recorded_primary: the ordinal of the pod the cluster records as primary.
# A pod started by an older release has no record mounted: its primary was
# ordinal 0 (the new scripts reach running pods before their new spec does).
recorded_primary() {
  [ -d "$TOPOLOGY" ] || { printf 0; return; }
  local pod=
  # $(<file), not read: the ConfigMap value has no trailing newline, and
  # read fails at end of file even after reading the value.
  if [ -r "$TOPOLOGY/primary" ]; then pod=$(<"$TOPOLOGY/primary"); fi
  [[ $pod =~ ^$STATEFULSET_NAME-([0-9]+)$ ]] || die "$TOPOLOGY/primary names '$pod', not a pod of $STATEFULSET_NAME"
  printf '%s' "${BASH_REMATCH[1]}"
}
# is_primary [ORDINAL]: this pod's ordinal by default.
# shellcheck disable=SC2120
# Called in conditions, where errexit is off: a missing record exits explicitly.
is_primary() {
  local primary
  primary=$(recorded_primary) || exit 1
  [ "${1:-$ORDINAL}" -eq "$primary" ]
}
# recorded_epoch: the record's epoch, which every move of the primary
# increments (0 before the first move).
recorded_epoch() {
  local epoch=0
  if [ -r "$TOPOLOGY/epoch" ]; then epoch=$(<"$TOPOLOGY/epoch"); fi
  [[ $epoch =~ ^[0-9]+$ ]] || epoch=0
  printf '%s' "$epoch"
}
# The cluster created its data once: an empty volume is never a new cluster.
cluster_initialised() { [ "$(cat "$TOPOLOGY/initialised" 2>/dev/null)" = true ]; }
# Replication and clones use TLS, verifying the peer's certificate; the
# record's key never changes for a cluster, so a mounted copy is never stale.
tls_enabled() { [ "$(cat "$TOPOLOGY/tls" 2>/dev/null)" = true ]; }
pod_host() { printf '%s-%d.%s' "$STATEFULSET_NAME" "$1" "$SERVICE_NAME"; }

# SQL as the local admin account: unix socket authentication as the OS user
# mysql, so no password is needed or exposed. Backslash escapes stay on
# whatever the server's sql_mode, as sql_quote relies on them.
sql() {
  mariadb --defaults-file="$CNF" --protocol=socket --user=mysql --batch \
    --init-command="SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')" "$@"
}

# Quote a value for a single-quoted SQL string literal: backslash, quote and
# newline escaped, so the result is one line (command substitution keeps it
# whole).
sql_quote() { local v=${1//\\/\\\\}; v=${v//\'/\\\'}; printf '%s' "${v//$'\n'/\\n}"; }

# read_credential VAR KEY: set VAR to KEY's value in the mounted Secret, byte
# for byte (command substitution would drop a trailing newline).
read_credential() {
  local path=$CREDENTIALS/$2
  [ -r "$path" ] || die "cannot read $path"
  IFS= read -r -d '' "$1" < "$path" || true
  [ -n "${!1}" ] || die "$path is empty"
}

# mounted_checksum DIR KEY...: the sha256 (hex) of, for each KEY in this
# order, "KEY=" followed by the mounted file's bytes and "\n": what the
# Ansible side computes from the Secret's data (roles/secret/vars,
# roles/tls/vars), so a script can tell the kubelet has refreshed it.
mounted_checksum() {
  local dir=$1 key
  shift
  for key in "$@"; do
    [ -r "$dir/$key" ] || die "cannot read $dir/$key"
    printf '%s=' "$key"
    cat "$dir/$key"
    printf '\n'
  done | sha256sum | cut -d' ' -f1
}

# The clone token travels as one line: it cannot hold a newline.
read_clone_token() {
  read_credential "$1" clone-token
  [[ ${!1} != *$'\n'* ]] || die "$CREDENTIALS/clone-token contains a newline"
}

# A replication start position as clone.sh records it: a GTID list, or
# "empty" when the donor had not executed a single transaction.
# gtid_domains POSITION: the replication domains of a GTID position, in
# order, space-separated: more than one and backups and the archive stop.
gtid_domains() {
  local entry domains=()
  for entry in ${1//,/ }; do domains+=("${entry%%-*}"); done
  [ "${#domains[@]}" -eq 0 ] || printf '%s\n' "${domains[@]}" | sort -un | paste -sd' '
}
valid_position() { [[ $1 == empty || $1 =~ ^[0-9]+-[0-9]+-[0-9]+(,[0-9]+-[0-9]+-[0-9]+)*$ ]]; }

# read_only is 0/1 on 10.11 and may read OFF/ON on later releases.
writable() { [[ $(sql -N -e 'SELECT @@global.read_only') =~ ^(0|OFF)$ ]]; }
# The running server acts as the primary: writable, replicating from nobody.
# Its state decides, not the mounted record, which the kubelet refreshes some
# seconds after a move: only role.sh changes the role of a running server.
acting_primary() { [ -z "$(sql -e 'SHOW SLAVE STATUS')" ] && writable; }
# The cluster's config turns semi-synchronous replication on for its primary
# (configmap.yml.j2); a replica never waits for acknowledgements, since no
# one replicates from it.
semi_sync_wanted() { grep -Eqs '^ *rpl_semi_sync_master_enabled *= *(ON|1) *$' "$CNF"; }

wait_for_server() {
  until sql -e 'SELECT 1' >/dev/null 2>&1; do sleep 1; done
}

# The accounts' passwords from the mounted Secret, as SQL for stdin.
account_passwords_sql() {
  local root repl backup
  read_credential root root-password
  read_credential repl replication-password
  read_credential backup backup-password
  cat <<SQL
ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$(sql_quote "$root")');
ALTER USER root@'%' IDENTIFIED BY '$(sql_quote "$root")';
ALTER USER repl@'%' IDENTIFIED BY '$(sql_quote "$repl")';
ALTER USER backup@localhost IDENTIFIED BY '$(sql_quote "$backup")';
SQL
}

# set_account_passwords: the mounted Secret's passwords on this server's
# accounts, never binary-logged: a password in a binary log would reach every
# replica's log and the archived logs in the object store. So every server
# sets its own: the sidecar at each start, credentials.sh on a changed Secret.
set_account_passwords() {
  { echo "SET SESSION sql_log_bin = 0;"; account_passwords_sql; } | sql
}

# replicate_from_primary [ORDINAL]: (re)point this replica at the recorded
# primary, or at ORDINAL, with the mounted replication password; the GTID
# position is kept (slave_pos).
replicate_from_primary() {
  local password host primary tls=
  primary=${1:-$(recorded_primary)} || exit 1
  host=$(pod_host "$primary")
  read_credential password replication-password
  if tls_enabled; then
    tls=",
  MASTER_SSL = 1, MASTER_SSL_CA = '$(sql_quote "$TLS_DIR/ca.crt")', MASTER_SSL_VERIFY_SERVER_CERT = 1"
  fi
  sql <<SQL
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST = '$host', MASTER_PORT = 3306, MASTER_USER = 'repl',
  MASTER_PASSWORD = '$(sql_quote "$password")', MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5$tls;
START SLAVE;
SQL
}

# The sidecar's clone listener's PID: tls.sh restarts it with a renewed
# certificate (socat reads it once, as it starts listening).
CLONE_LISTENER_PID=/tmp/clone-listener.pid

# The clone port's socat addresses: the donor's listener and a clone's
# connection to DONOR, over TLS when the cluster uses it (the clone verifies
# the donor's certificate and name; the token authenticates the clone).
clone_listen_address() {
  if tls_enabled; then
    printf 'OPENSSL-LISTEN:%s,cert=%s,key=%s,verify=0' "$CLONE_PORT" "$TLS_DIR/tls.crt" "$TLS_DIR/tls.key"
  else
    printf 'TCP-LISTEN:%s' "$CLONE_PORT"
  fi
}
# The clone listener is up (the sidecar's probes): a socket listening on
# CLONE_PORT, read from the kernel, since a probe connecting to a TLS
# listener would log a failed handshake every time.
PROC_NET=/proc/net
clone_port_listening() {
  grep -qsE "^ *[0-9]+: [0-9A-F]+:$(printf '%04X' "$CLONE_PORT") [0-9A-F]+:0000 0A " "$PROC_NET/tcp" "$PROC_NET/tcp6"
}
clone_connect_address() {
  if tls_enabled; then
    printf 'OPENSSL:%s:%s,cafile=%s,verify=1' "$1" "$CLONE_PORT" "$TLS_DIR/ca.crt"
  else
    printf 'TCP:%s:%s' "$1" "$CLONE_PORT"
  fi
}

# A backup is as old as its donor's data, and a verification compares the
# backup with its donor's position: a replica further behind its primary
# than this many seconds declines either, and the Job asks the next pod.
BACKUP_MAX_LAG=60

# lag_refusal: why this server is too far behind to donate a backup or its
# checksums, or nothing (a primary, or a replica close enough).
lag_refusal() {
  local lag
  lag=$(sql -e 'SHOW SLAVE STATUS\G' | sed -n 's/^ *Seconds_Behind_Master: *//p')
  case $lag in
    '') ;;
    NULL) echo "this replica cannot tell how far behind its primary it is (not connected to it)" ;;
    *) [ "$lag" -le "$BACKUP_MAX_LAG" ] || echo "this replica is $lag s behind its primary (at most $BACKUP_MAX_LAG)" ;;
  esac
}

# ask_pods REQUEST REPLY WHAT: send REQUEST and the clone token to the
# cluster's pods on the clone port (serve-backup.sh), replicas highest
# ordinal first, the primary only when it is the only pod (env REPLICAS),
# until one gives its verdict, a last line "<WORD> OK ..." or "<WORD> FAILED
# ...": its answer is in REPLY (and on stdout) and ASKED_POD names it. A pod
# not fit to serve answers nothing and one that declines ("<WORD> DECLINED
# <why>") is passed over. Three rounds, as a network policy controller may
# admit a new pod's address some seconds after it starts; then it dies,
# WHAT (e.g. "the backup") naming what no pod took.
ask_pods() {
  local request=$1 reply=$2 what=$3 token primary ordinal round last candidates=()
  read_clone_token token
  primary=$(recorded_primary)
  for ((ordinal = REPLICAS - 1; ordinal >= 0; ordinal--)); do
    [ "$ordinal" -eq "$primary" ] || candidates+=("$ordinal")
  done
  [ "${#candidates[@]}" -gt 0 ] || candidates=("$primary")
  for round in 1 2 3; do
    for ordinal in "${candidates[@]}"; do
      ASKED_POD=$(pod_host "$ordinal")
      log "asking $ASKED_POD for $what"
      printf '%s\n%s\n' "$request" "$token" \
        | socat -T "$CLONE_IDLE_TIMEOUT" -t 1 STDIO,ignoreeof "$(clone_connect_address "$ASKED_POD"),connect-timeout=10,$CLONE_KEEPALIVE" \
        | tee "$reply" || true
      last=$(tail -n 1 "$reply")
      if [[ $last =~ ^[A-Z]+\ (OK|FAILED)(\ |$) ]]; then
        return 0
      elif [[ $last =~ ^[A-Z]+\ DECLINED\ (.*)$ ]]; then
        log "$ASKED_POD declined $what: ${BASH_REMATCH[1]}"
      else
        log "$ASKED_POD did not take $what (not fit to serve, unreachable, or gone)"
      fi
    done
    [ "$round" = 3 ] || sleep 10
  done
  die "no pod took $what: none of $(for o in "${candidates[@]}"; do pod_host "$o"; printf ' '; done)is fit to serve"
}

# A server that was primary becomes a replica: replication resumes after the
# last transaction it holds, written or replicated (gtid_current_pos), and
# it takes no more writes.
continue_after_own_history() {
  sql <<'SQL'
SET GLOBAL read_only = ON;
SET GLOBAL rpl_semi_sync_master_enabled = OFF;
STOP SLAVE;
SET GLOBAL gtid_slave_pos = @@gtid_current_pos;
SQL
}

# move_into_datadir DIR: rename DIR's entries into the datadir with mysql/
# last, so mysql/ existing means the data is complete.
move_into_datadir() {
  local dir=$1 entry
  for entry in "$dir"/* "$dir"/.[!.]*; do
    [ -e "$entry" ] || continue
    [ "${entry##*/}" = mysql ] && continue
    mv "$entry" "$DATADIR/"
  done
  mv "$dir/mysql" "$DATADIR/mysql"
  rmdir "$dir"
}

# Anything in a datadir without mysql/ is a remnant of an interrupted run.
clear_incomplete_datadir() {
  find "$DATADIR" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
}
