"""OCI image-layout archives of one static binary, which `ctr images import` takes: the real
node's sandbox image (realnode.load_pause) and the kind node image's control-plane, etcd,
CoreDNS and pause images (hack/kind/node-image.sh runs `python3 -m devcluster.ociarchive`).
Standard library only: the kind script runs it with the host's python3, outside the venv."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def oci_archive(name: str, binary: bytes, path: str, user: str = "65535:65535") -> bytes:
    """An OCI image-layout tar of one static binary at `path` (its entrypoint, and on PATH
    when under a bin directory), run as `user`, named `name` for `ctr images import`."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode, info.mtime = len(binary), 0o755, 0
        tar.addfile(info, io.BytesIO(binary))
    raw = layer.getvalue()
    compressed = gzip.compress(raw, mtime=0)
    image_config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": [path], "User": user, "Env": [PATH_ENV]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", image_config),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", compressed)],
    }).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [{
            **_descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    }  # fmt: skip
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        files = {
            "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
            "index.json": json.dumps(index).encode(),
            **{f"blobs/sha256/{_digest(b)[7:]}": b for b in (compressed, image_config, manifest)},
        }
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m devcluster.ociarchive")
    parser.add_argument("name", help="image name, e.g. registry.k8s.io/kube-apiserver:v1.36.3")
    parser.add_argument("binary", type=Path)
    parser.add_argument("path", help="where the binary lies in the image (its entrypoint)")
    parser.add_argument("output", type=Path)
    parser.add_argument("--user", default="0:0")
    args = parser.parse_args(argv)
    args.output.write_bytes(oci_archive(args.name, args.binary.read_bytes(), args.path, args.user))


if __name__ == "__main__":
    main()
