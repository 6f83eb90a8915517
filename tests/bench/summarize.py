#!/usr/bin/env python3
"""summarize.py - turn the runs of tools/bench.sh into medians, ratios and
a chart.

    summarize.py WORK CHART

Reads WORK/results.csv (test,system,run,value,unit,requests,
request_kinds) and writes WORK/medians.csv, WORK/results.json,
WORK/summary.txt (also printed) and WORK/chart.dat, then runs gnuplot
with tests/bench/chart.gnuplot to draw CHART (PNG).

A ratio is how many times faster nearfs is than the peer: value ratio for
MB/s and IOPS, inverse time ratio for seconds, so above 1 means nearfs
wins.  In the write tests nearfs means write_mode=through; the other two
modes get their own columns.
"""

import csv
import json
import os
import statistics
import subprocess
import sys

TESTS = [
    ("read_cold", "1. cold sequential read"),
    ("read_warm", "2. warm re-read, page cache kept"),
    ("read_dropped", "2. re-read after drop_caches"),
    ("rand4k", "3. random 4 KiB reads, warm"),
    ("ls_first", "4. ls -l of the flat folder, first"),
    ("ls_second", "4. ls -l of the flat folder, second"),
    ("find_first", "4. find+stat of the tree, first"),
    ("find_second", "4. find+stat of the tree, second"),
    ("create_files", "5. creates of 4 KiB files"),
    ("write_big", "5. sequential write"),
    ("in_bucket", "5. until all writes are in the bucket"),
    ("lat_read_cold", "6. cold sequential read, delayed"),
    ("lat_ls_first", "6. ls -l, first, delayed"),
    ("lat_ls_second", "6. ls -l, second, delayed"),
    ("lat_find_first", "6. find+stat, first, delayed"),
    ("lat_find_second", "6. find+stat, second, delayed"),
]
SYSTEMS = ["nearfs", "nearfs-preload", "nearfs-passthrough", "nearfs64",
           "nearfs-back", "nearfs-around", "rclone", "s3fs", "direct",
           "direct-range4m", "local", "bindfs"]
PEERS = ["rclone", "s3fs", "direct", "direct-range4m", "local", "bindfs"]
HIGHER_IS_BETTER = {"MB/s", "IOPS"}


def load(path):
    runs = {}
    units = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            system = row["system"]
            if system == "nearfs-through":
                system = "nearfs"
            key = (row["test"], system)
            try:
                value = float(row["value"])
            except ValueError:
                continue
            if value != value:      # nan: the data never arrived
                continue
            entry = runs.setdefault(key, {"values": [], "requests": [],
                                          "kinds": []})
            entry["values"].append(value)
            if row["requests"]:
                entry["requests"].append(int(row["requests"]))
                entry["kinds"].append(row["request_kinds"])
            units[row["test"]] = row["unit"]
    return runs, units


def medians(runs):
    out = {}
    for key, entry in runs.items():
        item = {"median": statistics.median(entry["values"]),
                "runs": entry["values"]}
        if entry["requests"]:
            item["requests"] = statistics.median(entry["requests"])
            item["request_kinds"] = entry["kinds"]
        out[key] = item
    return out


def speedup(ref, other, unit):
    """How many times faster ref is than other."""
    if not ref or not other:
        return None
    return ref / other if unit in HIGHER_IS_BETTER else other / ref


def fmt(value):
    if value is None:
        return "-"
    if value >= 100:
        return "%.0f" % value
    if value >= 1:
        return "%.2f" % value
    return "%.3f" % value


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def present(med, systems):
    return [s for s in systems if any(k[1] == s for k in med)]


def build_report(med, units, machine):
    systems = present(med, SYSTEMS)
    peers = present(med, PEERS)
    value_rows, ratio_rows, request_rows = [], [], []
    for test, label in TESTS:
        if test not in units:
            continue
        unit = units[test]
        cells = [med.get((test, s), {}).get("median") for s in systems]
        value_rows.append([test, unit] + [fmt(c) for c in cells])
        reqs = [med.get((test, s), {}).get("requests") for s in systems]
        if any(r is not None for r in reqs):
            request_rows.append([test] + ["-" if r is None else "%.0f" % r
                                          for r in reqs])
        for ref in ("nearfs", "nearfs-preload", "nearfs-passthrough",
                    "nearfs-back", "nearfs-around", "nearfs64"):
            if (test, ref) not in med:
                continue
            r = med[(test, ref)]["median"]
            ratios = [speedup(r, med.get((test, p), {}).get("median"), unit)
                      for p in peers]
            ratio_rows.append([test, ref] + [fmt(x) for x in ratios])
    text = [machine.strip(), "",
            "Medians (MB/s and IOPS: higher is better; s: lower is better)",
            table(value_rows, ["test", "unit"] + systems), "",
            "Ratios: times faster nearfs is than the peer (>1: nearfs wins)",
            table(ratio_rows, ["test", "nearfs as"] + peers), "",
            "Origin requests per measurement (median, counted at the proxy)",
            table(request_rows, ["test"] + systems)]
    return "\n".join(text) + "\n", systems


def write_chart_data(path, med, units, systems):
    """Speed relative to nearfs, one row per test, one column per system."""
    with open(path, "w") as f:
        f.write("test " + " ".join(systems) + "\n")
        for test, _ in TESTS:
            ref = med.get((test, "nearfs"), {}).get("median")
            if test not in units or not ref:
                continue
            cells = []
            for s in systems:
                v = med.get((test, s), {}).get("median")
                ratio = speedup(v, ref, units[test]) if v else None
                cells.append("?" if ratio is None else "%.4g" % ratio)
            f.write("%s %s\n" % (test, " ".join(cells)))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: summarize.py WORK CHART")
    work, chart = sys.argv[1], sys.argv[2]
    runs, units = load(os.path.join(work, "results.csv"))
    med = medians(runs)
    machine_path = os.path.join(work, "machine.txt")
    machine = open(machine_path).read() if os.path.exists(machine_path) \
        else ""
    report, systems = build_report(med, units, machine)
    with open(os.path.join(work, "summary.txt"), "w") as f:
        f.write(report)
    print(report)

    with open(os.path.join(work, "medians.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["test", "system", "unit", "median", "runs",
                      "requests_median"])
        for (test, system), item in sorted(med.items()):
            out.writerow([test, system, units[test], item["median"],
                          " ".join("%g" % v for v in item["runs"]),
                          item.get("requests", "")])
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"machine": machine.strip().splitlines(),
                   "units": units,
                   "results": [dict(test=t, system=s, **item)
                               for (t, s), item in sorted(med.items())]},
                  f, indent=1)

    data = os.path.join(work, "chart.dat")
    write_chart_data(data, med, units, systems)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "chart.gnuplot")
    subprocess.run(["gnuplot", "-e", "datafile='%s'; outfile='%s'; "
                    "columns=%d" % (data, chart, len(systems) + 1), script],
                   check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
