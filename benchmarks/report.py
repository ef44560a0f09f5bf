"""The Markdown table of a benchmark run, and graphc's ratios to the peers measured in the same run."""
from benchmarks.systems import PEERS

ORDER = ("graphc", "numpy", "jax", "pytensor-numba", "pytensor-c")


def seconds(value):
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.2f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def row_text(row):
    cold, warm = row["cold"], row["warm"]
    failed = cold.get("failed") or warm.get("failed")
    if failed:
        return f"| {row['workload']} | {row['system']} | failed: {failed} |" + " |" * 8
    cells = [row["workload"], row["system"], warm.get("threads", "-"), seconds(warm.get("import_s")),
             seconds(cold.get("first_call_s")),
             seconds(warm.get("first_call_s")) + (" (after a miss)" if warm.get("retried_after_miss") else ""),
             seconds(warm.get("median_s")),
             seconds(warm.get("min_s")), warm.get("throughput", ""), f"{warm.get('error', float('nan')):.1e}"]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def rerun_and_load(rows):
    """The rerun case (a second program right after the first, not waiting for background builds) beside
    the waited-for warm run; under a CPU-bound neighbour, the step with its threads against one thread."""
    lines = ["", "Rerun (started right after the cold program) and under a CPU-bound neighbour:", "",
             "| workload | system | warm start: rerun / waited | per call: rerun / waited | per call loaded: threads / one thread | ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        rerun, warm, loaded, single = r.get("rerun", {}), r["warm"], r.get("loaded", {}), r.get("loaded_one_thread", {})
        ratio = f"{loaded['median_s'] / single['median_s']:.2f}x" if "median_s" in loaded and "median_s" in single else "-"
        lines.append(f"| {r['workload']} | {r['system']} | {seconds(rerun.get('first_call_s'))} / {seconds(warm.get('first_call_s'))} | "
                     f"{seconds(rerun.get('median_s'))} / {seconds(warm.get('median_s'))} | "
                     f"{seconds(loaded.get('median_s'))} / {seconds(single.get('median_s'))} | {ratio} |")
    return lines


def median(rows, workload, system):
    for row in rows:
        if row["workload"] == workload and row["system"] == system and "median_s" in row["warm"]:
            return row["warm"]["median_s"]
    return None


def ratios(rows):
    """Per workload: each peer's median divided by graphc's (> 1 means graphc is faster)."""
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    peers = [p for p in PEERS + ("numpy",) if any(r["system"] == p for r in rows)]
    lines = ["| workload | " + " | ".join(f"{p} / graphc" for p in peers) + " |", "|---|" + "---|" * len(peers)]
    for w in workloads:
        ours = median(rows, w, "graphc")
        cells = []
        for p in peers:
            theirs = median(rows, w, p)
            cells.append(f"{theirs / ours:.2f}x" if ours and theirs else "-")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return lines


def graphc_facts(rows):
    """graphc's memory plan (planned peak bytes beside the naive plan's) and where each warm kernel came from."""
    lines = ["", "graphc: memory plan and warm-start source", "",
             "| workload | planned peak | naive plan | warm start kernel from |", "|---|---|---|---|"]
    for row in rows:
        if row["system"] != "graphc" or "failed" in row["warm"]:
            continue
        memory, cache = row["warm"].get("memory"), row["warm"].get("cache", {})
        planned, naive = ((f"{memory['planned_peak_bytes'] / 1e6:.2f} MB", f"{memory['naive_bytes'] / 1e6:.2f} MB")
                          if isinstance(memory, dict) else ("-", "-"))
        lines.append(f"| {row['workload']} | {planned} | {naive} | {cache.get('status', '?')}: {cache.get('kernel', '?')} |")
    return lines


def markdown(report):
    m = report["machine"]
    rows = sorted(report["rows"], key=lambda r: (r["workload"], ORDER.index(r["system"])))
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}"
             + (" (quick run)" if report.get("quick") else ""), "",
             "| workload | system | threads | import | cold compile + first call | warm start | per call (median) "
             "| per call (min) | throughput | error |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row_text(r) for r in rows]
    lines += ["", "Peer time / graphc time per call (median; above 1 means graphc is faster):", ""] + ratios(rows)
    lines += graphc_facts(rows)
    lines += rerun_and_load(rows)
    if report.get("skipped"):
        lines += ["", "Not installed, skipped: " + ", ".join(report["skipped"])]
    return "\n".join(lines) + "\n"
