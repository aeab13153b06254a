"""Render time of a large job: schema.apply (defaults, types, CEL) plus every manifest of a
64-pod x 8-NPU Ascend job (static rank table of 512 devices, so the table is built too).

    .venv/bin/python benchmarks/render.py [--pods 64] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from densenet_operator import DEFAULT_TRAINER_IMAGE, schema
from densenet_operator.job import Job
from densenet_operator.render import render


def ascend_job(pods: int) -> dict:
    servers = [
        {
            "serverId": f"10.10.{i // 250}.{i % 250 + 1}",
            "devices": [
                {"deviceId": str(d), "deviceIp": f"192.168.{d}.{i % 250 + 1}"} for d in range(8)
            ],
        }
        for i in range(pods)
    ]
    return {
        "apiVersion": schema.API_VERSION,
        "kind": schema.KIND,
        "metadata": {"name": "dn121-64x8", "namespace": "bench"},
        "spec": {
            "replicas": pods,
            "accelerator": {"type": "ascend", "perPod": 8},
            "dataset": {"format": "folder", "path": "/data"},
            "ascend": {"source": "static", "servers": servers},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=64)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    obj = ascend_job(args.pods)
    render(Job.from_object(schema.apply(obj)), DEFAULT_TRAINER_IMAGE)  # warm caches
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        manifests = render(Job.from_object(schema.apply(obj)), DEFAULT_TRAINER_IMAGE)
        times.append(time.perf_counter() - start)
    print(
        f"render {args.pods} pods x 8 NPUs ({len(manifests.objects())} objects): "
        f"median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
