# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts
# Pinned versions of everything the local cluster is built from. The build
# cache is keyed by these, so bumping one rebuilds only that component.
K8S_VERSION=v1.34.4
COREDNS_VERSION=v1.14.7
ETCD_DEB_VERSION=3.5.16-4
PAUSE_IMAGE=registry.k8s.io/pause:3.10
MARIADB_IMAGES=("localhost/mariadb:10.11=bookworm" "localhost/mariadb:11.8=trixie")
# Debian packages of the MariaDB images; their cache is keyed by this list.
# prometheus-mysqld-exporter: 0.14.0 in bookworm, 0.17.2 in trixie; rclone (the
# object-store client of backups and binlog archiving): 1.60 in bookworm.
MARIADB_PACKAGES="mariadb-server mariadb-client mariadb-backup socat bash coreutils procps prometheus-mysqld-exporter rclone python3"
# Network policy enforcement only (its firewall); v2.1.0 has reported security
# flaws, acceptable for this test bed and nothing else (README).
KUBE_ROUTER_VERSION=v2.1.0
# S3 object store of the e2e tests (backups, PITR), built from the Go module proxy.
VERSITYGW_VERSION=v1.8.0
