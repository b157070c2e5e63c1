# Configuration and lifecycle of the cluster's host processes.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Start order; `down` stops them in reverse.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router
  coredns)
CONF_DIR=$STATE_DIR/etc
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.0.0.0/24

pid_of() { local f=$RUN_DIR/$1.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

start_process() {
  local name=$1; shift
  pid_of "$name" >/dev/null && return
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/$name.pid"
}

# wait_for LABEL SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local label=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $label (logs: $LOG_DIR)"
    sleep 1
  done
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# kube-router's network policy controller reads this node's object and its
# InternalIP (the pods whose status.hostIP is that address are the local pods
# it firewalls) once at start, and exits when they are missing.
node_has_ip() {
  [ -n "$(kubectl_admin get node "$1" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')" ]
}

# What kube-router's informers list and watch, and nothing else: it writes
# nothing to the API.
apply_kube_router_rbac() {
  kubectl_admin apply -f - >/dev/null <<'EOF_RBAC'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "mariadb-k8s:kube-router"}
rules:
  - apiGroups: [""]
    resources: [pods, namespaces, nodes, services, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "mariadb-k8s:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "mariadb-k8s:kube-router"}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kube-router"}
EOF_RBAC
}

write_configs() {
  local node=$1 node_ip=$2 pki=$STATE_DIR/pki
  mkdir -p "$CONF_DIR" /etc/containerd /etc/cni/net.d "$STATE_DIR/manifests"
  cat > /etc/containerd/config.toml <<EOF_CT
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Mandatory on this VM type: without CAP_SYS_RESOURCE runc cannot set a
  # negative oom_score_adj and every pod sandbox fails.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF_CT
  cat > /etc/cni/net.d/10-mariadb-k8s.conflist <<EOF_CNI
{ "cniVersion": "1.0.0", "name": "mariadb-k8s",
  "plugins": [
    { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" } ] }
EOF_CNI
  cat > "$CONF_DIR/scheduler.yaml" <<EOF_S
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: $pki/scheduler.kubeconfig}
leaderElection: {leaderElect: false}
EOF_S
  cat > "$CONF_DIR/kubelet.yaml" <<EOF_K
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
clusterDNS: ["$DNS_IP"]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
readOnlyPort: 0
# Images cannot be pulled again here, so never garbage-collect them.
imageGCHighThresholdPercent: 100
evictionHard: {imagefs.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%"}
# The VM lacks CAP_SYS_RESOURCE: no negative oom_score_adj, NOFILE capped at 20000.
oomScoreAdj: 0
maxOpenFiles: 20000
staticPodPath: $STATE_DIR/manifests
EOF_K
  cat > "$CONF_DIR/kube-proxy.yaml" <<EOF_P
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $pki/kube-proxy.kubeconfig}
hostnameOverride: $node
mode: iptables
clusterCIDR: $POD_CIDR
# The conntrack hash size is read-only on this kernel.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# kube-router's firewall restores the whole filter table: a rule kube-proxy
# wrote meanwhile (a Service's endpoints changed) can be undone. Every sync
# rewrites kube-proxy's filter chains, so one at least every 10 s mends it.
iptables: {syncPeriod: 10s, minSyncPeriod: 1s}
EOF_P
  cat > "$CONF_DIR/Corefile" <<EOF_D
.:53 {
    bind $DNS_IP
    errors
    health 127.0.0.1:8089
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_PATH
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
    cache 5
}
EOF_D
}

start_components() {
  local node=$1 node_ip=$2 pki=$STATE_DIR/pki i=0 n=${#COMPONENTS[@]} c
  for c in "${COMPONENTS[@]}"; do
    i=$((i + 1))
    if pid_of "$c" >/dev/null; then continue; fi
    log "start [$i/$n] $c"
    case $c in
      containerd)
        start_process containerd containerd --config /etc/containerd/config.toml
        wait_for containerd 60 ctr version ;;
      etcd)
        start_process etcd "$CACHE_DIR/etcd-$ETCD_DEB_VERSION/usr/bin/etcd" --name default \
          --data-dir "$STATE_DIR/etcd" --listen-client-urls http://127.0.0.1:2379 \
          --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
          --initial-advertise-peer-urls http://127.0.0.1:2380 \
          --initial-cluster default=http://127.0.0.1:2380 --log-level warn ;;
      kube-apiserver)
        start_process kube-apiserver "$K8S_BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
          --advertise-address="$node_ip" --bind-address=0.0.0.0 --secure-port=6443 \
          --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
          --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
          --client-ca-file="$pki/ca.crt" \
          --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
          --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
          --kubelet-certificate-authority="$pki/ca.crt" \
          --service-account-issuer=https://kubernetes.default.svc \
          --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
          --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --v=1
        wait_for "kube-apiserver /readyz" 120 kubectl_admin get --raw /readyz ;;
      kube-controller-manager)
        start_process kube-controller-manager "$K8S_BIN/kube-controller-manager" \
          --kubeconfig="$pki/controller-manager.kubeconfig" \
          --authentication-kubeconfig="$pki/controller-manager.kubeconfig" \
          --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
          --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
          --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
          --use-service-account-credentials --controllers='*' --leader-elect=false \
          --enable-hostpath-provisioner=true --v=1 ;;
      kube-scheduler)
        start_process kube-scheduler "$K8S_BIN/kube-scheduler" --config="$CONF_DIR/scheduler.yaml" \
          --authentication-kubeconfig="$pki/scheduler.kubeconfig" \
          --authorization-kubeconfig="$pki/scheduler.kubeconfig" ;;
      kubelet)
        mkdir -p /var/lib/kubelet
        start_process kubelet "$K8S_BIN/kubelet" --config="$CONF_DIR/kubelet.yaml" \
          --kubeconfig="$pki/kubelet.kubeconfig" --hostname-override="$node" --node-ip="$node_ip" --v=1 ;;
      kube-proxy)
        start_process kube-proxy "$K8S_BIN/kube-proxy" --config="$CONF_DIR/kube-proxy.yaml" ;;
      kube-router)
        # Its firewall only: no BGP routing, no IPVS service proxy (kube-proxy
        # does that), no load balancer allocator. Health and metrics servers
        # off: they would listen on every address. The service range is
        # whitelisted in its INPUT chain (the default, 10.96.0.0/12, is not ours).
        wait_for "node $node registered with its InternalIP" 120 node_has_ip "$node"
        apply_kube_router_rbac
        start_process kube-router "$KUBE_ROUTER_BIN" --kubeconfig="$pki/kube-router.kubeconfig" \
          --hostname-override="$node" --run-firewall=true --run-router=false \
          --run-service-proxy=false --run-loadbalancer=false --enable-ipv4=true --enable-ipv6=false \
          --service-cluster-ip-range="$SERVICE_CIDR" --iptables-sync-period=30s \
          --health-port=0 --metrics-port=0 --v=1
        wait_for "kube-router's firewall chains" 60 iptables -w -n -L KUBE-ROUTER-FORWARD ;;
      coredns)
        start_process coredns "$CACHE_DIR/coredns-$COREDNS_VERSION/coredns" -conf "$CONF_DIR/Corefile" ;;
    esac
  done
}

