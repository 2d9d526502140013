"""Reads the benches' `RESULT name=... key=value ...` lines on stdin and prints bench/run's tables
(Markdown): tinbao beside the tools people use today, with ratios; and the cost of incremental
work at 1x and 10x the stored items."""

import sys


def parse(lines):
    results = []
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        results.append(fields)
    return results


def find(results, name, **tags):
    """The last result of that name whose tags match."""
    for r in reversed(results):
        if r.get("name") == name and all(r.get(k) == v for k, v in tags.items()):
            return r
    return None


def num(r, key):
    try:
        return float(r[key])
    except (TypeError, KeyError, ValueError):
        return None


def wall(r):
    v = num(r, "wall_s")
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def rate(r):
    v = num(r, "throughput")
    return "–" if v is None else f"{v:,.0f} {r.get('unit', '')}"


def rss(r):
    v = num(r, "rss_mb")
    if v is None:
        return "–"
    return f"{v:.0f}" + ("" if r.get("rss_own", "true") == "true" else "*")


def ratio(a, b):
    x, y = num(a, "throughput"), num(b, "throughput")
    if not x or not y:
        return "–"
    return f"{x / y:.2f}×"


def main():
    results = parse(sys.stdin)
    one = {"stored": "50000"}
    rows = [
        # (workload, tinbao result, other tool's label, other result)
        ("cold poll, 1,000 feeds × 50 items (varied text)",
         find(results, "ingest_cold", text="varied", **one),
         "reader (same 1,000 feeds)", find(results, "reader_cold")),
        ("cold poll, 1,000 feeds × 50 items (varied text)",
         find(results, "ingest_cold", text="varied", **one),
         "rss2email, 1 mail/item ({} feeds)", find(results, "r2e_cold")),
        ("run --once --all, cold: poll + cluster + publish, 1,000 × 50",
         find(results, "once_cold", text="varied", **one),
         "reader (same 1,000 feeds)", find(results, "reader_cold")),
        ("cold poll, 1,000 × 50 (36-phrase text)",
         find(results, "ingest_cold", text="phrases", **one), "", None),
        ("cluster the 50,000 new items (varied text)",
         find(results, "cluster_cold", text="varied", **one), "", None),
        ("cluster the 50,000 new items (36-phrase text)",
         find(results, "cluster_cold", text="phrases", **one), "", None),
        ("unchanged re-poll, 1,000 feeds (all 304)",
         find(results, "ingest_unchanged", **one),
         "reader (same 1,000 feeds)", find(results, "reader_unchanged")),
        ("unchanged re-poll, 1,000 feeds (all 304)",
         find(results, "ingest_unchanged", **one),
         "rss2email ({} feeds)", find(results, "r2e_unchanged")),
        ("regenerate all merged feeds (publish bench)",
         find(results, "regen_all"), "", None),
        ("serve /feeds/all.xml (wrk -t2 -c64 -d10s)",
         find(results, "serve_tinbao"), "nginx, same file", find(results, "serve_nginx")),
        ("match 100,000 items × 50,000 queries (broad)",
         find(results, "match_broad", queries="50000"), "", None),
        ("match 100,000 items × 50,000 queries (specific)",
         find(results, "match_specific", queries="50000"), "", None),
        ("build + send {} digests to smtp-sink",
         find(results, "digest_build_send"),
         "smtp-source, raw SMTP, same count", find(results, "smtp_source")),
    ]
    print("| workload | tinbao wall (s) | tinbao throughput | tinbao peak RSS (MB) "
          "| other tool | its wall (s) | its throughput | its peak RSS (MB) | tinbao / other |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for label, t, other_label, o in rows:
        if t is None and o is None:
            continue
        if "{}" in label:
            label = label.format(f"{int(num(t, 'count') or 0):,}" if t else "")
        if "{}" in other_label:
            other_label = other_label.format(o.get("feeds", "?") if o else "?")
        t = t or {}
        cells = [label, wall(t), rate(t), rss(t)]
        if other_label:
            o = o or {}
            cells += [other_label, wall(o), rate(o), rss(o), ratio(t, o)]
        else:
            cells += ["", "", "", "", ""]
        print("| " + " | ".join(cells) + " |")
    print()
    print("Ratios compare throughput (higher is better for tinbao above 1). RSS marked * may include "
          "the bench parent's (no /usr/bin/time). Serving RSS: the daemon's VmHWM; nginx's: master + "
          "workers. Regeneration and matching run inside the bench process: their RSS is that "
          "process's.")

    ten = {"stored": "500000"}
    steps = [
        ("cold poll (all items new)", "ingest_cold"),
        ("cluster all new items (cluster_new_items)", "cluster_cold"),
        ("unchanged re-poll (1,000 × 304)", "ingest_unchanged"),
        ("regenerate all merged feeds", "inc_regen_all"),
        ("poll all, one feed with 1 new item", "inc_poll_one_new"),
        ("cluster the 1 new item", "inc_cluster_one_new"),
        ("regenerate the merged feeds it touches", "inc_regen_changed"),
    ]
    scale = [(label, find(results, n, text="varied", **one), find(results, n, text="varied", **ten))
             for label, n in steps]
    if any(b for _, _, b in scale):
        print()
        print("Cost against stored items (1,000 feeds; 50 vs 500 items each, i.e. a 10× longer "
              "history; incremental steps in one process, as the daemon runs them):")
        print()
        print("| step | 50,000 stored: wall (s) | CPU (s) | RSS (MB) | 500,000 stored: wall (s) "
              "| CPU (s) | RSS (MB) | 10× / 1×: wall | CPU |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, a, b in scale:
            if not a and not b:
                continue
            a, b = a or {}, b or {}

            def growth(key):
                x, y = num(a, key), num(b, key)
                return f"{y / x:.2f}" if x and y else "–"

            def cpu(r):
                v = num(r, "cpu_s")
                return "–" if v is None else f"{v:.2f}"

            print(f"| {label} | {wall(a)} | {cpu(a)} | {rss(a)} | {wall(b)} | {cpu(b)} | {rss(b)} "
                  f"| {growth('wall_s')} | {growth('cpu_s')} |")

    soak_table(results)


def soak_table(results):
    """The soak bench's rounds: cron (`run --once`) and the daemon, side by side."""
    rows = []
    for n in ("1", "10", "25", "50"):
        cron = find(results, f"soak_cron_round_{n}")
        daemon = find(results, f"soak_daemon_round_{n}")
        if cron or daemon:
            rows.append((n, cron or {}, daemon or {}))
    if not rows:
        return
    print()
    print("Soak (500,000 stored items, 1,000 feeds gaining 1-3 items a round, 1,000 immediate "
          "subscribers):")
    print()
    print("| round | new items | run --once: wall (s) | CPU (s) | peak RSS (MB) "
          "| daemon: wall (s) | CPU (s) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, c, d in rows:
        cells = [n, c.get("new", d.get("new", "")), c.get("wall_s", ""), c.get("cpu_s", ""),
                 c.get("rss_mb", ""), d.get("wall_s", ""), d.get("cpu_s", ""), d.get("rss_mb", "")]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
