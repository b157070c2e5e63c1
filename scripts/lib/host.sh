# Host preparation: Debian packages, etcd, CoreDNS, kernel settings, configs.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# ipset: kube-router's firewall keeps its policies' pod addresses in ipsets.
# rclone: the unit tests check their fake object store against its local backend.
HOST_PACKAGES=(containerd runc containernetworking-plugins iptables ipset conntrack debootstrap socat
  iproute2 openssl gcc libc6-dev rclone)

install_packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "host: installing Debian packages: ${missing[*]}"
  # An install killed half-way leaves dpkg locked in "interrupted" until configured.
  DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# etcd 3.5 from trixie's package: bookworm's 3.4.23 is older than Kubernetes
# supports. Extracted, not installed: its postinst would start a second etcd.
install_etcd() {
  local dir=$CACHE_DIR/etcd-$ETCD_DEB_VERSION
  [ -x "$dir/usr/bin/etcd" ] && return
  log "host: fetching etcd $ETCD_DEB_VERSION from Debian trixie"
  local apt; apt=$(mktemp -d)
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb ${DEBIAN_MIRROR:-http://deb.debian.org/debian} trixie main" > "$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    -o APT::Sandbox::User=root)  # apt works in a directory of root's
  apt-get "${opts[@]}" update -q >/dev/null
  (cd "$apt" && apt-get "${opts[@]}" download "etcd-server=$ETCD_DEB_VERSION" >/dev/null)
  mkdir -p "$CACHE_DIR"; rm -rf "$dir.tmp"; dpkg-deb -x "$apt"/etcd-server_*.deb "$dir.tmp"
  publish_dir "$dir.tmp" "$dir"
  rm -rf "$apt"
}

# A main package of our own (coredns/main.go) with only the Corefile's plugins.
install_coredns() {
  local bin=$CACHE_DIR/coredns-$COREDNS_VERSION/coredns
  [ -x "$bin" ] && return
  log "host: building CoreDNS $COREDNS_VERSION (the Corefile's plugins) from the Go module proxy"
  local work=$CACHE_DIR/coredns-$COREDNS_VERSION.tmp
  rm -rf "$work"; mkdir -p "$work"
  go_build_main "$SCRIPTS_DIR/lib/coredns/main.go" 1.25.0 github.com/coredns/coredns "$COREDNS_VERSION" \
    "$work/coredns" "-s -w"
  [[ $("$work/coredns" -version) == *"CoreDNS-${COREDNS_VERSION#v}"* ]] \
    || die "CoreDNS does not report $COREDNS_VERSION"
  publish_dir "$work" "$CACHE_DIR/coredns-$COREDNS_VERSION"
}

tune_kernel() {
  sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288
  sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  # Without it, traffic between pods on cni0 is switched past iptables and
  # kube-router cannot enforce NetworkPolicies (test_network_policy.py fails).
  [ "$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null)" = 1 ] \
    || log "WARNING: net.bridge.bridge-nf-call-iptables is not 1: NetworkPolicies are not enforced between pods"
  # `replace` is idempotent: no check-then-add that a failed earlier run can trip.
  ip addr replace "$DNS_IP/32" dev lo
}

node_ip() { ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }
