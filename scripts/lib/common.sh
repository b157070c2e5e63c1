# Shared helpers for the local-cluster scripts: paths, logging, progress.
# shellcheck shell=bash disable=SC2034  # the variables are used by the sourcing scripts
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.sh
. "$SCRIPTS_DIR/lib/versions.sh"

# Build cache outside the clone, keyed by version below it.
CACHE_DIR=${MARIADB_K8S_CACHE:-/var/cache/mariadb-k8s}
# Cluster state: config, PKI and data (etc/var), pids (run), logs.
STATE_DIR=${MARIADB_K8S_STATE:-/var/lib/mariadb-k8s}
RUN_DIR=/run/mariadb-k8s
LOG_DIR=/var/log/mariadb-k8s
KUBECONFIG_PATH=${MARIADB_K8S_KUBECONFIG:-$STATE_DIR/admin.kubeconfig}
K8S_BIN=$CACHE_DIR/kubernetes-$K8S_VERSION/bin
KUBE_ROUTER_BIN=$CACHE_DIR/kube-router-$KUBE_ROUTER_VERSION/bin/kube-router
TOOLS_BIN=$CACHE_DIR/tools/bin
DNS_IP=169.254.20.10

_START_TS=${_START_TS:-$(date +%s)}
export _START_TS

elapsed() {
  local s=$(( $(date +%s) - _START_TS ))
  printf '%02d:%02d' $((s / 60)) $((s % 60))
}

log() { printf '[cluster %s] %s\n' "$(elapsed)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a long command, printing a heartbeat every 30 s so CI logs show life.
with_heartbeat() {
  local label=$1; shift
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -0 "$pid" 2>/dev/null && log "  ... still $label"
  done
  wait "$pid"
}

# go_build_main MAIN_GO GO MODULE VERSION OUT LDFLAGS: build a main package
# of ours against MODULE@VERSION, whose go.mod (it has no replace directives)
# sets every dependency's version, as its release does; GO is the go
# directive the release needs. The binary is OUT, static.
go_build_main() {
  local main=$1 go=$2 module=$3 version=$4 out=$5 ldflags=$6 src=$5.src
  rm -rf "$src"; mkdir -p "$src"
  cp "$main" "$src/"
  printf 'module local/build\n\ngo %s\n\nrequire %s %s\n' "$go" "$module" "$version" > "$src/go.mod"
  (cd "$src" && go mod tidy && CGO_ENABLED=0 with_heartbeat "building $(basename "$out")" \
    go build -trimpath -ldflags "$ldflags" -o "$out" .)
  rm -rf "$src"
}

# Atomically publish a build directory: build into DIR.tmp, then rename.
publish_dir() { rm -rf "$2"; mv "$1" "$2"; }

# Delete a tree a killed chroot build may have left behind with processes
# still writing in it and file systems mounted in it (debootstrap mounts
# /proc and /sys inside its target).
remove_tree() {
  [ -e "$1" ] || return 0
  local dir p; dir=$(realpath "$1")
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)/ $(readlink "$p/cwd" 2>/dev/null)/" in
      "$dir"/* | *" $dir"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$dir"
}
