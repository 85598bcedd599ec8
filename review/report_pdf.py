"""A slide's report as a PDF (ReportLab), with the same contents as the report page.

Text is set in Bitstream Vera, which ReportLab ships and embeds: the PDF prints the same anywhere,
and its text can be searched and extracted (accented names included).
"""

import io
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from review.history import DELTA_MARK
from review.reports import SlideReport

FONT, BOLD = "Vera", "VeraBd"
_FONTS = Path(reportlab.__file__).parent / "fonts"
MARGIN = 17 * mm
# The frame's width inside the margins, less its own padding on both sides (6 pt each).
PAGE_TEXT_WIDTH = A4[0] - 2 * MARGIN - 12
GRID = colors.HexColor("#adb5bd")
FLAGGED = colors.HexColor("#fff3cd")


def _fonts_register() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(_FONTS / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(_FONTS / "VeraBd.ttf")))


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    return {
        "body": body,
        "small": ParagraphStyle(
            "small", parent=body, fontSize=7.5, leading=10, textColor=colors.HexColor("#495057")
        ),
        "title": ParagraphStyle("title", parent=body, fontName=BOLD, fontSize=15, leading=19, spaceAfter=2),
        "heading": ParagraphStyle(
            "heading", parent=body, fontName=BOLD, fontSize=10.5, spaceBefore=8, spaceAfter=3
        ),
        "alert": ParagraphStyle("alert", parent=body, fontName=BOLD, textColor=colors.HexColor("#842029")),
    }


def _text(value: object) -> str:
    return escape(str(value))


def _local(moment) -> str:  # noqa: ANN001 (an aware datetime)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _pairs_table(pairs: list[tuple[str, str]], styles: dict[str, ParagraphStyle]) -> Table:
    """Label/value pairs, two per line."""
    cells = [
        Paragraph(f"<font name='{BOLD}'>{_text(label)}</font> {_text(value)}", styles["body"])
        for label, value in pairs
    ]
    rows = [
        cells[index : index + 2] + [""] * (2 - len(cells[index : index + 2]))
        for index in range(0, len(cells), 2)
    ]
    table = Table(rows, colWidths=[PAGE_TEXT_WIDTH / 2] * 2, hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _differential_table(report: SlideReport, styles: dict[str, ParagraphStyle]) -> Table:
    header = ["Class", "Count", "%", "Reference %", "Flag"]
    if report.previous is not None:
        header += ["Previous %", "Change"]
    rows = [header]
    for row in report.rows:
        line = [row.name, str(row.count), f"{row.percent:.1f}", row.reference_text, row.flag]
        if report.previous is not None:
            previous = "" if row.previous_percent is None else f"{row.previous_percent:.1f}"
            line += [previous, f"{row.delta_text}{' ' + DELTA_MARK if row.delta_flagged else ''}"]
        rows.append(line)
    rows.append(["Total counted", str(report.total), "", "", ""] + ([""] * 2 if report.previous else []))
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTNAME", (0, 0), (-1, 0), BOLD),
        ("FONTNAME", (0, -1), (-1, -1), BOLD),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
        ("LINEBELOW", (0, 1), (-1, -2), 0.25, GRID),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("LEFTPADDING", (0, 0), (0, -1), 0),
    ]
    for index, row in enumerate(report.rows, start=1):
        if row.flag or row.delta_flagged:
            style.append(("BACKGROUND", (0, index), (-1, index), FLAGGED))
        if row.flag:  # the percentage and its flag
            style += [("FONTNAME", (2, index), (2, index), BOLD), ("FONTNAME", (4, index), (4, index), BOLD)]
    table.setStyle(TableStyle(style))
    return table


