"""The report's charts, each in two parts: ``*_data(figures, …)`` returns exactly what is
plotted (tested, and checked against a recount by the reconciliation test), and ``*_png(data)``
draws it.

- completion vs target per group: a bar per group with members, its target marked; a group
  without members is labelled "chưa có thành viên", never drawn as a 0 % bar;
- the month-by-month trend of the period: lessons completed (self / assisted) per month and
  the completion rate at each month's end;
- lessons completed in the period, per lesson (self / assisted).

Titles carry the period and the ward, so the charts of two periods differ when their numbers
do. Drawn on a bare ``Figure`` with the Agg canvas (no pyplot, no global backend or rcParams
change), fonts given per text from matplotlib's bundled DejaVu Sans, 1000 px wide so that
they read on a phone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from typing import TYPE_CHECKING

from bot.reports.fonts import SANS, SANS_BOLD, font_path
from bot.reports.wording import translator
from storage.figures import PeriodFigures

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_INCHES, DPI = 10, 100  # 1000 px
MET, NOT_MET, TARGET, ASSISTED, LINE = "#2e7d32", "#ef6c00", "#212121", "#1565c0", "#8b1a1a"
LABEL_MAX = 30
TITLE_WRAP = 70  # characters per title line at 16 pt bold on 1000 px


@dataclass(frozen=True)
class GroupBar:
    label: str  # the group's name (shortened for the axis)
    rate: float | None  # None: the group has no members
    target: int
    met: bool


@dataclass(frozen=True)
class GroupChart:
    title: str
    bars: list[GroupBar]  # in the figures' (code) order, top to bottom


@dataclass(frozen=True)
class MonthPoint:
    month: date
    completed_self: int
    completed_assisted: int
    rate_end: float | None  # programme completed ÷ members at the month's end; None: no members


@dataclass(frozen=True)
class TrendChart:
    title: str
    months: list[MonthPoint]


@dataclass(frozen=True)
class LessonBar:
    label: str  # "Bài 3. …"
    completed_self: int  # in the period
    completed_assisted: int


@dataclass(frozen=True)
class LessonChart:
    title: str
    lessons: list[LessonBar]  # the curriculum at the period's end, in order


def _label(name: str) -> str:
    return name if len(name) <= LABEL_MAX else name[: LABEL_MAX - 1] + "…"


def group_chart_data(figures: PeriodFigures, *, period: str) -> GroupChart:
    """Completion rate against target per group; ``period`` names the period ("năm 2026")."""
    t = translator()
    bars = [GroupBar(_label(g.name), g.rate, g.target_percent, g.meets_target) for g in figures.groups]
    return GroupChart(t("chart.groups_title", ward=figures.ward.name, period=period), bars)


def trend_chart_data(figures: PeriodFigures, *, period: str) -> TrendChart:
    t = translator()
    months = [MonthPoint(m.month, m.completed_self, m.completed_assisted,
                         100.0 * m.finished_end / m.members_end if m.members_end else None)
              for m in figures.months]
    return TrendChart(t("chart.trend_title", ward=figures.ward.name, period=period), months)


def lesson_chart_data(figures: PeriodFigures, *, period: str, titles: Mapping[str, str]) -> LessonChart:
    """Lessons completed in the period; ``titles`` maps a lesson id to its title."""
    t = translator()
    bars = [LessonBar(_label(t("chart.lesson_label", order=n, title=titles.get(f.lesson_id, f.lesson_id))),
                      f.period_self, f.period_assisted)
            for n, f in enumerate(figures.lessons, 1)]
    return LessonChart(t("chart.lessons_title", ward=figures.ward.name, period=period), bars)


def _figure(title: str, height: float) -> tuple[Figure, Axes]:
    """A figure with ``title`` in a band of fixed height, outside the layout: its letters
    (marks on capitals included) never move the plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    heading = FontProperties(fname=font_path(SANS_BOLD), size=16)
    lines = textwrap.wrap(title, TITLE_WRAP) or [""]
    height += 0.3 * (len(lines) - 1)
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    band = (0.25 + 0.3 * len(lines)) / height
    figure.get_layout_engine().set(rect=(0, 0, 1, 1 - band))  # type: ignore[union-attr, call-arg]
    figure.text(0.5, 1 - 0.12 / height, "\n".join(lines), ha="center", va="top", fontproperties=heading)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _fonts() -> tuple[object, object]:
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=font_path(SANS), size=12), FontProperties(fname=font_path(SANS), size=11)


