#!/usr/bin/env python3
"""Pack a root filesystem directory into a single-layer OCI image archive.

The archive imports with `ctr -n k8s.io images import` under the exact
reference given, so the local cluster can use images without a registry.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile

_EXCLUDES = ("./proc/*", "./sys/*", "./dev/*", "./run/*", "./tmp/*")


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _blob(data):
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest(), raw


def build(rootfs, ref, out, config):
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        layer = os.path.join(tmp, "layer.tar")
        # GNU tar keeps ownership, hard links and xattrs exactly as on disk.
        cmd = ["tar", "-C", rootfs, "--numeric-owner", "--xattrs", "-cf", layer]
        cmd += [f"--exclude={pattern}" for pattern in _EXCLUDES]
        subprocess.run(cmd + ["."], check=True)
        layer_digest = _sha256_file(layer)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        }
        config_digest, config_raw = _blob(image_config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": f"sha256:{config_digest}", "size": len(config_raw)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": f"sha256:{layer_digest}", "size": os.path.getsize(layer)}],
        }
        manifest_digest, manifest_raw = _blob(manifest)
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}", "size": len(manifest_raw),
                "annotations": {"io.containerd.image.name": ref,
                                "org.opencontainers.image.ref.name": ref},
            }],
        }
        with tarfile.open(out, "w") as archive:
            def add_bytes(name, data):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add_bytes("index.json", json.dumps(index).encode())
            add_bytes(f"blobs/sha256/{config_digest}", config_raw)
            add_bytes(f"blobs/sha256/{manifest_digest}", manifest_raw)
            archive.add(layer, arcname=f"blobs/sha256/{layer_digest}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--ref", required=True, help="fully qualified image reference")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cmd", default='["/bin/sh"]', help="JSON list")
    parser.add_argument("--entrypoint", help="JSON list")
    parser.add_argument("--user")
    args = parser.parse_args()
    config = {"Cmd": json.loads(args.cmd),
              "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.user:
        config["User"] = args.user
    build(args.rootfs, args.ref, args.out, config)


if __name__ == "__main__":
    main()
