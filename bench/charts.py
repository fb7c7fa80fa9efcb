#!/usr/bin/python3
"""Charts of the benchmark tables in doc/benchmarks.md, drawn with matplotlib as SVG files.

scripts/bench writes each benchmark's section of doc/benchmarks.md between the markers
`<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->`: when, where and at which commit it
ran, the links to its charts, the Markdown table its harness printed and, in an HTML comment,
the `result key=value ...` lines (bench/harness.hpp) that the harness built the table from. This
script reads those sections and draws the charts:

- from the result lines, when the section has them, so that a chart and its table come from
  the same figures;
- otherwise from the table itself: futura_bench_asio and futura_bench_shared_memory print no
  result lines, and sections recorded before the charts existed kept only their tables.

Each chart's caption gives the machine, the date, the commit and the load average of the run
it shows. A panel whose values span more than a factor of LOG_SPAN is drawn on a log scale.

Usage:
    bench/charts.py draw DOC DIR   draw every chart of the benchmarks that have a section in
                                   DOC into DIR (bench-NAME.svg); fails if a section lacks a
                                   figure one of its charts needs
    bench/charts.py links NAME     the Markdown image lines of benchmark NAME's charts, as
                                   scripts/bench puts them in its section of doc/benchmarks.md

Adding a benchmark: make its harness print `result group=... impl=... label=... median=...
min=... max=...` lines (print_row in bench/harness.hpp), have scripts/bench record them with
its table, and add a Chart to CHARTS below naming its groups. A harness that prints no result
lines needs a table reader in TABLE_READERS as well. bench/test_charts.py (run by CI's bench
stage) draws every chart from bench/charts_sample.md and from doc/benchmarks.md.

Needs /usr/bin/python3 with Debian's python3-matplotlib. The SVG files are deterministic (no
date, fixed ids, text kept as text), so a re-run with the same figures changes no byte.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

# A panel is drawn on a log scale when its largest value is more than LOG_SPAN times its
# smallest (Python's rates beside futura's).
LOG_SPAN = 25.0

# The benchmarks that scripts/bench records, in the order of doc/benchmarks.md.
BENCHMARKS = ("thread_pool", "process_pool", "asio", "shared_memory", "shared_containers",
              "compose", "mpi")

# ---------------------------------------------------------------------------------------------
# What a section holds.


@dataclass
class Row:
    """One figure of one implementation: a row of a table, or a `result` line."""

    group: str  # which comparison: w1, w4_submit, w5_p50, sequential, w6_time, ...
    impl: str  # a short id (from a result line), or the label (from a table)
    label: str  # what the table shows
    median: float
    low: float  # the spread over repetitions (or rounds): min ...
    high: float  # ... and max
    n: int = 0  # tasks (or round trips) per repetition, 0 if unknown


@dataclass
class Run:
    """One benchmark's section: its figures and the context of the run that measured them."""

    bench: str
    rows: list[Row]
    source: str  # "result lines" or "table"
    date: str = "unknown date"
    commit: str = "unknown"
    machine: str = "unknown machine"
    load_start: str = ""
    load_end: str = ""
    workers: int = 0
    data_mb: int = 0  # W6's array size

    def caption(self) -> str:
        load = f"load average {self.load_start} at the start" if self.load_start else ""
        if self.load_end:
            load += f", {self.load_end} at the end"
        return (
            f"Measured {self.date} at commit {self.commit} by scripts/bench, on "
            f"{self.machine}" + (f"; {load}" if load else "") + "."
        )

    def group(self, group: str) -> list[Row]:
        return [row for row in self.rows if row.group == group]


class ChartError(Exception):
    """A section or a figure a chart needs is missing or cannot be read."""


def decode(value: str) -> str:
    """A value of a result line: spaces are written %20 (bench/harness.hpp)."""
    return value.replace("%20", " ")


def result_fields(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)


def number(fields: dict[str, str], key: str) -> float:
    try:
        return float(fields.get(key, "0"))
    except ValueError as error:
        raise ChartError(f"bad value for {key} in a result line: {fields[key]}") from error


