#!/usr/bin/env python3
"""Summarise one benches/run.sh result directory as a markdown table with ratios.

    summarize.py DIR [PREFIX]   (PREFIX "rust-" for the Rust load generator's results)"""
import json, os, sys

out = sys.argv[1]
load = lambda n: json.load(open(os.path.join(out, n)))
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
rl, mf = load(prefix + "runledger.json"), load(prefix + "mlflow.json")
fs = [load(f)["fsync_median_ms"] for f in ("fsync-before.json", "fsync-after.json")]
rss = open(os.path.join(out, "runledger-peak-rss-kb")).read().strip() if os.path.exists(os.path.join(out, "runledger-peak-rss-kb")) else "?"
by = lambda rows: {r["phase"] + f" c{r['concurrency']}": r for r in rows["rows"]}
a, b = by(rl), by(mf)
print(f"fsync median: {fs[0]} ms before, {fs[1]} ms after; 8-client durable cap = 8/fsync "
      f"= {8 / (max(fs) / 1000):,.0f}..{8 / (min(fs) / 1000):,.0f} req/s")
print(f"RunLedger peak RSS: {int(rss) / 1024:.0f} MB" if rss != "?" else "RunLedger peak RSS: ?")
print()
print("| phase | RunLedger items/s | RunLedger req/s | p50 ms | p99 ms | MLflow items/s | MLflow req/s | MLflow p50 ms | ratio (items/s) | client cpu % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for k, r in a.items():
    m = b.get(k, {})
    ri, mi = r.get("items_per_s") or r["ops_per_s"], (m.get("items_per_s") or m.get("ops_per_s"))
    ratio = f"{ri / mi:.1f}x" if mi else "-"
    print(f"| {k} | {ri:,.0f} | {r['req_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
          f"{(mi or 0):,.0f} | {m.get('req_per_s', 0):,.0f} | {m.get('p50_ms', '-')} | {ratio} | {r['client_cpu_pct']} |")
for name, res in (("RunLedger", rl), ("MLflow", mf)):
    if res["errors"] or res["failed_checks"]:
        print(f"\n{name}: {len(res['errors'])} errors, failed checks: {res['failed_checks'][:3]}")
