#!/usr/bin/env python3
"""What a file, and a GB, costs to load with glueless on Lambda or Fargate, against AWS Glue.

    python3 docs/cost_model.py            # the table in docs/operations.md
    python3 docs/cost_model.py --help     # every input: throughput, sizes, prices, runtimes

Standard library only. Every number is an input with a default; the defaults are the
throughput measured by benches/pipeline.sh (docs/performance.md, "The pipeline": one run on a 2-vCPU box,
2026-11-27, PostgreSQL 15 as the warehouse) and us-east-1 list prices (see docs/operations.md
for their sources and date).

The model, per file:

- glueless billed seconds = the measured end-to-end seconds of the file (transform, stage and
  warehouse load; the function or task waits for the load and is billed for it). The same
  seconds are used for any runtime with at least one vCPU: the transform barely uses a second
  core (1.38 s on one thread, 1.33 s on two, docs/performance.md), the load is waiting.
- Lambda: memory GB x seconds x the GB-second price, plus the request price once per
  invocation (a batch of files shares one). Billed per millisecond, no minimum.
- Fargate, a task per file: (vCPU x vCPU-hour price + GB x GB-hour price) x (start-up + seconds),
  at least one minute (Fargate's minimum charge). The start-up (image pull, network interface)
  is billed; its default here is an assumption, not a measurement.
- Fargate, a long-running worker (`glueless worker`) that is kept busy: the same rate over the
  seconds only (no start-up, no minimum; idle time is extra).
- Glue: DPUs x max(60 s, seconds) x the DPU-hour price per job run (Glue 2.0+ Spark: 2 DPU at
  least, billed per second after a 1-minute minimum; a Python shell job: 0.0625 DPU, also a
  1-minute minimum). Glue's own run time was not measured: by default it is taken equal to
  glueless's, which favours Glue (Spark's start-up is not counted), and the 1-minute minimum
  dominates anyway.
"""

from __future__ import annotations

import argparse
import sys


def args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    m = p.add_argument_group("measured throughput (benches/pipeline.sh, 2 vCPU, PostgreSQL warehouse)")
    m.add_argument("--large-file-bytes", type=float, default=88.4e6, help="the large file (1e6 rows): %(default).0f")
    m.add_argument("--large-file-seconds", type=float, default=11.4,
                   help="its billed seconds; measured end to end (transform 0.9 s, the rest the load): %(default)s")
    m.add_argument("--small-files", type=int, default=200, help="files in the burst: %(default)s")
    m.add_argument("--small-file-bytes", type=float, default=88.4e3, help="one small file (1,000 rows): %(default).0f")
    m.add_argument("--small-burst-seconds", type=float, default=8.6,
                   help="billed seconds of the burst; measured end to end: %(default)s")
    m.add_argument("--small-files-per-run", type=int, default=20,
                   help="small files per Lambda invocation or batched Glue run (the benchmark loads batches of 20): %(default)s")
    r = p.add_argument_group("runtimes (defaults: infra/template.yaml's)")
    r.add_argument("--lambda-memory-mb", type=float, default=2048, help="%(default)s")
    r.add_argument("--fargate-vcpu", type=float, default=2, help="%(default)s")
    r.add_argument("--fargate-gb", type=float, default=4, help="%(default)s")
    r.add_argument("--fargate-startup-seconds", type=float, default=30,
                   help="billed start-up of a task (assumed, not measured): %(default)s")
    r.add_argument("--glue-dpu", type=float, default=2, help="Glue Spark job DPUs (2 is the minimum): %(default)s")
    r.add_argument("--glue-python-dpu", type=float, default=0.0625, help="Glue Python shell DPUs: %(default)s")
    r.add_argument("--glue-seconds-factor", type=float, default=1.0,
                   help="Glue's run time as a multiple of glueless's (not measured): %(default)s")
    c = p.add_argument_group("prices, USD, us-east-1 list prices")
    c.add_argument("--lambda-gb-second", type=float, default=0.0000166667, help="x86: %(default)s")
    c.add_argument("--lambda-per-million-requests", type=float, default=0.20, help="%(default)s")
    c.add_argument("--fargate-vcpu-hour", type=float, default=0.04048, help="%(default)s")
    c.add_argument("--fargate-gb-hour", type=float, default=0.004445, help="%(default)s")
    c.add_argument("--glue-dpu-hour", type=float, default=0.44, help="%(default)s")
    c.add_argument("--glue-minimum-seconds", type=float, default=60, help="%(default)s")
    c.add_argument("--fargate-minimum-seconds", type=float, default=60, help="%(default)s")
    return p.parse_args(argv)


