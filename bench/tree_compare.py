"""Alternating two source trees in one sitting: `--compare DIR` of bench/read_path.py and
bench/write_path.py. Each round runs `python -m <module> <args> --json-line` once in the base tree
(DIR) and once in this one, so both share the machine's drifts; the same harness file is copied
into DIR first, so only the engine differs. The figures are medians with their range.

Imported lazily by those benches' compare(): a child process in DIR never imports this file.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_child(tree: str, module: str, args: list[str]) -> dict:
    """One measurement in `tree`: the last line the child prints, as JSON."""
    cmd = [sys.executable, "-m", module, *args, "--json-line"]
    env = dict(os.environ, PYTHONPATH=tree)
    res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def alternate(harness_file: str, module: str, args: list[str], base_dir: str, rounds: int,
              figures: tuple[str, ...]) -> tuple[str, dict[str, list[dict]]]:
    """(base, {tree: [results per round]}) for the base tree and this one, alternated."""
    base = os.path.abspath(base_dir)
    if base != HERE:  # the same harness on both sides
        target = os.path.join(base, os.path.relpath(os.path.abspath(harness_file), HERE))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.abspath(harness_file), target)
    runs: dict[str, list[dict]] = {base: [], HERE: []}
    for r in range(rounds):
        for tree in (base, HERE):
            runs[tree].append(run_child(tree, module, args))
            print(f"round {r + 1} {tree}: " + ", ".join(
                f"{k} {runs[tree][-1][k] / 1000:.1f}k" for k in figures), flush=True)
    return base, runs


def median_range(xs: list[float]) -> str:
    return f"{statistics.median(xs) / 1000:.1f}k ({min(xs) / 1000:.1f}-{max(xs) / 1000:.1f})"


def print_ratios(base: str, runs: dict[str, list[dict]], figures: tuple[str, ...], width: int) -> None:
    """One line per figure: base and tree medians (range) and the ratio of the medians, tree / base."""
    for k in figures:
        b = [x[k] for x in runs[base]]
        t = [x[k] for x in runs[HERE]]
        print(f"{k:{width}s} base {median_range(b):24s} tree {median_range(t):24s} "
              f"ratio {statistics.median(t) / statistics.median(b):.2f}")


def load_range(runs: dict[str, list[dict]]) -> str:
    loads = [x["load_avg_1m"] for rs in runs.values() for x in rs]
    return f"{min(loads):.1f}-{max(loads):.1f}"
