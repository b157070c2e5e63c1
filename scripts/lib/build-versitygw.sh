# Build the Versity S3 Gateway (versitygw), the e2e tests' S3 object store
# (tests/e2e/object_store.py), from the Go module proxy into the cache, and
# its image: the static binary, /tmp and /data (the buckets), nothing else.
# shellcheck shell=bash disable=SC2034  # VERSITYGW_IMAGE is used by images.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERSITYGW_BIN=$CACHE_DIR/versitygw-$VERSITYGW_VERSION/bin/versitygw
VERSITYGW_IMAGE=localhost/versitygw:$VERSITYGW_VERSION
# The image's user and the owner of its /data; no shell, no passwd entry.
VERSITYGW_UID=1000

# Only the tests deploy the object store: make test, e2e, benchmark and
# chaos set MARIADB_K8S_OBJECT_STORE=1; make deploy neither builds nor loads it.
object_store_wanted() { [ "${MARIADB_K8S_OBJECT_STORE:-0}" = 1 ]; }

# Like kube-router: no replace directives in its go.mod, so `go install
# module@version` builds it as released. CGO off makes it static (the image
# has no libc); the version is stamped the way its Makefile does it.
build_versitygw() {
  local out=${VERSITYGW_BIN%/bin/versitygw}
  if [ -x "$VERSITYGW_BIN" ]; then
    log "versitygw $VERSITYGW_VERSION: cached in $out"
    return
  fi
  local work=$out.tmp
  rm -rf "$work"; mkdir -p "$work/bin"
  log "versitygw $VERSITYGW_VERSION: building from the Go module proxy (about 1 min)"
  with_heartbeat "building versitygw" \
    env GOBIN="$work/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
      -X main.Version=$VERSITYGW_VERSION -X main.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  [[ $("$work/bin/versitygw" --version 2>&1) == *"Version  : $VERSITYGW_VERSION"* ]] \
    || die "versitygw does not report $VERSITYGW_VERSION"
  # readelf: binutils, a dependency of the host's gcc.
  if readelf -l "$work/bin/versitygw" | grep -q INTERP; then die "versitygw is not statically linked"; fi
  publish_dir "$work" "$out"
  log "versitygw $VERSITYGW_VERSION: built into $out"
}

# Needs images.sh (archive_path). The pod spec sets its own arguments; the
# image's default serves /data on :7070 with the keys of ROOT_ACCESS_KEY and
# ROOT_SECRET_KEY.
build_versitygw_image() {
  local out; out=$(archive_path "$VERSITYGW_IMAGE")
  [ -f "$out" ] && return
  build_versitygw
  log "image $VERSITYGW_IMAGE: building"
  local root; root=$(mktemp -d)
  mkdir -p "$root/rootfs/usr/local/bin" "$root/rootfs/tmp" "$root/rootfs/data"
  chmod 0755 "$root/rootfs"
  chmod 1777 "$root/rootfs/tmp"
  chown "$VERSITYGW_UID:$VERSITYGW_UID" "$root/rootfs/data"
  cp "$VERSITYGW_BIN" "$root/rootfs/usr/local/bin/versitygw"
  python3 "$SCRIPTS_DIR/lib/oci_archive.py" --rootfs "$root/rootfs" --ref "$VERSITYGW_IMAGE" \
    --entrypoint '["/usr/local/bin/versitygw"]' --cmd '["--port", ":7070", "posix", "/data"]' \
    --user "$VERSITYGW_UID:$VERSITYGW_UID" --out "$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$root"
  log "image $VERSITYGW_IMAGE: built ($(du -h "$out" | cut -f1))"
}
