"""The completion chart: each group's completion rate as a bar, its target as a marker.

Built on a bare ``Figure`` with the Agg canvas (no pyplot, no global backend or rcParams
change), fonts given per text from matplotlib's bundled DejaVu Sans, 1000 px wide so that it
reads on a phone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from io import BytesIO

from bot.reports.fonts import SANS, SANS_BOLD, font_path
from bot.reports.wording import translator
from storage.stats import GroupStats

WIDTH_INCHES, DPI = 10, 100  # 1000 px
MET, NOT_MET, TARGET = "#2e7d32", "#ef6c00", "#212121"
LABEL_MAX = 30
TITLE_WRAP = 80  # characters per title line at 16 pt on 1000 px


def _label(name: str) -> str:
    return name if len(name) <= LABEL_MAX else name[: LABEL_MAX - 1] + "…"


def completion_chart_png(stats: Sequence[GroupStats], *, title: str) -> bytes:
    """A PNG bar chart of ``stats`` in the given order (top to bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t = translator()
    regular = FontProperties(fname=font_path(SANS), size=12)
    small = FontProperties(fname=font_path(SANS), size=11)
    heading = FontProperties(fname=font_path(SANS_BOLD), size=16)
    rows = max(len(stats), 1)
    heading_lines = textwrap.wrap(title, TITLE_WRAP) or [""]
    height = 2.2 + 0.5 * rows + 0.3 * (len(heading_lines) - 1)
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    # The title sits in a band of fixed height, outside the layout: its letters (marks on
    # capitals included) never move the bars.
    band = (0.25 + 0.3 * len(heading_lines)) / height
    figure.get_layout_engine().set(rect=(0, 0, 1, 1 - band))  # type: ignore[union-attr, call-arg]
    figure.text(0.5, 1 - 0.12 / height, "\n".join(heading_lines), ha="center", va="top", fontproperties=heading)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    positions = list(range(len(stats)))
    ax.barh(positions, [s.rate for s in stats], height=0.6,
            color=[MET if s.meets_target else NOT_MET for s in stats])
    ax.scatter([s.target_percent for s in stats], positions, marker="|", s=500, linewidths=3, color=TARGET,
               zorder=3)
    for y, s in zip(positions, stats, strict=True):
        ax.text(min(s.rate, 100) + 1.5, y, f"{s.rate:.0f}%", va="center", fontproperties=small)
    ax.set_yticks(positions, [_label(s.name) for s in stats])
    ax.set_xlim(0, 112)
    ax.set_ylim(max(len(stats), 1) - 0.5, -0.5)  # the first group on top
    ax.set_xticks(range(0, 101, 20))
    for tick in [*ax.get_yticklabels(), *ax.get_xticklabels()]:
        tick.set_fontproperties(regular)
    ax.set_xlabel(t("report.chart_axis"), fontproperties=regular)
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    if not stats:
        ax.text(56, 0, t("report.chart_empty"), ha="center", va="center", fontproperties=regular)
    handles = [Patch(color=MET, label=t("report.chart_met")),
               Patch(color=NOT_MET, label=t("report.chart_not_met")),
               Line2D([], [], color=TARGET, marker="|", markersize=16, markeredgewidth=3, linestyle="none",
                      label=t("report.chart_target"))]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, prop=regular, frameon=False)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
