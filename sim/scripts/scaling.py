#!/usr/bin/env python3
"""Runs `pando simulate --json` at several cluster sizes and draws launch
throughput and allocation cycle time against cluster size as one SVG.

    python3 sim/scripts/scaling.py --pando target/release/pando \
        --sizes 100,1000,10000 --out docs/sim-scaling.svg

No third-party packages: the SVG is written by hand. `--from results.json`
redraws from a saved run instead of running again.
"""

import argparse
import json
import math
import subprocess
import sys


def run(pando, agents, extra):
    cmd = [pando, "simulate", "--agents", str(agents), "--frameworks", "100",
           "--decliners", "10", "--profile", "marathon", "--tasks", "100000",
           "--task_duration", "1secs", "--duration", "120secs", "--json"] + extra
    print("$ " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    if not out.stdout.strip():
        raise SystemExit(f"no report for {agents} agents: {out.stderr[-500:]}")
    return json.loads(out.stdout)


def panel(x0, y0, w, h, title, unit, points, color):
    """One log-x, linear-y panel; points are (agents, value)."""
    parts = [f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" '
             f'font-size="14">{title}</text>',
             f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>']
    xs = [math.log10(a) for a, _ in points]
    lo, hi = math.floor(min(xs)), math.ceil(max(xs))
    if hi == lo:
        hi = lo + 1
    top = max(v for _, v in points) * 1.15 or 1.0

    def px(a):
        return x0 + (math.log10(a) - lo) / (hi - lo) * w

    def py(v):
        return y0 + h - v / top * h

    for d in range(lo, hi + 1):
        x = x0 + (d - lo) / (hi - lo) * w
        parts.append(f'<text x="{x}" y="{y0 + h + 16}" text-anchor="middle" '
                     f'font-size="11">{10 ** d:,}</text>')
    for i in range(5):
        v = top * i / 4
        parts.append(f'<text x="{x0 - 6}" y="{py(v) + 4}" text-anchor="end" '
                     f'font-size="11">{v:,.0f}</text>')
    parts.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle" '
                 f'font-size="12">simulated agents (log scale)</text>')
    parts.append(f'<text x="{x0 - 48}" y="{y0 + h / 2}" font-size="12" '
                 f'transform="rotate(-90 {x0 - 48} {y0 + h / 2})" '
                 f'text-anchor="middle">{unit}</text>')
    path = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    for a, v in points:
        parts.append(f'<circle cx="{px(a):.1f}" cy="{py(v):.1f}" r="4" fill="{color}"/>')
        parts.append(f'<text x="{px(a):.1f}" y="{py(v) - 8:.1f}" text-anchor="middle" '
                     f'font-size="11">{v:,.0f}</text>')
    return parts


def draw(results, out):
    rows = sorted(results, key=lambda r: r["setup"]["agents"])
    launches = [(r["setup"]["agents"], r["launches_per_second"] or 0.0) for r in rows]
    cycles = [(r["setup"]["agents"], r["allocation_run_ms"]["p99"] or 0.0) for r in rows]
    w, h = 360, 240
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="360" '
           'font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>']
    svg += panel(80, 50, w, h, "task launches/s sustained (100 frameworks, 100k tasks)",
                 "launches/s", launches, "#1f77b4")
    svg += panel(520, 50, w, h, "allocation cycle p99", "ms", cycles, "#d62728")
    svg.append("</svg>")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(svg) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pando", default="target/release/pando")
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--out", default="docs/sim-scaling.svg")
    p.add_argument("--save", help="also write the raw reports here")
    p.add_argument("--from", dest="source", help="draw from saved reports")
    args = p.parse_args()
    if args.source:
        with open(args.source, encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = [run(args.pando, int(n), []) for n in args.sizes.split(",")]
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    draw(results, args.out)
    for r in results:
        print(f'{r["setup"]["agents"]:>6} agents: {r["launches_per_second"] or 0:,.0f} launches/s, '
              f'cycle p99 {r["allocation_run_ms"]["p99"] or 0:.1f} ms')


if __name__ == "__main__":
    main()