def _signature_lines(report: SlideReport, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    lines = []
    for signature in report.signatures:
        text = (
            f"Version {signature.version}: {signature.meaning} by <font name='{BOLD}'>"
            f"{_text(signature.signer_full_name)}</font>, {_local(signature.signed_at)} "
            "(electronic signature)"
        )
        amendment = getattr(signature, "amendment", None)
        if amendment is not None:
            text += (
                f"<br/>Reopened for amendment by {_text(amendment.amended_by.display_name)}, "
                f"{_local(amendment.amended_at)}: {_text(amendment.reason)}"
            )
        if signature.comment and signature.pk != report.signature.pk:
            text += f"<br/>Comment of this version: {_text(signature.comment)}"
        lines.append(Paragraph(text, styles["body"]))
    return lines


def _story(report: SlideReport, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    slide, signature, patient = report.slide, report.signature, report.patient
    story: list[Flowable] = [
        Paragraph("White-cell differential report", styles["title"]),
        Paragraph(
            f"HematoVision · slide {_text(slide.accession_number)} · version {signature.version} · "
            f"{_text(report.status_text)}",
            styles["small"],
        ),
        Spacer(1, 4 * mm),
        Paragraph("Patient", styles["heading"]),
        _pairs_table(
            [
                ("Name", f"{patient.family_name}, {patient.given_name}"),
                ("MRN", patient.mrn),
                ("Date of birth", patient.date_of_birth),
                ("Sex", patient.sex),
            ],
            styles,
        ),
    ]
    for event in report.corrections:
        story.append(
            Paragraph(
                f"The patient record was corrected after signing ({event.created_at:%Y-%m-%d}, "
                f"{_text(event.actor_username)}: {_text(event.reason)}); "
                "this report names the patient as signed for.",
                styles["alert"],
            )
        )
    story += [
        Paragraph("Specimen", styles["heading"]),
        _pairs_table(
            [
                ("Accession", slide.accession_number),
                ("Specimen", f"Peripheral blood smear, {slide.get_stain_display()}"),
                ("Collected", _local(slide.collected_at)),
                ("Received", _local(slide.received_at)),
                ("Priority", slide.get_priority_display()),
                ("Reported", _local(signature.signed_at)),
            ],
            styles,
        ),
        Paragraph("Differential", styles["heading"]),
        _differential_table(report, styles),
        Spacer(1, 2 * mm),
        Paragraph(_differential_note(report), styles["small"]),
    ]
    if report.verification_text:
        story.append(Paragraph(f"Verification: {_text(report.verification_text)}", styles["small"]))
    story += [
        Paragraph("Comment / interpretation", styles["heading"]),
        Paragraph(
            _text(report.comment).replace("\n", "<br/>") if report.comment else "None.", styles["body"]
        ),
        *(
            [Paragraph("Second opinions", styles["heading"])]
            + [Paragraph(_text(line), styles["small"]) for line in report.consults]
            if report.consults
            else []
        ),
        Paragraph("Signatures and versions", styles["heading"]),
        *_signature_lines(report, styles),
        Paragraph("Classification model", styles["heading"]),
        Paragraph(
            f"Model version{'s' if len(report.model_versions) != 1 else ''}: "
            f"{_text(', '.join(report.model_versions) or 'not recorded')}. "
            f"Domain: {_text(report.domain_text)}",
            styles["alert"] if report.domain_attention else styles["body"],
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            "Every cell counted was verified by the signing pathologist (individually or, inside the model's "
            "validated domain, in bulk at its review threshold).",
            styles["small"],
        ),
    ]
    return story


def _differential_note(report: SlideReport) -> str:
    intervals = (
        "as signed" if report.reference_as_signed else "as configured now; not kept with this signature"
    )
    parts = [
        f"Percent of white cells counted. Flags: H above, L below the adult reference interval ({intervals})."
    ]
    if report.excluded:
        parts.append(
            f"{report.excluded} cell(s) excluded from the count (artefact, smudge cell or unreadable image)."
        )
    if report.previous is not None:
        parts.append(
            f"Previous: slide {_text(report.previous.accession_number)}, collected "
            f"{timezone.localtime(report.previous.collected_at):%Y-%m-%d}; "
            f"{DELTA_MARK} marks a change of more than {report.delta_points} percentage points."
        )
    return " ".join(parts)


def slide_report_pdf(report: SlideReport) -> bytes:
    _fonts_register()
    buffer = io.BytesIO()
    title = f"Differential report {report.slide.accession_number} v{report.signature.version}"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=title,
        author=report.signature.signer_full_name,
        subject=f"{report.patient.family_name}, {report.patient.given_name} ({report.patient.mrn})",
        creator="HematoVision",
    )
    styles = _styles()

    def footer(canvas, doc) -> None:  # noqa: ANN001 (ReportLab's callback)
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(MARGIN + 6, 8 * mm, f"{title} · {report.patient.mrn} · page {doc.page}")
        canvas.restoreState()

    document.build(_story(report, styles), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