def rows_from_result_line(line: str) -> list[Row]:
    """The rows of one `result` line: one in harness.hpp's format (`group=...`), or, in
    futura_bench_thread_pool's (one line per implementation, `w1_median=...`), one per workload.
    Rows without a figure (a workload that did not run) are left out."""
    fields = result_fields(line)
    impl, label = fields.get("impl", ""), decode(fields.get("label", ""))
    if "group" in fields:
        rows = [
            Row(
                fields["group"],
                impl,
                label,
                number(fields, "median"),
                number(fields, "min"),
                number(fields, "max"),
                int(number(fields, "n")),
            )
        ]
    elif "w1_median" in fields:
        rows = [
            Row("w1", impl, label, *(number(fields, f"w1_{k}") for k in ("median", "min", "max")),
                int(number(fields, "w1_n"))),
            Row("w2_p50", impl, label, *(number(fields, k) for k in
                                         ("w2_p50_us", "w2_p50_min", "w2_p50_max")),
                int(number(fields, "w2_n"))),
            Row("w2_p99", impl, label, *(number(fields, k) for k in
                                         ("w2_p99_us", "w2_p99_min", "w2_p99_max")),
                int(number(fields, "w2_n"))),
        ]
    else:
        raise ChartError(f"a result line in neither known format: {line}")
    return [row for row in rows if row.median > 0]


# ---- tables, for the harnesses that print no result lines, and for old sections ----------


def table_rows(lines: list[str], header: str) -> list[list[str]]:
    """The cells of the rows of the Markdown table whose header line starts with `header`."""
    for at, line in enumerate(lines):
        if line.startswith(header):
            cells = []
            for row in lines[at + 2:]:
                if not row.startswith("|"):
                    break
                cells.append([cell.strip() for cell in row.strip().strip("|").split("|")])
            return cells
    raise ChartError(f"no table with the header '{header}'")


def figure(text: str) -> float:
    """A number as a table writes it: 1,234,567 or 93.7 ms or 1.07×."""
    match = re.match(r"[\d,]*\.?\d+", text.strip())
    if not match:
        raise ChartError(f"not a number: '{text}'")
    return float(match.group().replace(",", ""))


def spread(text: str) -> tuple[float, float]:
    low, high = text.split("–")
    return figure(low), figure(high)


def n_of(title: str) -> int:
    """N in a workload's title: "N = 20,000"."""
    match = re.search(r"N = ([\d,]+)", title)
    return int(match.group(1).replace(",", "")) if match else 0


# W3's workload shapes (bench/process_pool.cpp): the group suffix, and the name its table uses.
W3_SHAPES = (
    ("uniform", "uniform"),
    ("short_long", "short then long"),
    ("heavy_tail", "heavy-tailed"),
    ("tiny_long", "tiny then long"),
)

# The workload cells of futura_bench_thread_pool's and futura_bench_process_pool's tables, and
# the groups of their result lines. "W4 map chunked" names two groups: N = 20,000 (w4_map),
# then a million (w4_map_big).
WORKLOAD_GROUPS = (
    (r"W1 throughput", ("w1",)),
    (r"W2 round trip p50", ("w2_p50",)),
    (r"W2 round trip p99", ("w2_p99",)),
    (r"W4 submit", ("w4_submit",)),
    (r"W4 map chunksize 1", ("w4_map_1",)),
    (r"W4 map chunked", ("w4_map", "w4_map_big")),
    (r"W5 round trip p50", ("w5_p50",)),
    (r"W5 round trip p99", ("w5_p99",)),
    *((rf"W3 speedup, {name},", (f"w3_speedup_{shape}",)) for shape, name in W3_SHAPES),
    *((rf"W3 CPUs kept busy, {name}$", (f"w3_cpus_{shape}",)) for shape, name in W3_SHAPES),
    *((rf"W3 start of the last 300 ms task, {name},", (f"w3_long_start_{shape}",))
      for shape, name in W3_SHAPES),
    *((rf"W3 one after the other, {name},", (f"w3_sequential_{shape}",))
      for shape, name in W3_SHAPES),
    (r"W7 start to first result", ("w7_start",)),
)