# Cluster-level objects every start needs: a default StorageClass. Volumes bind
# when their pod is scheduled: with Immediate binding the scheduler parks a new
# StatefulSet pod as unschedulable until its claim binds and at times misses
# the bind event, leaving the pod pending for the 5-minute requeue.
apply_addons() {
  local binding
  binding=$(kubectl_admin get storageclass standard -o 'jsonpath={.volumeBindingMode}' 2>/dev/null || true)
  if [ -n "$binding" ] && [ "$binding" != WaitForFirstConsumer ]; then
    # The binding mode is immutable; volumes already provisioned stay as they are.
    kubectl_admin delete storageclass standard >/dev/null
  fi
  kubectl_admin apply -f - >/dev/null <<'EOF_SC'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
EOF_SC
}

stop_components() {
  local i c pid
  if pid_of kube-apiserver >/dev/null; then
    log "stop: deleting pods"
    kubectl_admin delete pods --all -A --wait=false --grace-period=5 >/dev/null 2>&1 || true
  fi
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[$i]}
    if [ "$c" = containerd ] && pid_of containerd >/dev/null; then kill_containers; fi
    pid=$(pid_of "$c") || continue
    log "stop: $c (pid $pid)"
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/$c.pid"
  done
  clean_network
}

# Containers outlive the kubelet: kill and remove every task and container.
kill_containers() {
  local t c
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
  sleep 2
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do
    ctr -n k8s.io tasks delete "$c" >/dev/null 2>&1 || true
    ctr -n k8s.io containers rm "$c" >/dev/null 2>&1 || true
  done
}

clean_network() {
  [ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  grep -o ' /var/lib/kubelet/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  grep -o ' /run/containerd/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  ip link delete cni0 2>/dev/null || true
  rm -rf /var/lib/cni/networks/mariadb-k8s
  ip addr del "$DNS_IP/32" dev lo 2>/dev/null || true
  # The chains of the CNI plugins and of kube-router's firewall, per table:
  # the built-in chains' jumps to them removed, all of them flushed (they jump
  # to each other), then deleted. `kube-router --cleanup-config` would not do
  # it: in v2.1.0 it cleans up with a controller that has no iptables handlers.
  local table chains chain builtin num
  for table in nat filter; do
    chains=$(iptables-save -t "$table" 2>/dev/null \
      | awk -F'[: ]' '/^:(CNI-|KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-)/ {print $2}')
    [ -n "$chains" ] || continue
    for builtin in PREROUTING INPUT FORWARD OUTPUT POSTROUTING; do
      for num in $(iptables -w -t "$table" -L "$builtin" -n --line-numbers 2>/dev/null \
        | awk -v chains=" $(tr '\n' ' ' <<<"$chains")" 'index(chains, " " $2 " ") {print $1}' | sort -rn); do
        iptables -w -t "$table" -D "$builtin" "$num" 2>/dev/null || true
      done
    done
    for chain in $chains; do iptables -w -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do iptables -w -t "$table" -X "$chain" 2>/dev/null || true; done
  done
  # kube-router's ipsets (also the inet6: ones), now that no rule uses them,
  # and a temporary set of an ipset restore it was killed in.
  local set
  for set in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)'); do
    ipset destroy "$set" 2>/dev/null || true
  done
}
