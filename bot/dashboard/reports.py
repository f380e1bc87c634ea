"""The dashboard's report pages (issue 13, page 4): an admin picks a period, reads its figures
and downloads the period's files — the Word report, the workbook, the thi đua annex and the
three charts, the very files ``hocvuso report`` writes and the chat sends for that period.

- ``GET /web/bao-cao``: the report of the one ward administered, or a choice of wards.
- ``GET /web/phuong/<ward>/bao-cao?ky=<choice>``: the figures of the period (``ky``: a choice
  of the chat's report menu, ``bot.reports.period.CHOICES``; the half-year by default).
- ``GET /web/phuong/<ward>/bao-cao/<choice>/<file>``: one file, as an attachment.

Admins of the ward only: a leader gets 403 (the files name residents). The figures are read by
``storage.figures.read_period_figures``, the period by ``chosen_period``, the files drawn by
``bot.reports.exports.draw_documents`` / ``draw_workbook`` in the bot's drawing process
(``in_drawing_process``), after the read transaction has ended — as the chat's report does.
Downloads are GETs (a link changes nothing) with ``Cache-Control: private, no-store``; each is
audited as the chat's report is (``admin.report``, with the file and ``via: web``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from bot.dashboard.access import Viewer
from bot.dashboard.pages import Pages
from bot.reports.period import CHOICES, Period, Span, chosen_period
from bot.reports.wording import percent, period_words, points
from handlers.admin import PERIODS, report_file_name
from storage import audit
from storage.figures import read_period_figures
from storage.groups import get_ward
from storage.models import Ward

DEFAULT_CHOICE = "6m"  # the report wards send most: the half-year's


@dataclass(frozen=True)
class ReportFile:
    """A file of the period's report: what its link says and how it is drawn."""

    kind: str  # the chat's name for it, first word of the file's name
    suffix: str
    content_type: str
    label: str  # the link's words: a catalogue key
    chart: str | None = None  # the chart's name (bot.reports.exports.CHARTS)


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILES = {  # the address's last part → the file
    "bao-cao.docx": ReportFile("bao-cao", ".docx", DOCX, "web.reports.file_report"),
    "so-lieu.xlsx": ReportFile("so-lieu", ".xlsx", XLSX, "web.reports.file_workbook"),
    "de-xuat-khen-thuong.docx": ReportFile("de-xuat-khen-thuong", ".docx", DOCX, "web.reports.file_annex"),
    "bieu-do-nhom.png": ReportFile("bieu-do-nhom", ".png", "image/png", "web.reports.file_chart_groups", "nhom"),
    "bieu-do-thang.png": ReportFile("bieu-do-thang", ".png", "image/png", "web.reports.file_chart_months", "thang"),
    "bieu-do-bai.png": ReportFile("bieu-do-bai", ".png", "image/png", "web.reports.file_chart_lessons", "bai"),
}


def report_routes(pages: Pages) -> list[web.RouteDef]:
    return ReportPages(pages).routes()