def read_workload_table(lines: list[str]) -> list[Row]:
    """futura_bench_thread_pool's and futura_bench_process_pool's table."""
    rows, titles = [], {}
    for workload, impl, median, spread_text, _ in table_rows(lines, "| workload | implementation"):
        for pattern, groups in WORKLOAD_GROUPS:
            if re.match(pattern, workload):
                if workload not in titles:
                    used = set(titles.values())
                    free = [g for g in groups if g not in used]
                    if not free:
                        raise ChartError(f"one workload too many: '{workload}'")
                    titles[workload] = free[0]
                break
        else:
            raise ChartError(f"unknown workload '{workload}'")
        rows.append(Row(titles[workload], impl, impl, figure(median), *spread(spread_text),
                        n_of(workload) or n_of(impl)))
    # W1's N is in the note under the thread pool's table ("W1: N = 200,000 tasks").
    w1_n = next((n_of(line.split("W1:")[1]) for line in lines if "W1: N = " in line), 0)
    for row in rows:
        if row.group == "w1" and not row.n:
            row.n = w1_n
    return rows


def read_asio_table(lines: list[str]) -> list[Row]:
    """futura_bench_asio's table: awaits per second, sequential and batched."""
    return [
        Row(workload, impl, impl, figure(rate), *spread(spread_text))
        for workload, impl, rate, spread_text, _ in table_rows(lines, "| workload | implementation")
    ]


def read_shared_memory_table(lines: list[str]) -> list[Row]:
    """futura_bench_shared_memory's table: W6's round trip (ms, median (min–max)) as group
    w6_time, and the peaks of memory (MB, medians) as w6_pss and w6_rss."""
    rows = []
    for label, trip, _, pss, _, rss in table_rows(lines, "| implementation | round trip"):
        label = label.strip("*")
        match = re.fullmatch(r"([\d.]+) ms \(([\d.]+)–([\d.]+)\)", trip)
        if not match:
            raise ChartError(f"W6: cannot read the round trip '{trip}'")
        rows.append(Row("w6_time", label, label, *map(float, match.groups())))
        rows.append(Row("w6_pss", label, label, figure(pss), figure(pss), figure(pss)))
        rows.append(Row("w6_rss", label, label, figure(rss), figure(rss), figure(rss)))
    return rows


def read_shared_containers_table(lines: list[str]) -> list[Row]:
    """futura_bench_shared_containers's table: µs per operation, one group per operation."""
    groups = {"dict get": "dict_get", "dict set": "dict_set", "`d[k] += 1`": "hot_key",
              "queue put": "queue", "lock acquire + release, uncontended": "lock_1",
              "lock acquire + release, 2": "lock_2"}
    rows = []
    for operation, label, median, spread_text, _ in table_rows(lines, "| operation | implementation"):
        group = next((g for prefix, g in groups.items() if operation.startswith(prefix)), None)
        if group is None:
            raise ChartError(f"shared_containers: an operation no chart knows: '{operation}'")
        rows.append(Row(group, label, label, figure(median), *spread(spread_text)))
    return rows


def read_compose_table(lines: list[str]) -> list[Row]:
    """futura_bench_compose's table: operations per second (chain, when_all, fan)."""
    return [
        Row(workload, label, label, figure(rate), *spread(spread_text))
        for workload, label, rate, spread_text, _, _ in table_rows(lines, "| workload | implementation")
    ]


TABLE_READERS: dict[str, Callable[[list[str]], list[Row]]] = {
    "thread_pool": read_workload_table,
    "process_pool": read_workload_table,
    "asio": read_asio_table,
    "shared_memory": read_shared_memory_table,
    "shared_containers": read_shared_containers_table,
    "compose": read_compose_table,
}


def read_section(bench: str, text: str) -> Run:
    """The Run recorded in the text of `bench`'s section."""
    lines = text.splitlines()
    results = [line.strip() for line in lines if line.strip().startswith("result ")]
    if results:
        rows = [row for line in results for row in rows_from_result_line(line)]
        run = Run(bench, rows, "result lines")
    elif bench in TABLE_READERS:
        run = Run(bench, TABLE_READERS[bench](lines), "table")
    else:
        raise ChartError(f"the {bench} section has no result lines, and no table reader")
    for line in lines:
        if match := re.match(r"Measured (.+?) by `scripts/bench` at commit (\S+?)\.$", line):
            run.date, run.commit = match.groups()
        elif match := re.match(r"Machine: (.+?); load average ([\d. ]+?) at the start\.$", line):
            run.machine, run.load_start = match.groups()
        elif match := re.match(r"Load average ([\d. ]+?) at the end\.$", line):
            run.load_end = match.group(1)
        if match := re.search(r"Workers: (\d+)", line):
            run.workers = int(match.group(1))
        if match := re.search(r"W6: a (\d+) MB array", line):
            run.data_mb = int(match.group(1))
    return run


