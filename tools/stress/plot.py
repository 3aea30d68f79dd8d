"""`--plot FILE.png`: throughput and latency percentiles over time, from the interval rows.

Top panel: operations per second per interval, with errors per second on a second axis (red) when
there were any. Bottom panel: response-time p50/p95/p99/max per interval (ms, log scale), and
the service-time p99 dashed when a fixed rate made the two differ. Phases (YCSB load/run) follow
each other on one time axis, each labelled where it starts; `events` [(time_s, label)] draw vertical lines (the availability
benchmark marks the kill and the restart). matplotlib is in the bench extra; without it the
command says how to install it before any load runs.
"""
from __future__ import annotations

from engine.errors import InvalidRequest

INSTALL_HINT = "--plot needs matplotlib: pip install 'dynatable[bench]'"


def require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise InvalidRequest(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def timeline(phases: list[dict]) -> list[dict]:
    """Interval rows of all phases on one time axis (each phase starts where the last ended).
    A phase's last interval is left out when it is shorter than half a second: a few stragglers
    over a few milliseconds would draw a throughput that never was."""
    out, offset = [], 0.0
    for p in phases:
        for n, row in enumerate(p["intervals"]):
            if n == len(p["intervals"]) - 1 and row.get("span_s", 1.0) < 0.5:
                continue
            out.append({**row, "t": offset + row["time_s"]})
        offset += p["elapsed_s"]
    return out


def plot_timeline(phases: list[dict], path: str, title: str, events=()) -> None:
    plt = require_matplotlib()
    fig = draw_timeline(plt, phases, title, events)
    fig.savefig(path)
    plt.close(fig)


def draw_timeline(plt, phases: list[dict], title: str, events=()):
    from matplotlib.ticker import FuncFormatter
    rows = timeline(phases)
    t = [r["t"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), dpi=90)
    ax1.plot(t, [r["ops_per_s"] for r in rows], color="tab:blue", label="ops/s")
    ax1.set_ylabel("throughput (ops/s)")
    ax1.set_ylim(bottom=0)
    errors = [sum(r["errors"].values()) for r in rows]
    if any(errors):
        ax_e = ax1.twinx()
        ax_e.bar(t, errors, width=0.8, color="tab:red", alpha=0.5, label="errors")
        ax_e.set_ylabel("errors per interval", color="tab:red")
    for key, style in (("p50_ms", "-"), ("p95_ms", "-"), ("p99_ms", "-"), ("max_ms", ":")):
        ax2.plot(t, [r[key] if r[key] is not None else float("nan") for r in rows], style,
                 label=f"{key[:-3]} response")
    if any(p["target_rate"] is not None for p in phases):
        ax2.plot(t, [r["service_p99_ms"] if r["service_p99_ms"] is not None else float("nan") for r in rows],
                 "--", color="gray", label="p99 service")
    ax2.set_yscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")  # "3", "0.5", never matplotlib's "3x10^0"
    ax2.yaxis.set_major_formatter(plain)
    ax2.yaxis.set_minor_formatter(plain)
    ax2.set_ylabel("latency (ms)")
    ax2.set_xlabel("time (s)")
    ax2.legend(loc="upper left", fontsize=8, ncol=3)
    for when, label in events:
        for ax in (ax1, ax2):
            ax.axvline(when, color="black", linewidth=0.8, linestyle="--")
        ax1.annotate(label, (when, 0), xytext=(3, 5), textcoords="offset points", fontsize=8, rotation=90)
    offset = 0.0
    for n, p in enumerate(phases):  # each phase (YCSB load, run) labelled where it starts
        if n:
            for ax in (ax1, ax2):
                ax.axvline(offset, color="gray", linewidth=0.8)
        if len(phases) > 1:
            ax1.annotate(f"{p['phase']} phase", (offset, 1), xycoords=("data", "axes fraction"),
                         xytext=(4, -12), textcoords="offset points", fontsize=8, color="dimgray")
        offset += p["elapsed_s"]
    ax1.set_title(title, fontsize=10)
    ax1.grid(alpha=0.3)
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
