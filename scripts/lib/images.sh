# Build the cluster's images from Debian packages (no registry) and load them
# into containerd's k8s.io namespace.
# shellcheck shell=bash
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# The object store's image (build_versitygw_image, VERSITYGW_IMAGE).
# shellcheck source=build-versitygw.sh
. "$(dirname "${BASH_SOURCE[0]}")/build-versitygw.sh"

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE_DIR=$CACHE_DIR/images
# Same uid/gid as the official mariadb image, so one pod spec (runAsUser 999)
# fits both the official and the locally built images.
MYSQL_UID=999

# The cached archive of an image spec: REF, or REF=SUITE for a MariaDB image,
# whose archive is keyed by its package list too, so a changed list builds
# the image again.
archive_path() {
  local spec=$1 name
  name=$(echo "${spec%%=*}" | tr '/:' '__')
  [ "$spec" = "${spec%%=*}" ] || name+=-$(echo "$MARIADB_PACKAGES" | sha256sum | cut -c1-12)
  echo "$IMAGE_DIR/$name.tar"
}

build_pause_image() {
  local out; out=$(archive_path "$PAUSE_IMAGE")
  [ -f "$out" ] && return
  log "image $PAUSE_IMAGE: building"
  local root; root=$(mktemp -d)
  cat > "$root/pause.c" <<'C'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_term(int s) { (void)s; _exit(0); }
static void on_chld(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction term = {0}, chld = {0};
  term.sa_handler = on_term;
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  chld.sa_handler = on_chld;
  chld.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &chld, NULL);
  for (;;) pause();
}
C
  mkdir -p "$root/rootfs"
  gcc -Os -static -o "$root/rootfs/pause" "$root/pause.c"
  strip "$root/rootfs/pause"
  python3 "$SCRIPTS_DIR/lib/oci_archive.py" --rootfs "$root/rootfs" --ref "$PAUSE_IMAGE" \
    --entrypoint '["/pause"]' --cmd '[]' --user 65535:65535 --out "$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$root"
}

# MariaDB server image from a Debian suite: $MARIADB_PACKAGES (server,
# client, backup, socat, bash, coreutils, the metrics exporter), and nothing
# that depends on an entrypoint.
build_mariadb_image() {
  local ref=${1%%=*} suite=${1#*=} out rootfs
  out=$(archive_path "$1")
  [ -f "$out" ] && return
  rm -f "${out%-*}"-*.tar  # built from an earlier package list
  rootfs=$IMAGE_DIR/rootfs-$suite
  remove_tree "$rootfs"
  log "image $ref: debootstrap $suite (about 1 min)"
  with_heartbeat "debootstrapping $suite" \
    debootstrap --variant=minbase "$suite" "$rootfs" "$DEBIAN_MIRROR" > "$IMAGE_DIR/debootstrap-$suite.log" 2>&1 \
    || die "debootstrap $suite failed, see $IMAGE_DIR/debootstrap-$suite.log"
  log "image $ref: installing MariaDB packages"
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/01-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
  chroot "$rootfs" /bin/sh -euc "
    groupadd --system --gid $MYSQL_UID mysql
    useradd --system --uid $MYSQL_UID --gid mysql --home-dir /var/lib/mysql --shell /usr/sbin/nologin mysql
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $MARIADB_PACKAGES
    apt-get clean; rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
    rm -rf /var/lib/mysql/* && mkdir -p /run/mysqld && chown mysql:mysql /var/lib/mysql /run/mysqld
  " > "$IMAGE_DIR/apt-$suite.log" 2>&1 || die "package install for $ref failed, see $IMAGE_DIR/apt-$suite.log"
  python3 "$SCRIPTS_DIR/lib/oci_archive.py" --rootfs "$rootfs" --ref "$ref" --cmd '["/bin/bash"]' --out "$out.tmp"
  mv "$out.tmp" "$out"
  remove_tree "$rootfs"
  log "image $ref: built ($(du -h "$out" | cut -f1))"
}

# The MariaDB images take minutes, mostly downloads and dpkg: they build in
# the background, beside each other and beside the binaries (cmd_up starts
# them before phase 2).
MARIADB_IMAGE_BUILDS=()
start_mariadb_images() {
  [ "${#MARIADB_IMAGE_BUILDS[@]}" -eq 0 ] || return 0
  mkdir -p "$IMAGE_DIR"
  local spec
  for spec in "${MARIADB_IMAGES[@]}"; do
    build_mariadb_image "$spec" &
    MARIADB_IMAGE_BUILDS+=("$!")
  done
}

build_images() {
  start_mariadb_images
  build_pause_image
  if object_store_wanted; then build_versitygw_image; fi
  local pid failed=0
  for pid in "${MARIADB_IMAGE_BUILDS[@]}"; do wait "$pid" || failed=1; done
  MARIADB_IMAGE_BUILDS=()
  [ "$failed" -eq 0 ] || die "a MariaDB image did not build (its log is named above)"
}

archive_digest() {
  tar -xOf "$1" index.json | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["digest"])'
}

# Import every cached archive that containerd does not hold at the same
# digest (a rebuilt archive replaces the image under its reference).
load_images() {
  local have ref spec archive specs=("$PAUSE_IMAGE" "${MARIADB_IMAGES[@]}")
  have=$(ctr -n k8s.io images ls | awk 'NR > 1 {print $1, $3}')
  if object_store_wanted; then specs+=("$VERSITYGW_IMAGE"); fi
  for spec in "${specs[@]}"; do
    ref=${spec%%=*}
    archive=$(archive_path "$spec")
    grep -qxF "$ref $(archive_digest "$archive")" <<<"$have" && continue
    log "image $ref: loading into containerd"
    ctr -n k8s.io images import "$archive" >/dev/null
  done
}