def read_doc(path: Path) -> dict[str, Run]:
    """Every benchmark section of the Markdown file `path`, by benchmark name."""
    text = path.read_text(encoding="utf-8")
    runs = {}
    for match in re.finditer(r"^<!-- bench:(\w+):begin -->\n(.*?)^<!-- bench:\1:end -->$", text,
                             re.M | re.S):
        bench, body = match.groups()
        try:
            runs[bench] = read_section(bench, body)
        except ChartError as error:
            raise ChartError(f"{path}, section {bench}: {error}") from error
    return runs


# ---------------------------------------------------------------------------------------------
# The charts.

FUTURA, PYTHON, PEER, FLOOR = "futura", "Python", "other C++ peers", "floors and references"
COLOURS = {FUTURA: "#1f6fb4", PYTHON: "#e8a317", PEER: "#8c8c8c", FLOOR: "#cfcfcf"}
IDEAL_COLOUR = "#c0392b"


def kind_of(row: Row) -> str:
    label = row.label.lower()
    if "(reference)" in label:
        return FLOOR
    if label.startswith("futura"):
        return FUTURA
    if label.startswith(("python", "joblib")):
        return PYTHON
    if label.startswith(("floor", "bare ", "the same ", "in-process")):
        return FLOOR
    return PEER


@dataclass
class Panel:
    """One set of axes: a bar per implementation (per series, when several groups are shown
    side by side, as p50 and p99 are), with its min–max spread as an error bar."""

    bench: str
    groups: tuple[str, ...]  # one group, or one per series
    title: str  # may name {n}: the futura row's tasks per repetition, with separators
    unit: str  # the axis label
    better: str  # "higher" or "lower"
    series: tuple[str, ...] = ()  # the legend's names of the groups, if more than one
    keep: Callable[[Row], bool] = lambda row: True
    ideal: Optional[Callable[[Run], tuple[float, str]]] = None  # a reference line
    log: Optional[bool] = None  # None: when the values span more than LOG_SPAN
    value_format: Callable[[float], str] = lambda value: plain(value)


@dataclass
class Chart:
    """One SVG file, bench-NAME.svg: panels stacked (one x-axis) or side by side."""

    name: str
    title: str
    panels: list[Panel]
    side_by_side: bool = False
    share_y: bool = False  # side by side, the same rows in every panel

    @property
    def file(self) -> str:
        return f"bench-{self.name}.svg"

    @property
    def benches(self) -> list[str]:
        return list(dict.fromkeys(panel.bench for panel in self.panels))


