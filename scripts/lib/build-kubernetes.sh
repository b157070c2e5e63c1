# Build the Kubernetes binaries from the Go module proxy into the cache.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with local paths, which Go ignores for a dependency. A wrapper module maps
# each one to the published v0.<minor>.<patch>; the list comes from the
# release's own go.mod because it changes between releases.
write_wrapper_module() {
  local dir=$1 gomod staging=v0.${K8S_VERSION#v1.}
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    printf 'module local/k8sbuild\n\ngo 1.24.0\n\ngodebug default=go1.24\n\n'
    printf 'require k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
    awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u \
      | while read -r m; do printf 'replace %s => %s %s\n' "$m" "$m" "$staging"; done
    printf '\ntool (\n'
    printf '\tk8s.io/kubernetes/cmd/%s\n' "${K8S_COMPONENTS[@]}"
    printf ')\n'
  } > "$dir/go.mod"
}

build_kubernetes() {
  local out=$CACHE_DIR/kubernetes-$K8S_VERSION
  if [ -x "$out/bin/kubectl" ]; then
    log "kubernetes $K8S_VERSION: cached in $out"
    return
  fi
  local work=$CACHE_DIR/kubernetes-$K8S_VERSION.tmp minor
  rm -rf "$work"; mkdir -p "$work/bin"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  log "kubernetes $K8S_VERSION: resolving modules (downloads ~1 GB on a cold cache)"
  write_wrapper_module "$work"
  (cd "$work" && with_heartbeat "resolving modules" go mod tidy)
  # Version stamping as upstream's hack/lib/version.sh does it.
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  local i=0 n=${#K8S_COMPONENTS[@]} c
  for c in "${K8S_COMPONENTS[@]}"; do
    i=$((i + 1))
    log "kubernetes $K8S_VERSION: building [$i/$n] $c"
    (cd "$work" && CGO_ENABLED=0 with_heartbeat "building $c [$i/$n]" \
      go build -p 2 -trimpath -tags selinux,notest -ldflags "$ldflags" -o "bin/$c" "k8s.io/kubernetes/cmd/$c")
  done
  [[ $("$work/bin/kubelet" --version) == *"$K8S_VERSION"* ]] || die "kubelet does not report $K8S_VERSION"
  publish_dir "$work" "$out"
  log "kubernetes $K8S_VERSION: built into $out"
}
