#!/usr/bin/env bash
# The pod's own metrics, what mysqld_exporter cannot give (it drops string
# values such as the certificate's expiry), in Prometheus' text format.
#   bash metrics.sh page      the page
#   bash metrics.sh respond   one HTTP request on stdin and stdout: the
#                             sidecar's listener on METRICS_PORT (socat)
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# When the certificate the server presents expires (what FLUSH SSL loaded,
# not what is mounted), and the whole days left. Nothing without TLS.
page() {
  local status not_after expires
  # Explicit returns: respond calls this in a condition, where set -e is off.
  # The status is the session's: empty unless it speaks TLS (over the socket).
  status=$(sql --ssl --skip-ssl-verify-server-cert -N -e "SHOW STATUS LIKE 'Ssl_server_not_after'") || return 1
  not_after=$(cut -f2 <<<"$status")
  [ -n "$not_after" ] || return 0
  expires=$(date -u -d "$not_after" +%s) || return 1
  cat <<TEXT
# HELP mariadb_tls_certificate_expiry_timestamp_seconds When the certificate the server presents expires.
# TYPE mariadb_tls_certificate_expiry_timestamp_seconds gauge
mariadb_tls_certificate_expiry_timestamp_seconds $expires
# HELP mariadb_tls_certificate_days_left Whole days until the certificate the server presents expires.
# TYPE mariadb_tls_certificate_days_left gauge
mariadb_tls_certificate_days_left $(( (expires - $(date -u +%s)) / 86400 ))
TEXT
}

# The request's lines are read up to the blank one and not looked at: every
# path gets the page. A server that does not answer gives a 503.
respond() {
  local line body
  while IFS= read -r -t 5 line && [ -n "${line%$'\r'}" ]; do :; done
  if body=$(page 2>&1); then
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n%s\n' \
      "$(( ${#body} + 1 ))" "$body"
  else
    printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n' \
      "$(( ${#body} + 1 ))" "$body"
  fi
}

main() {
  case ${1:-} in
    page) page ;;
    respond) respond ;;
    *) die "usage: metrics.sh page | respond" ;;
  esac
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
