# Certificates and kubeconfigs for the local cluster, made with openssl.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PKI_DIR=$STATE_DIR/pki

# sign NAME SUBJECT [SAN]: a key and a CA-signed certificate, valid 10 years.
sign() {
  local name=$1 subject=$2 san=${3:-}
  openssl genrsa -out "$PKI_DIR/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI_DIR/$name.key" -subj "$subject" -out "$PKI_DIR/$name.csr"
  local ext; ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
  [ -n "$san" ] && echo "subjectAltName=$san" >> "$ext"
  openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI_DIR/$name.csr"
}

# kubeconfig NAME: an embedded-certificate kubeconfig for certificate NAME.
kubeconfig() {
  local name=$1 node_ip=$2
  cat > "$PKI_DIR/$name.kubeconfig" <<EOF_KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$node_ip:6443
    certificate-authority-data: $(base64 -w0 < "$PKI_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI_DIR/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI_DIR/$name.key")
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
EOF_KC
  chmod 600 "$PKI_DIR/$name.kubeconfig"
}

ensure_pki() {
  local node=$1 node_ip=$2
  # The stamp is written last: a run killed half-way regenerates everything.
  [ -f "$PKI_DIR/complete" ] || new_pki "$node" "$node_ip"
  # kube-router came later: a PKI made before gets its certificate on the next
  # `up` (its own stamp, written last). Its identity may only read the API
  # (ClusterRole in components.sh): it is not handed the admin's certificate.
  if [ ! -f "$PKI_DIR/complete-kube-router" ]; then
    sign kube-router /CN=system:kube-router
    kubeconfig kube-router "$node_ip"
    touch "$PKI_DIR/complete-kube-router"
  fi
}

new_pki() {
  local node=$1 node_ip=$2
  log "pki: generating CA, certificates and kubeconfigs"
  rm -rf "$PKI_DIR"; mkdir -p "$PKI_DIR"; chmod 700 "$PKI_DIR"
  openssl genrsa -out "$PKI_DIR/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI_DIR/ca.key" -subj /CN=mariadb-k8s-ca -days 3650 -out "$PKI_DIR/ca.crt"
  sign apiserver /CN=kube-apiserver \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$node,IP:127.0.0.1,IP:10.0.0.1,IP:$node_ip"
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  sign kubelet-serving "/O=system:nodes/CN=system:node:$node" "DNS:$node,DNS:localhost,IP:127.0.0.1,IP:$node_ip"
  sign admin "/O=system:masters/CN=admin"
  sign controller-manager /CN=system:kube-controller-manager
  sign scheduler /CN=system:kube-scheduler
  sign kube-proxy /CN=system:kube-proxy
  sign kubelet "/O=system:nodes/CN=system:node:$node"
  openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
  local n
  for n in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$n" "$node_ip"; done
  touch "$PKI_DIR/complete"
}