class ReportPages:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self.d = pages.d

    def routes(self) -> list[web.RouteDef]:
        page = self.p.page
        return [
            web.get("/web/bao-cao", page(self.start)),
            web.get("/web/phuong/{ward_id:[0-9]{1,9}}/bao-cao", page(self.report)),
            web.get("/web/phuong/{ward_id:[0-9]{1,9}}/bao-cao/{choice}/{file}", page(self.download)),
        ]

    async def start(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        """The one ward's report, or a choice of the wards administered; a leader: 403."""
        if not who.wards:
            return await self.p.refused(request, who)
        if len(who.wards) == 1:
            raise web.HTTPFound(f"/web/phuong/{who.wards[0].id}/bao-cao")
        return self.p.choose_ward(who, title=self.p.t("web.reports.title"), heading=self.p.t("web.reports.title_wards"),
                                  section="/bao-cao")

    async def _ward(self, request: web.Request, who: Viewer) -> Ward | None:
        ward_id = int(request.match_info["ward_id"])
        if not who.may_see_ward(ward_id):
            return None
        async with self.d.reads() as session:
            return await get_ward(session, ward_id=ward_id)

    def _not_found(self, who: Viewer) -> web.Response:
        return self.p.render("message.html", status=404, viewer=who, title=self.p.t("web.reports.not_found"),
                             text=self.p.t("web.reports.not_found_text"))

    def _period(self, choice: str) -> tuple[Span | None, Period]:
        return chosen_period(choice, now=self.d.clock.now(), zone=self.d.zone)

    async def report(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward = await self._ward(request, who)
        if ward is None or ward.id is None:
            return await self.p.refused(request, who)
        choice = request.query.get("ky", DEFAULT_CHOICE)
        if choice not in CHOICES:
            return self._not_found(who)
        span, period = self._period(choice)
        async with self.d.reads() as session:
            figures = await read_period_figures(session, ward_id=ward.id, lessons=self.d.lessons, start=period.start,
                                                end=period.end, zone=self.d.zone)
        words = period_words(span.value if span else None, figures.start, figures.end, self.d.zone)
        choices = [(key, self.p.t(PERIODS[key])) for key in CHOICES]
        return self.p.render(
            "report.html", viewer=who, ward=ward, figures=figures, words=words, choice=choice, choices=choices,
            files=FILES, zone=self.d.zone, percent=percent, points=points, several=len(who.wards) > 1,
            title=self.p.t("web.reports.title_ward", ward=ward.name))

    async def download(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        from bot.reports.docx import Signer  # python-docx, XlsxWriter and matplotlib load on demand
        from bot.reports.exports import draw_documents, draw_workbook, in_drawing_process, read_report

        choice, name = request.match_info["choice"], request.match_info["file"]
        wanted = FILES.get(name)
        ward = await self._ward(request, who)
        if ward is None or ward.id is None:
            return await self.p.refused(request, who)
        if choice not in CHOICES or wanted is None:
            return self._not_found(who)
        span, period = self._period(choice)
        now, zone, lessons = self.d.clock.now(), self.d.zone, self.d.lessons
        named = span.value if span else None
        # Read in a short read transaction; drawn after it, in the drawing process (never on the loop).
        async with self.d.reads() as session:
            if wanted.suffix == ".xlsx":  # the workbook lists residents: their rows too
                data = await read_report(session, ward_id=ward.id, lessons=lessons, start=period.start,
                                         end=period.end, zone=zone)
                figures = data.figures
            else:
                figures = await read_period_figures(session, ward_id=ward.id, lessons=lessons, start=period.start,
                                                    end=period.end, zone=zone)
        if wanted.suffix == ".xlsx":
            content = await in_drawing_process(draw_workbook, figures, data.rows, lessons=lessons, zone=zone, now=now)
        else:
            documents = await in_drawing_process(draw_documents, figures, lessons=lessons, span=named,
                                                 zone=zone, now=now, signer=Signer(*self.d.report_signer),
                                                 charts=wanted.chart is not None)
            content = (documents.charts[wanted.chart] if wanted.chart else
                       documents.report if wanted.kind == "bao-cao" else documents.annex)
        words = period_words(named, figures.start, figures.end, zone)
        async with self.d.writes() as session, session.begin():
            # The chat's report action (a staff action: the audit log names who took the file).
            audit.record(session, actor=f"person:{who.person.id}", action="admin.report", target=f"ward:{ward.id}",
                         now=now, details={"period": choice, "file": name, "via": "web"})
        filename = report_file_name(wanted.kind, ward.code, words) + wanted.suffix
        return web.Response(body=content, headers={
            "Content-Type": wanted.content_type,
            "Content-Disposition": f"attachment; filename=\"{quote(filename)}\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",  # residents' names: no shared cache, no copy kept
        })