def si(value: float) -> str:
    """1,234,567 as 1.23 M; 46,306 as 46.3 k."""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def plain(value: float) -> str:
    """93.7, 2.6, 1,006: three significant digits, or whole numbers with separators."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def unit_format(unit: str) -> Callable[[float], str]:
    return lambda value: f"{plain(value)} {unit}"


def thousands(value: int) -> str:
    return f"{value:,}"


def panel_rows(panel: Panel, run: Run) -> list[tuple[str, list[Optional[Row]]]]:
    """(label, a row per series) for each implementation, futura's first; a series the
    implementation did not run is None."""
    by_impl: dict[str, list[Optional[Row]]] = {}
    labels: dict[str, str] = {}
    for k, group in enumerate(panel.groups):
        rows = [row for row in run.group(group) if panel.keep(row)]
        if not rows:
            raise ChartError(f"{run.bench}: no figure of group {group} (from the {run.source})")
        for row in rows:
            by_impl.setdefault(row.impl, [None] * len(panel.groups))[k] = row
            labels.setdefault(row.impl, row.label)
    # An implementation measured with another N than futura's says so (std::async's W1).
    futura_n = next((r.n for rs in by_impl.values() for r in rs if r and kind_of(r) == FUTURA), 0)
    out = []
    for impl, rows in by_impl.items():
        label, n = labels[impl], next(r.n for r in rows if r)
        if futura_n and n and n != futura_n and "N = " not in label:
            label += f" (N = {thousands(n)})"
        out.append((label, rows))
    out.sort(key=lambda item: kind_of(next(r for r in item[1] if r)) != FUTURA)
    return out


def panel_title(panel: Panel, run: Run) -> str:
    rows = [row for group in panel.groups for row in run.group(group) if kind_of(row) == FUTURA]
    n = rows[0].n if rows else 0
    if "{n}" in panel.title and not n:
        raise ChartError(f"{run.bench}: panel '{panel.title}' needs N, which the run lacks")
    return panel.title.format(n=thousands(n), data=run.data_mb)


def wrap(label: str, width: int = 46) -> str:
    """`label` in lines of at most `width` characters, never breaking "N = 20,000"."""
    return "\n".join(textwrap.wrap(label.replace("N = ", "N\u00a0=\u00a0"), width)) or label


def uses_log(panels: list[Panel], values: list[float]) -> bool:
    forced = {panel.log for panel in panels} - {None}
    if forced:
        return forced.pop()
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_SPAN


def draw_panel(ax, panel: Panel, run: Run, log: bool, limits: tuple[float, float]) -> set[str]:
    """Draws `panel` on `ax`; returns the kinds of implementation it shows."""
    items = panel_rows(panel, run)
    count = len(panel.groups)
    height = 0.8 / count
    kinds = set()
    for i, (_, rows) in enumerate(items):
        for k, row in enumerate(rows):
            if row is None:
                continue
            kind = kind_of(row)
            kinds.add(kind)
            y = i + (k - (count - 1) / 2) * height
            ax.barh(y, row.median, height=height * 0.92, color=COLOURS[kind],
                    edgecolor="#444444" if kind == FLOOR else COLOURS[kind], linewidth=0.6,
                    alpha=1.0 if k == 0 else 0.55, hatch="////" if k else None)
            if row.high > row.low:
                ax.errorbar(row.median, y, xerr=[[row.median - row.low], [row.high - row.median]],
                            fmt="none", ecolor="#222222", elinewidth=0.8, capsize=2.5)
            text = panel.value_format(row.median)
            if count > 1:
                text = f"{panel.series[k]} {text}"
            end = max(row.high, row.median)
            ax.text(end * 1.12 if log else end + (limits[1] - limits[0]) * 0.012, y, text,
                    va="center", ha="left", fontsize=7.5, color="#222222")
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([wrap(label) for label, _ in items], fontsize=8)
    for tick, (_, rows) in zip(ax.get_yticklabels(), items):
        if kind_of(next(r for r in rows if r)) == FUTURA:
            tick.set_fontweight("bold")
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_title(panel_title(panel, run), fontsize=9, loc="left")
    if panel.ideal is not None:
        x, text = panel.ideal(run)
        ax.axvline(x, color=IDEAL_COLOUR, linestyle="--", linewidth=1, label=text)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return kinds


def axis_values(panels: list[Panel], runs: dict[str, Run]) -> list[float]:
    values = []
    for panel in panels:
        run = runs[panel.bench]
        for _, rows in panel_rows(panel, run):
            values += [v for row in rows if row for v in (row.median, row.low, row.high)]
        if panel.ideal is not None:
            values.append(panel.ideal(run)[0])
    return values


def set_limits(ax, log: bool, values: list[float]) -> tuple[float, float]:
    positive = [v for v in values if v > 0] or [1.0]
    if log:
        low = 10 ** math.floor(math.log10(min(positive)))
        high = max(positive) * 6  # room for the figures written after the bars
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        low, high = 0.0, max(positive) * 1.3
    ax.set_xlim(low, high)
    return low, high


def tick_format(unit: str) -> FuncFormatter:
    if unit.endswith("/s"):
        return FuncFormatter(lambda value, _: si(value))
    return FuncFormatter(lambda value, _: f"{value:g}")


def draw_chart(chart: Chart, runs: dict[str, Run]):
    """The figure of `chart`. @throws ChartError if a figure it needs is missing."""
    for bench in chart.benches:
        if bench not in runs:
            raise ChartError(f"chart {chart.name} needs the {bench} section")
    # The height of a panel's rows: a bar per series, or the lines of a wrapped label.
    sizes = [sum(max(len(panel.groups), 0.75 * wrap(label).count("\n") + 1)
                 for label, _ in panel_rows(panel, runs[panel.bench])) for panel in chart.panels]
    if chart.side_by_side:
        width = 10.5 if len(chart.panels) > 1 else 9.0
        fig, axes = plt.subplots(1, len(chart.panels), figsize=(width, 0.9 + 0.34 * max(sizes)),
                                 sharey=chart.share_y, layout="constrained", squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = plt.subplots(len(chart.panels), 1, sharex=True, layout="constrained",
                                 figsize=(9.0, 0.5 + sum(0.5 + 0.3 * s for s in sizes)),
                                 gridspec_kw={"height_ratios": [s + 1.2 for s in sizes]},
                                 squeeze=False)
        axes = list(axes[:, 0])
    # Panels stacked share one scale; side by side, each has its own.
    scales = [chart.panels] if not chart.side_by_side else [[panel] for panel in chart.panels]
    kinds: set[str] = set()
    for group in scales:
        values = axis_values(group, runs)
        log = uses_log(group, values)
        for panel in group:
            ax = axes[chart.panels.index(panel)]
            limits = set_limits(ax, log, values)
            kinds |= draw_panel(ax, panel, runs[panel.bench], log, limits)
            ax.xaxis.set_major_formatter(tick_format(panel.unit))
            ax.tick_params(axis="x", labelsize=8, labelbottom=True)
            better = f"{panel.better} is better" + (", log scale" if log else "")
            if chart.side_by_side or ax is axes[-1]:
                ax.set_xlabel(f"{panel.unit} ({better})", fontsize=8)
            if chart.share_y and ax is not axes[0]:
                ax.tick_params(axis="y", labelleft=False)
    fig.suptitle(chart.title, fontsize=11, x=0.01, ha="left", fontweight="bold")
    series = [panel.series for panel in chart.panels if len(panel.groups) > 1]
    handles = [Patch(facecolor=COLOURS[kind], edgecolor="#444444" if kind == FLOOR else "none",
                     label=kind) for kind in COLOURS if kind in kinds]
    ideals = dict.fromkeys(panel.ideal(runs[panel.bench])[1] for panel in chart.panels
                           if panel.ideal is not None)
    handles += [Line2D([], [], color=IDEAL_COLOUR, linestyle="--", linewidth=1, label=text)
                for text in ideals]
    if series:
        handles += [Patch(facecolor="#bbbbbb", hatch="////" if k else None, label=name,
                          alpha=1.0 if k == 0 else 0.55) for k, name in enumerate(series[0])]
    # Below the axes (constrained layout leaves them out; savefig's tight box takes them in):
    # the legend, then the caption.
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.0), ncol=len(handles),
               fontsize=7.5, frameon=False)
    captions = dict.fromkeys(runs[bench].caption() for bench in chart.benches)
    caption = "\n".join(textwrap.fill(text, 140) for text in captions)
    fig.text(0.01, 0.0, caption, fontsize=6.5, color="#555555", ha="left", va="top",
             transform=offset_copy(fig.transFigure, fig=fig, y=-20, units="points"))
    return fig


def save(fig, path: Path) -> None:
    # Deterministic SVG: no date in the metadata, ids from a fixed salt, text as text (smaller
    # files and readable diffs; the font falls back to the reader's sans-serif).
    with plt.rc_context({"svg.hashsalt": "futura-bench", "svg.fonttype": "none"}):
        fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight",
                    pad_inches=0.1)
    plt.close(fig)


# ---- the charts of doc/benchmarks.md ---------------------------------------------------------

def per_second(unit: str) -> Callable[[float], str]:
    return lambda value: f"{si(value)} {unit}"


def ideal_speedup(run: Run) -> tuple[float, str]:
    if run.workers <= 0:
        raise ChartError(f"{run.bench}: the ideal speedup needs 'Workers: N' in the section")
    return float(run.workers), f"ideal: {run.workers}× ({run.workers} workers)"


def futura_or_python(row: Row) -> bool:
    return kind_of(row) in (FUTURA, PYTHON)


def w6_data_size(run: Run) -> tuple[float, str]:
    if run.data_mb <= 0:
        raise ChartError(f"{run.bench}: the data size needs 'W6: a N MB array' in the section")
    return float(run.data_mb), f"the data itself: {run.data_mb} MB"


CHARTS: list[Chart] = [
    Chart("thread_pool-w1", "Thread pool: submit throughput (W1)", [
        Panel("thread_pool", ("w1",), "N = {n} trivial tasks submitted, then every result read",
              "tasks/s", "higher", value_format=per_second("tasks/s")),
    ], side_by_side=True),
    Chart("thread_pool-w2", "Thread pool: round-trip latency (W2)", [
        Panel("thread_pool", ("w2_p50", "w2_p99"), "submit one task, wait for its result, again",
              "µs", "lower", series=("p50", "p99"), value_format=unit_format("µs")),
    ], side_by_side=True),
    Chart("process_pool-w4", "Process pool: throughput of trivial tasks (W4)", [
        Panel("process_pool", ("w4_submit",), "submit, N = {n}", "tasks/s", "higher",
              value_format=per_second("tasks/s")),
        Panel("process_pool", ("w4_map_1",), "map, chunksize 1, N = {n}", "tasks/s", "higher",
              value_format=per_second("tasks/s")),
        Panel("process_pool", ("w4_map",), "map, chunked, N = {n}", "tasks/s", "higher",
              value_format=per_second("tasks/s")),
        Panel("process_pool", ("w4_map_big",), "map, chunked, N = {n}", "tasks/s", "higher",
              value_format=per_second("tasks/s")),
    ]),
    Chart("process_pool-w5", "Process pool: round-trip latency (W5)", [
        Panel("process_pool", ("w5_p50", "w5_p99"), "submit one task, wait for its result, again",
              "µs", "lower", series=("p50", "p99"), value_format=unit_format("µs")),
    ], side_by_side=True),
    Chart("process_pool-w3", "Process pool: CPU-bound scaling by workload shape (W3)", [
        Panel("process_pool", (f"w3_speedup_{shape}",), title, "speedup over one process",
              "higher", ideal=ideal_speedup, log=False, value_format=lambda value: f"{value:.2f}×")
        for shape, title in (
            ("uniform", "uniform: {n} tasks of 50 ms"),
            ("short_long", "short then long: 100 × 10 µs, 2 × 300 ms, 20 × 50 ms, submitted "
                           "in that order"),
            ("heavy_tail", "heavy-tailed: {n} tasks, log-normal (median 2 ms, at most 200 ms)"),
            ("tiny_long", "tiny then long: 1,000 × 10 µs, then one of 300 ms (the bound: "
                          "the long task)"),
        )
    ]),
    Chart("process_pool-w7", "Process pool: start to first result (W7)", [
        Panel("process_pool", ("w7_start",), "a fresh pool, one trivial task", "ms", "lower",
              value_format=unit_format("ms")),
    ], side_by_side=True),
    Chart("asio", "Asio: awaiting futures from a coroutine", [
        Panel("asio", ("sequential",), "sequential: submit, co_await, again", "awaits/s",
              "higher", value_format=per_second("awaits/s")),
        Panel("asio", ("batched",), "batched: submit many, then co_await each", "awaits/s",
              "higher", value_format=per_second("awaits/s")),
    ]),
    Chart("shared_memory-w6", "Shared memory: a large array to a worker process and back (W6)", [
        Panel("shared_memory", ("w6_time",), "round trip of {data} MB", "ms", "lower",
              value_format=unit_format("ms")),
        Panel("shared_memory", ("w6_pss",), "peak memory of the process tree (PSS)", "MB",
              "lower", ideal=w6_data_size, log=False, value_format=unit_format("MB")),
    ], side_by_side=True, share_y=True),
    Chart("shared_containers", "Shared state without a server: SharedDict, SharedQueue, "
          "SharedLock against Python's Manager()", [
        Panel("shared_containers", (group,), title, "µs per operation", "lower",
              value_format=unit_format("µs"))
        for group, title in (
            ("dict_get", "dict get, uncontended"),
            ("dict_set", "dict set, uncontended"),
            ("hot_key", "d[k] += 1 on one key from 2 processes"),
            ("queue", "queue put + get"),
            ("lock_1", "lock acquire + release, uncontended"),
            ("lock_2", "lock acquire + release, 2 processes"),
        )
    ]),
    Chart("compose", "Composing futures: then, when_all, fan-out/fan-in", [
        Panel("compose", (group,), title, "operations/s", "higher",
              value_format=per_second("ops/s"))
        for group, title in (
            ("chain", "a chain of then (links/s)"),
            ("when_all", "when_all over many futures (futures/s)"),
            ("fan", "fan-out/fan-in, when_all(group).then(sum) (tasks/s)"),
        )
    ]),
    Chart("mpi", "futura::MpiPoolExecutor against mpi4py.futures.MPIPoolExecutor", [
        Panel("mpi", ("submit_rate",), "submit, N = {n} trivial tasks", "tasks/s", "higher",
              value_format=per_second("tasks/s")),
        Panel("mpi", ("map_rate",), "map, N = {n} inputs", "inputs/s", "higher",
              value_format=per_second("inputs/s")),
        Panel("mpi", ("rt_p50", "rt_p99"), "submit one task, wait for its result, again", "µs",
              "lower", series=("p50", "p99"), value_format=unit_format("µs")),
        Panel("mpi", ("w3_speedup_uniform",), "speedup, uniform: {n} tasks of 50 ms",
              "speedup over one process", "higher", ideal=ideal_speedup, log=False,
              value_format=lambda value: f"{value:.2f}×"),
        Panel("mpi", ("w3_speedup_heavy_tail",), "speedup, heavy-tailed: {n} tasks, log-normal "
              "(median 2 ms, at most 200 ms)", "speedup over one process", "higher",
              ideal=ideal_speedup, log=False, value_format=lambda value: f"{value:.2f}×"),
    ]),
    # The README's headline for processes: a round trip and a large transfer, against Python.
    Chart("processes", "futura::ProcessPoolExecutor against Python's process pools", [
        Panel("process_pool", ("w5_p50",), "round trip of one small task (W5, p50)", "µs",
              "lower", keep=futura_or_python, value_format=unit_format("µs")),
        Panel("shared_memory", ("w6_time",), "{data} MB to a worker and back (W6)", "ms",
              "lower", keep=futura_or_python, value_format=unit_format("ms")),
    ], side_by_side=True),
]

# The charts each benchmark's section shows above its table (the headline charts are the
# README's; the W1 chart is both).
SECTION_CHARTS = {
    "thread_pool": ["thread_pool-w1", "thread_pool-w2"],
    "process_pool": ["process_pool-w4", "process_pool-w5", "process_pool-w3", "process_pool-w7"],
    "asio": ["asio"],
    "shared_memory": ["shared_memory-w6"],
    "shared_containers": ["shared_containers"],
    "compose": ["compose"],
    "build_cost": [],  # a table only
    "mpi": ["mpi"],
}


def chart_named(name: str) -> Chart:
    return next(chart for chart in CHARTS if chart.name == name)


def draw_all(doc: Path, out: Path) -> list[Path]:
    """Draws every chart whose benchmarks have a section in `doc` into `out`. A chart of a
    benchmark whose section is there but lacks a figure fails; so does a doc with no section."""
    runs = read_doc(doc)
    if not runs:
        raise ChartError(f"{doc}: no benchmark section")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in CHARTS:
        if not all(bench in runs for bench in chart.benches):
            print(f"charts: {chart.file} skipped: {doc} has no section "
                  f"{' or '.join(b for b in chart.benches if b not in runs)}", file=sys.stderr)
            continue
        try:
            fig = draw_chart(chart, runs)
        except ChartError as error:
            raise ChartError(f"{doc}: chart {chart.name}: {error}") from error
        save(fig, out / chart.file)
        written.append(out / chart.file)
        sources = ", ".join(f"{b} from its {runs[b].source}" for b in chart.benches)
        print(f"charts: wrote {out / chart.file} ({sources})", file=sys.stderr)
    return written


def links(bench: str) -> str:
    """The Markdown image lines of `bench`'s charts, relative to doc/."""
    return "\n".join(f"![{chart_named(name).title}](images/{chart_named(name).file})"
                     for name in SECTION_CHARTS.get(bench, []))


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3 and argv[0] == "draw":
            draw_all(Path(argv[1]), Path(argv[2]))
            return 0
        if len(argv) == 2 and argv[0] == "links":
            if argv[1] not in SECTION_CHARTS:
                raise ChartError(f"no charts for benchmark '{argv[1]}'")
            print(links(argv[1]))
            return 0
    except ChartError as error:
        print(f"charts: error: {error}", file=sys.stderr)
        return 1
    print(__doc__.split("Usage:")[1].split("Adding")[0].rstrip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
