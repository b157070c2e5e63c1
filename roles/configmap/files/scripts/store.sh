# Sourced by the scripts that reach the object store of backups and binlog
# archives (mariadb_backup_store_secret, mounted): rclone, copied into the pod
# by the backup-tools init container, with the store as its remote "store:".
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

# The Secret: endpoint, bucket, access-key-id, secret-access-key; optional
# region, prefix, and ca.crt for an endpoint whose certificate a public CA
# did not sign.
STORE_SECRET=/etc/mysql/backup-store
RCLONE=/opt/backup-tools/rclone
# Streaming uploads of unknown size take at most 10,000 parts: 64 MiB parts
# allow 625 GiB, and rclone buffers this much per part uploading at once.
STORE_CHUNK_SIZE=${STORE_CHUNK_SIZE:-64M}

store_configured() { [ -r "$STORE_SECRET/bucket" ]; }

# The timeline's newest verified backup (verified.json, verify-backup.sh), as
# the sidecar last read it from the store: the metrics report it.
VERIFIED=/tmp/backup-verified.json

store_key() {
  local value=
  if [ -r "$STORE_SECRET/$1" ]; then value=$(<"$STORE_SECRET/$1"); fi
  printf '%s' "$value"
}

# store ARGS...: rclone against the store. The keys reach rclone through its
# environment only, never its argv (visible to anyone in the pod).
store() {
  local ca=()
  [ -r "$STORE_SECRET/ca.crt" ] && ca=(--ca-cert "$STORE_SECRET/ca.crt")
  RCLONE_CONFIG=/dev/null RCLONE_CONFIG_STORE_TYPE=s3 RCLONE_CONFIG_STORE_PROVIDER=Other \
    RCLONE_CONFIG_STORE_ENDPOINT=$(store_key endpoint) RCLONE_CONFIG_STORE_REGION=$(store_key region) \
    RCLONE_CONFIG_STORE_ACCESS_KEY_ID=$(store_key access-key-id) \
    RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY=$(store_key secret-access-key) \
    RCLONE_CONFIG_STORE_FORCE_PATH_STYLE=true \
    "$RCLONE" --retries 3 --low-level-retries 10 --use-json-log=false "${ca[@]}" "$@"
}

# store_root [CLUSTER]: where a cluster's backups and archives live,
# bucket/prefix/NAMESPACE/NAME; this cluster's ($BACKUP_PATH) by default.
store_root() {
  local prefix
  prefix=$(store_key prefix)
  printf 'store:%s/%s%s' "$(store_key bucket)" "${prefix:+${prefix%/}/}" "${1:-$BACKUP_PATH}"
}

# The cluster's timeline: a new id for every cluster deploy.yml or
# restore.yml creates (the record's key timeline), so a restored cluster
# never writes into the archive of the history it diverged from.
timeline() {
  local id=
  [ -r "$TOPOLOGY/timeline" ] && id=$(<"$TOPOLOGY/timeline")
  [[ $id =~ ^[a-z0-9]{8,}$ ]] || die "$TOPOLOGY/timeline holds '$id', not a timeline id"
  printf '%s' "$id"
}

# json_field JSON NAME: a string or number field of one of our own one-line
# JSON documents (no nesting, no escaped quotes in the values).
json_field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" <<<"$1"; }

# gtid_seq GTID: the sequence number of D-S-N (the cluster has one domain;
# up to 2^63 - 1, bash's integers, where MariaDB allows 2^64 - 1).
gtid_seq() { printf '%s' "$((10#${1##*-}))"; }

# binlog_transactions FILE: "GTID YYYY-MM-DDTHH:MM:SS" for each transaction
# of binary log FILE, in its order (commit order); the time, UTC, is when
# the transaction's first statement started.
binlog_transactions() {
  TZ=UTC mariadb-binlog --no-defaults "$1" | awk '
    /^#[0-9][0-9][0-9][0-9][0-9][0-9] .*[[:space:]]GTID [0-9]+-[0-9]+-[0-9]+/ {
      for (i = 1; i < NF; i++) if ($i == "GTID") gtid = $(i + 1)
      split($2, clock, ":")  # the hour is padded with a space
      printf "%s 20%s-%s-%sT%02d:%s:%s\n", gtid, substr($1, 2, 2), substr($1, 4, 2), substr($1, 6, 2), clock[1], clock[2], clock[3]
    }'
}

# An archived binary log is TIMELINE/binlogs/FIRST-LAST.POD.FILE, FIRST and
# LAST the sequence numbers of its first and last GTID in 20 digits, and
# NAME.json its index (archive-binlogs.sh writes them, retention.sh deletes).
# binlog_object_name FIRST_GTID LAST_GTID POD FILE
binlog_object_name() { printf '%020d-%020d.%s.%s' "$(gtid_seq "$1")" "$(gtid_seq "$2")" "$3" "$4"; }
# binlog_last_seq NAME: LAST of such a name (or of its index), nothing for any other name.
binlog_last_seq() { [[ $1 =~ ^[0-9]{20}-([0-9]{20})\.[a-z0-9-]+\.[^/]+$ ]] && printf '%s' "$((10#${BASH_REMATCH[1]}))"; }

# archive_marker DIR: the timeline's archived-until.json, nothing when there is none.
archive_marker() {
  if [ -n "$(store lsf --files-only --include archived-until.json "$1/")" ]; then
    store cat "$1/archived-until.json"
  fi
}

# archived_max_seq DIR [MARKER]: the highest sequence number the timeline's
# archive holds, 0 when empty: its newest log, or its marker's position
# (MARKER when the caller read it already), since retention may have
# deleted every log the kept backups hold already.
archived_max_seq() {
  local marker=${2-} listing name last max=0
  [ $# -ge 2 ] || marker=$(archive_marker "$1")
  # An assignment, not a process substitution: a failed listing stops here.
  listing=$(store lsf --files-only --include '*.json' "$1/")
  while IFS= read -r name; do
    last=$(binlog_last_seq "$name") || continue
    [ "$last" -le "$max" ] || max=$last
  done <<<"$listing"
  marker=$(json_field "$marker" gtid)
  marker=$([ -n "$marker" ] && gtid_seq "$marker" || echo 0)
  printf '%s' "$((max > marker ? max : marker))"
}

# A backup is TIMELINE/backups/ID/: its stream, then manifest.json, written
# last (backup-to-store.sh). It is complete when the manifest is stored and
# the stream is there at the manifest's size; a stream missing or of another
# size is damaged. backup_catalog.backups() applies the same rule to the
# catalog (tests/unit/test_backup_scripts.py binds the two).
# complete_backups ROOT: "ID TIMELINE SEQ" of each complete backup, newest first.
complete_backups() {
  local objects manifests object size line timeline gtid
  local -A stored=()
  objects=$(store lsf --files-only -R --format ps --include '*/backups/**' "$1")
  manifests=$(store cat --include '*/backups/*/manifest.json' "$1")
  while IFS=';' read -r object size; do
    [ -z "$object" ] || stored[$object]=$size
  done <<<"$objects"
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    timeline=$(json_field "$line" timeline)
    [ "${stored[$timeline/$(json_field "$line" object)]:-}" = "$(json_field "$line" size)" ] || continue
    gtid=$(json_field "$line" gtid)
    printf '%s %s %s\n' "$(json_field "$line" id)" "$timeline" "$([ -n "$gtid" ] && gtid_seq "$gtid" || echo 0)"
  done <<<"$manifests" | sort -r
}
