"""The stress plot: YCSB's load and run phases are labelled where each starts, and the log-scale
latency axis reads as plain numbers (never matplotlib's "3x10^0")."""
import pytest

from tools.stress.plot import draw_timeline, plot_timeline, timeline

plt = pytest.importorskip("matplotlib.pyplot", reason="the plot needs the bench extra (matplotlib)")


def phase(name: str, seconds: int, p50: float) -> dict:
    rows = [{"time_s": float(t + 1), "span_s": 1.0, "ops_per_s": 1000.0, "errors": {}, "p50_ms": p50,
             "p95_ms": p50 * 2, "p99_ms": p50 * 3, "max_ms": p50 * 4, "service_p99_ms": None}
            for t in range(seconds)]
    return {"phase": name, "elapsed_s": float(seconds), "target_rate": None, "intervals": rows}


def test_phases_share_one_axis_and_are_labelled():
    phases = [phase("load", 3, 1.0), phase("run", 2, 2.0)]
    assert [r["t"] for r in timeline(phases)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    fig = draw_timeline(plt, phases, "ycsb")
    try:
        top, bottom = fig.axes[:2]
        assert [a.get_text() for a in top.texts] == ["load phase", "run phase"]
        assert [line.get_xdata()[0] for line in top.lines[1:]] == [3.0]  # the divider where run starts
        fig.canvas.draw()
        labels = [t.get_text() for t in bottom.yaxis.get_ticklabels(which="both") if t.get_text()]
        assert labels and not any("10^" in x or "times" in x for x in labels), labels
        assert all(float(x) > 0 for x in labels)
    finally:
        plt.close(fig)


def test_one_phase_has_no_phase_label(tmp_path):
    path = tmp_path / "p.png"
    plot_timeline([phase("write", 2, 1.5)], str(path), "write")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = draw_timeline(plt, [phase("write", 2, 1.5)], "write")
    assert len(fig.axes[0].texts) == 0
    plt.close(fig)
