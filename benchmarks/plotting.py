"""What the benchmarks share for their output: the raw results as JSON and a plot as PNG.

Each benchmark starts a :class:`Run` before it measures and, when it is done,
writes ``benchmarks/results/<name>.json`` (:func:`write_results`) and draws
``docs/images/<name>.png`` (:func:`new_figure`, then :func:`save_figure`), the
plot docs/PERFORMANCE.md shows. Plots are stamped with when the run took place
and the machine's load average, since a shared machine moves the numbers.

matplotlib (Agg backend, no display) is imported only when a plot is drawn,
after the measuring.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"
FIGSIZE = (8.0, 5.0)
DPI = 100

# Colours used the same way in every plot.
MEASURED = "tab:blue"
OTHER = "tab:orange"
BASELINE = "tab:gray"
TARGET = "tab:red"
P50 = "tab:green"
P99 = "tab:purple"


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class Run:
    """When and where a benchmark ran: started before measuring, stamped on its plot and JSON."""

    name: str
    started: datetime
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = None
    cores: int = field(default_factory=lambda: os.cpu_count() or 0)
    cpu: str = field(default_factory=_cpu_model)

    @classmethod
    def start(cls, name: str) -> Run:
        return cls(name=name, started=datetime.now(tz=UTC), load_before=os.getloadavg())

    def finish(self) -> None:
        """Note the load average after the measuring (once; later calls keep the first)."""
        if self.load_after is None:
            self.load_after = os.getloadavg()

    def stamp(self) -> str:
        """For example ``run 2026-11-25 21:30 UTC, 2 cores, load 0.35 before, 0.54 after``."""
        self.finish()
        assert self.load_after is not None
        return (
            f"run {self.started:%Y-%m-%d %H:%M} UTC, {self.cores} cores,"
            f" load {self.load_before[0]:.2f} before, {self.load_after[0]:.2f} after"
        )

    @property
    def json_path(self) -> pathlib.Path:
        return RESULTS / f"{self.name}.json"

    @property
    def image_path(self) -> pathlib.Path:
        return IMAGES / f"{self.name}.png"


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, datetimes and non-finite floats as JSON can hold them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_flat(value: Any) -> bool:
    """A list of numbers, or of short lists of numbers: written on one line."""
    if not isinstance(value, list):
        return False
    return all(
        isinstance(item, int | float | None)
        or (isinstance(item, list) and all(isinstance(x, int | float | None) for x in item))
        for item in value
    )


def _dumps(value: Any, indent: int = 0) -> str:
    if isinstance(value, dict) and value:
        inner = " " * (indent + 1)
        items = [f"{inner}{json.dumps(key)}: {_dumps(item, indent + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value and not _is_flat(value):
        inner = " " * (indent + 1)
        items = [f"{inner}{_dumps(item, indent + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(value, separators=(",", ":") if isinstance(value, list) else (", ", ": "))


def write_results(run: Run, results: Mapping[str, Any]) -> pathlib.Path:
    """``benchmarks/results/<name>.json``: the run (when, load, machine, arguments) and its raw results.

    Lists of samples are written on one line each; everything else one key a line.
    """
    run.finish()
    document = {
        "benchmark": run.name,
        "run": {
            "started": run.started,
            "load_before": run.load_before,
            "load_after": run.load_after,
            "cores": run.cores,
            "cpu": run.cpu,
            "python": platform.python_version(),
            "argv": sys.argv[1:],
            "environment": {key: value for key, value in os.environ.items() if key.startswith("BENCH_")},
        },
        **results,
    }
    path = run.json_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(jsonable(document)) + "\n")
    return path


def new_figure(rows: int = 1, columns: int = 1, **options: Any) -> tuple[Any, Any]:
    """A figure of about 8 x 5 inches and its axes (``plt.subplots`` on the Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    options.setdefault("figsize", FIGSIZE)
    return plt.subplots(rows, columns, **options)


def save_figure(run: Run, figure: Any, title: str) -> pathlib.Path:
    """``docs/images/<name>.png`` at 100 dpi, titled with what was measured and the run's stamp."""
    import matplotlib.pyplot as plt

    figure.suptitle(f"{title}\n{run.stamp()}", fontsize=11)
    figure.tight_layout()
    path = run.image_path
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def target_line(axes: Any, value: float, label: str, *, vertical: bool = False) -> None:
    """A dashed red line at a target (horizontal unless ``vertical``)."""
    draw = axes.axvline if vertical else axes.axhline
    draw(value, color=TARGET, linestyle="--", linewidth=1.2, label=label)


def percentile_lines(
    axes: Any, marks: Mapping[str, float], *, vertical: bool = False, unit: str = ""
) -> None:
    """Dotted lines at the percentiles the benchmark printed, e.g. ``{"p50": 10.9, "p99": 19.0}``."""
    colours = {"p50": P50, "p99": P99}
    draw = axes.axvline if vertical else axes.axhline
    for label, value in marks.items():
        draw(
            value,
            color=colours.get(label, "black"),
            linestyle=":",
            linewidth=1.5,
            label=f"{label} {value:,.1f}{unit}",
        )


def cdf(axes: Any, values: Sequence[float], **style: Any) -> None:
    """The empirical distribution of ``values``: fraction of samples at or below x."""
    ordered = sorted(values)
    count = len(ordered)
    axes.step(ordered, [(index + 1) / count for index in range(count)], where="post", **style)
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("fraction of samples ≤ x")


def label_bars(
    axes: Any,
    bars: Iterable[Any],
    texts: Iterable[str],
    *,
    tops: Iterable[float] | None = None,
    fontsize: float = 8,
) -> None:
    """Write ``texts`` above ``bars`` (or above ``tops``, e.g. the ends of their error bars)."""
    bars = list(bars)
    heights = list(tops) if tops is not None else [bar.get_height() for bar in bars]
    for bar, height, text in zip(bars, heights, texts, strict=True):
        axes.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, height),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=fontsize,
        )


def done(*paths: pathlib.Path) -> None:
    print("wrote " + " and ".join(str(path.relative_to(ROOT)) for path in paths))
