#!/usr/bin/env python3
"""Median cost of one 4 KiB write + fdatasync in a directory: the floor of any durable write.

Usage: fsync_probe.py DIR [N]   (prints JSON {"fsync_median_ms": ..., "p90_ms": ...})
"""
import json, os, statistics, sys, time

d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
path = os.path.join(d, "fsync-probe.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
lat = []
buf = b"x" * 4096
try:
    for _ in range(n):
        t = time.perf_counter()
        os.write(fd, buf)
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1000)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
print(json.dumps({"fsync_median_ms": round(statistics.median(lat), 3),
                  "p90_ms": round(lat[int(0.9 * len(lat))], 3), "n": n}))