def rates(a: argparse.Namespace) -> tuple[float, float]:
    """USD per second of the Lambda function and of the Fargate task."""
    lam = a.lambda_memory_mb / 1024 * a.lambda_gb_second
    fargate = (a.fargate_vcpu * a.fargate_vcpu_hour + a.fargate_gb * a.fargate_gb_hour) / 3600
    return lam, fargate


def glue_run(a: argparse.Namespace, dpu: float, seconds: float, files: int) -> float:
    """USD per file of a Glue job run that carries `files` files of `seconds` each."""
    run_s = max(a.glue_minimum_seconds, seconds * a.glue_seconds_factor * files)
    return dpu * run_s / 3600 * a.glue_dpu_hour / files


def large(a: argparse.Namespace) -> list[tuple[str, float]]:
    lam, fargate = rates(a)
    s = a.large_file_seconds
    return [
        (f"Lambda {a.lambda_memory_mb:.0f} MB", lam * s + a.lambda_per_million_requests / 1e6),
        (f"Fargate task, {a.fargate_vcpu:g} vCPU {a.fargate_gb:g} GB (+{a.fargate_startup_seconds:g} s start)",
         fargate * max(a.fargate_minimum_seconds, a.fargate_startup_seconds + s)),
        (f"Fargate worker kept busy, {a.fargate_vcpu:g} vCPU {a.fargate_gb:g} GB", fargate * s),
        (f"Glue Spark job, {a.glue_dpu:g} DPU", glue_run(a, a.glue_dpu, s, 1)),
        (f"Glue Python shell, {a.glue_python_dpu:g} DPU", glue_run(a, a.glue_python_dpu, s, 1)),
    ]


def small(a: argparse.Namespace) -> list[tuple[str, float]]:
    lam, fargate = rates(a)
    s = a.small_burst_seconds / a.small_files
    n = a.small_files_per_run
    return [
        (f"Lambda {a.lambda_memory_mb:.0f} MB, {n} files per invocation",
         lam * s + a.lambda_per_million_requests / 1e6 / n),
        (f"Fargate worker kept busy, {a.fargate_vcpu:g} vCPU {a.fargate_gb:g} GB", fargate * s),
        (f"Glue Spark job, {a.glue_dpu:g} DPU, one run per file", glue_run(a, a.glue_dpu, s, 1)),
        (f"Glue Spark job, {a.glue_dpu:g} DPU, one run per {n} files", glue_run(a, a.glue_dpu, s, n)),
        (f"Glue Python shell, {a.glue_python_dpu:g} DPU, one run per file", glue_run(a, a.glue_python_dpu, s, 1)),
        (f"Glue Python shell, {a.glue_python_dpu:g} DPU, one run per {n} files",
         glue_run(a, a.glue_python_dpu, s, n)),
    ]


def main(argv: list[str]) -> int:
    a = args(argv)
    small_s = a.small_burst_seconds / a.small_files
    cases = [
        (f"One large file: {a.large_file_bytes / 1e6:g} MB, {a.large_file_seconds:g} s per file",
         a.large_file_bytes, large(a)),
        (f"Small files: {a.small_file_bytes / 1e3:g} kB, {small_s:.3f} s per file "
         f"({a.small_files} in {a.small_burst_seconds:g} s)", a.small_file_bytes, small(a)),
    ]
    width = max(len(name) for _, _, rows in cases for name, _ in rows)
    out = []
    for title, size, rows in cases:
        out.append(title)
        out.append(f"  {'runtime':<{width}}  {'USD per 1,000 files':>19}  {'USD per GB':>10}  {'x Lambda':>8}")
        base = rows[0][1]
        for name, per_file in rows:
            per_gb = per_file * 1e9 / size
            out.append(f"  {name:<{width}}  {per_file * 1000:>19.4f}  {per_gb:>10.4f}  {per_file / base:>8.1f}")
        out.append("")
    print("\n".join(out).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
