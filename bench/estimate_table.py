#!/usr/bin/python3
"""Prints bench/estimate_bench.sh's results as a markdown table.

  estimate_table.py RESULTS.jsonl

Each line of RESULTS.jsonl is one job: {"name", "data", "default": the
EstimateReply made with the default cost table, "calibrated": the one made
with the worker's measured table, "job": the finished Job}. "actual" is the
job's compute_s: the worker-seconds the coordinator charged it, which the
compute limit is checked against. Ratios are estimate / actual.
"""
import json
import statistics
import sys

STAGES = [("TASK_KIND_GENERATE_FEATURES", "features_s"), ("TASK_KIND_TRAIN", "train_s"),
          ("TASK_KIND_QUANTIZE_EVALUATE", "evaluate_s")]


def task_seconds(job, kind):
    for task in job.get("tasks", []):
        if task.get("kind") == kind and task.get("finished_ms"):
            return (int(task["finished_ms"]) - int(task.get("started_ms", task["finished_ms"]))) / 1000
    return 0.0


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| job | data | MACs | est. default (s) | est. calibrated (s) | actual (s) "
          "| ratio calibrated | ratio default | features est/actual | train est/actual "
          "| evaluate est/actual |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios, default_ratios = [], []
    for row in rows:
        job, cal, dflt = row["job"], row["calibrated"], row["default"]
        actual = float(job.get("compute_s", 0))
        state = job.get("state", "")
        if state != "JOB_STATE_SUCCEEDED" or actual <= 0:
            print(f"| {row['name']} | {row['data']} | | | | {state} | | | | | |")
            continue
        est = float(cal.get("compute_s", 0))
        est_default = float(dflt.get("compute_s", 0))
        ratios.append(est / actual)
        default_ratios.append(est_default / actual)
        stages = []
        for kind, field in STAGES:
            stages.append(f"{float(cal.get(field, 0)):.1f} / {task_seconds(job, kind):.1f}")
        print(f"| {row['name']} | {row['data']} | {int(cal.get('macs', 0)) / 1e6:.2f} M "
              f"| {est_default:.1f} | {est:.1f} | {actual:.1f} | {est / actual:.2f} "
              f"| {est_default / actual:.2f} | " + " | ".join(stages) + " |")
    if ratios:
        within = sum(1 for r in ratios if 0.75 <= r <= 1.25)
        print()
        print(f"calibrated: {within} of {len(ratios)} within ±25 %, ratio median "
              f"{statistics.median(ratios):.2f}, range {min(ratios):.2f}–{max(ratios):.2f}; "
              f"default table: median {statistics.median(default_ratios):.2f}, range "
              f"{min(default_ratios):.2f}–{max(default_ratios):.2f}")
        cost_source = rows[0]["calibrated"].get("cost_source", "")
        print(f"calibrated table: {cost_source}")


if __name__ == "__main__":
    main()
