# Build kube-router (only its network policy controller is run) from the Go
# module proxy into the cache.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# kube-router/main.go (its firewall only) in a module that requires the
# release: its go.mod has no replace directives, so the dependency versions
# are the release's own. The version is stamped the way its Makefile does it
# (the tag instead of the commit).
build_kube_router() {
  local out=${KUBE_ROUTER_BIN%/bin/kube-router}
  if [ -x "$KUBE_ROUTER_BIN" ]; then
    log "kube-router $KUBE_ROUTER_VERSION: cached in $out"
    return
  fi
  local work=$out.tmp pkg=github.com/cloudnativelabs/kube-router/v2
  rm -rf "$work"; mkdir -p "$work/bin" "$work/src"
  log "kube-router $KUBE_ROUTER_VERSION: building its firewall from the Go module proxy"
  cp "$SCRIPTS_DIR/lib/kube-router/main.go" "$work/src/"
  printf 'module local/kuberouterbuild\n\ngo 1.22\n\nrequire %s %s\n' "$pkg" "$KUBE_ROUTER_VERSION" > "$work/src/go.mod"
  (cd "$work/src" && go mod tidy && CGO_ENABLED=0 with_heartbeat "building kube-router" \
    go build -trimpath -ldflags "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION \
      -X $pkg/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" -o ../bin/kube-router .)
  [[ $("$work/bin/kube-router" --version 2>&1) == *" version $KUBE_ROUTER_VERSION,"* ]] \
    || die "kube-router does not report $KUBE_ROUTER_VERSION"
  rm -rf "$work/src"
  publish_dir "$work" "$out"
  log "kube-router $KUBE_ROUTER_VERSION: built into $out"
}