def _finish(figure: Figure, ax: Axes, handles: list[object]) -> bytes:
    regular, _ = _fonts()
    for tick in [*ax.get_yticklabels(), *ax.get_xticklabels()]:
        tick.set_fontproperties(regular)
    ax.spines[["top", "right"]].set_visible(False)
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), prop=regular, frameon=False)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def group_chart_png(chart: GroupChart) -> bytes:
    """Bars of the groups' rates (green at target, orange below), the targets marked."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t = translator()
    regular, small = _fonts()
    bars = chart.bars
    figure, ax = _figure(chart.title, 2.2 + 0.5 * max(len(bars), 1))
    positions = list(range(len(bars)))
    drawn = [(y, b) for y, b in zip(positions, bars, strict=True) if b.rate is not None]
    ax.barh([y for y, _ in drawn], [b.rate for _, b in drawn], height=0.6,
            color=[MET if b.met else NOT_MET for _, b in drawn])
    ax.scatter([b.target for _, b in drawn], [y for y, _ in drawn], marker="|", s=500, linewidths=3, color=TARGET,
               zorder=3)
    for y, bar in zip(positions, bars, strict=True):
        if bar.rate is None:
            ax.text(1, y, t("chart.no_members"), va="center", fontproperties=small, color="#5f6b76")
        else:
            ax.text(min(bar.rate, 100) + 1.5, y, f"{bar.rate:.0f}%", va="center", fontproperties=small)
    ax.set_yticks(positions, [b.label for b in bars])
    ax.set_xlim(0, 112)
    ax.set_ylim(max(len(bars), 1) - 0.5, -0.5)  # the first group on top
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel(t("report.chart_axis"), fontproperties=regular)
    ax.grid(axis="x", alpha=0.3)
    if not bars:
        ax.text(56, 0, t("report.chart_empty"), ha="center", va="center", fontproperties=regular)
    handles = [Patch(color=MET, label=t("report.chart_met")), Patch(color=NOT_MET, label=t("report.chart_not_met")),
               Line2D([], [], color=TARGET, marker="|", markersize=16, markeredgewidth=3, linestyle="none",
                      label=t("report.chart_target"))]
    return _finish(figure, ax, handles)


def trend_chart_png(chart: TrendChart) -> bytes:
    """Stacked bars of the lessons completed each month, the rate at each month's end as a line."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t = translator()
    regular, small = _fonts()
    months = chart.months
    figure, ax = _figure(chart.title, 5.5)
    positions = list(range(len(months)))
    own = [m.completed_self for m in months]
    ax.bar(positions, own, color=MET, width=0.6)
    ax.bar(positions, [m.completed_assisted for m in months], bottom=own, color=ASSISTED, width=0.6)
    ax.set_xticks(positions, [t("chart.month_label", month=m.month.month, year=m.month.year) for m in months])
    ax.set_ylim(0, max([m.completed_self + m.completed_assisted for m in months] + [1]) * 1.15)
    ax.set_ylabel(t("chart.trend_axis"), fontproperties=regular)
    ax.grid(axis="y", alpha=0.3)
    rates = ax.twinx()
    rates.plot([y for y, m in zip(positions, months, strict=True) if m.rate_end is not None],
               [m.rate_end for m in months if m.rate_end is not None], color=LINE, marker="o")
    rates.set_ylim(0, 105)
    rates.set_ylabel(t("chart.trend_rate_axis"), fontproperties=regular)
    for tick in rates.get_yticklabels():
        tick.set_fontproperties(small)
    if not months:
        ax.text(0.5, 0.5, t("chart.no_months"), ha="center", va="center", transform=ax.transAxes,
                fontproperties=regular)
    handles = [Patch(color=MET, label=t("chart.self")), Patch(color=ASSISTED, label=t("chart.assisted")),
               Line2D([], [], color=LINE, marker="o", label=t("chart.rate_end"))]
    return _finish(figure, ax, handles)


def lesson_chart_png(chart: LessonChart) -> bytes:
    """Horizontal stacked bars: each lesson's completions in the period, self then assisted."""
    from matplotlib.patches import Patch

    t = translator()
    _, small = _fonts()
    bars = chart.lessons
    figure, ax = _figure(chart.title, 2.2 + 0.45 * max(len(bars), 1))
    positions = list(range(len(bars)))
    own = [b.completed_self for b in bars]
    ax.barh(positions, own, height=0.6, color=MET)
    ax.barh(positions, [b.completed_assisted for b in bars], left=own, height=0.6, color=ASSISTED)
    for y, bar in zip(positions, bars, strict=True):
        total = bar.completed_self + bar.completed_assisted
        ax.text(total, y, f" {total}", va="center", fontproperties=small)
    ax.set_yticks(positions, [b.label for b in bars])
    ax.set_ylim(max(len(bars), 1) - 0.5, -0.5)
    ax.set_xlim(0, max([b.completed_self + b.completed_assisted for b in bars] + [1]) * 1.15)
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=MET, label=t("chart.self")), Patch(color=ASSISTED, label=t("chart.assisted"))]
    return _finish(figure, ax, handles)
