#!/usr/bin/env bash
# The pod's own metrics, what mysqld_exporter cannot give (it drops string
# values such as the certificate's expiry, and knows nothing of backups), in
# Prometheus' text format.
#   bash metrics.sh page      the page
#   bash metrics.sh respond   one HTTP request on stdin and stdout: the
#                             sidecar's listener on METRICS_PORT (socat)
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/store.sh"

# When the certificate the server presents expires (what FLUSH SSL loaded,
# not what is mounted), and the whole days left (negative once expired).
# Nothing without TLS.
tls_metrics() {
  local not_after expires left
  # The status is the session's: empty unless it speaks TLS (over the socket).
  not_after=$(sql --ssl --skip-ssl-verify-server-cert --connect-timeout=3 -N \
    -e "SHOW STATUS LIKE 'Ssl_server_not_after'" | cut -f2)
  [ -n "$not_after" ] || return 0
  expires=$(date -u -d "$not_after" +%s)
  left=$(( expires - $(date -u +%s) ))
  cat <<TEXT
# HELP mariadb_tls_certificate_expiry_timestamp_seconds When the certificate the server presents expires.
# TYPE mariadb_tls_certificate_expiry_timestamp_seconds gauge
mariadb_tls_certificate_expiry_timestamp_seconds $expires
# HELP mariadb_tls_certificate_days_left Whole days until the certificate the server presents expires.
# TYPE mariadb_tls_certificate_days_left gauge
mariadb_tls_certificate_days_left $(( left >= 0 ? left / 86400 : (left - 86399) / 86400 ))
TEXT
}

# When a backup of the cluster's timeline last restored equal to the cluster
# (verify-backup.sh), as the sidecar last read it from the store.
backup_metrics() {
  local time=
  [ -r "$VERIFIED" ] && time=$(json_field "$(<"$VERIFIED")" time)
  [[ $time =~ ^[0-9]+$ ]] || return 0
  cat <<TEXT
# HELP mariadb_backup_verified_timestamp When a backup of this cluster last restored equal to the cluster (verify_backup.yml), in Unix time.
# TYPE mariadb_backup_verified_timestamp gauge
mariadb_backup_verified_timestamp $time
TEXT
}

page() {
  tls_metrics
  backup_metrics
}

# The request's lines are read up to the blank one and not looked at: every
# path gets the page, made in a process of its own so that a server that
# hangs cannot hold the listener (PAGE_TIMEOUT). A server that does not
# answer gives a 503 with the client's error; a warning never reaches a 200.
PAGE_TIMEOUT=5
respond() {
  local line body errors status="200 OK" LC_ALL=C
  while IFS= read -r -t 5 line && [ -n "${line%$'\r'}" ]; do :; done
  errors=$(mktemp)
  if ! body=$(timeout "$PAGE_TIMEOUT" bash "${BASH_SOURCE[0]}" page 2>"$errors"); then
    status="503 Service Unavailable" body=$(cat "$errors")
  fi
  rm -f "$errors"
  printf 'HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n%s\n' \
    "$status" "$(( ${#body} + 1 ))" "$body"
}

main() {
  case ${1:-} in
    page) page ;;
    respond) respond ;;
    *) die "usage: metrics.sh page | respond" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
