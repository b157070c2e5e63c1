# Build kube-router (only its network policy controller is run) from the Go
# module proxy into the cache.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# kube-router/main.go: its firewall only. The version is stamped the way its
# Makefile does it (the tag instead of the commit).
build_kube_router() {
  local out=${KUBE_ROUTER_BIN%/bin/kube-router}
  if [ -x "$KUBE_ROUTER_BIN" ]; then
    log "kube-router $KUBE_ROUTER_VERSION: cached in $out"
    return
  fi
  local work=$out.tmp pkg=github.com/cloudnativelabs/kube-router/v2
  rm -rf "$work"; mkdir -p "$work/bin"
  log "kube-router $KUBE_ROUTER_VERSION: building its firewall from the Go module proxy"
  go_build_main "$SCRIPTS_DIR/lib/kube-router/main.go" 1.22 "$pkg" "$KUBE_ROUTER_VERSION" "$work/bin/kube-router" \
    "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  [[ $("$work/bin/kube-router" --version 2>&1) == *" version $KUBE_ROUTER_VERSION,"* ]] \
    || die "kube-router does not report $KUBE_ROUTER_VERSION"
  publish_dir "$work" "$out"
  log "kube-router $KUBE_ROUTER_VERSION: built into $out"
}
