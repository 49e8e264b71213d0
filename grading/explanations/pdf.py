"""The one-page PDF of a patient explanation (fpdf2, pure Python; no browser)."""

from __future__ import annotations

import io
from typing import Any

from fpdf import FPDF

DISCLAIMER = (
    "Made with research and teaching software, not a medical device: the measurement "
    "has not been validated on patients and is not a diagnosis."
)


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1; anything else becomes "?" rather than failing.
    replacements = {
        "\u2013": "-",
        "\u2014": "-",
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
    }
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text.encode("latin-1", "replace").decode("latin-1")


def explanation_pdf(
    *,
    title: str,
    sections: list[tuple[str, list[str]]],
    note: str,
    doctor_name: str,
    date_text: str,
    site_name: str,
    image_png: bytes,
    facts: list[tuple[str, str]],
) -> bytes:
    """A4, one page: heading, the picture beside the key facts, the text sections, the
    doctor's note, the doctor's name and date, the not-a-medical-device statement.
    Text that would run past the page is cut (the note is limited in length anyway)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(16, 14, 16)
    pdf.add_page()
    pdf.set_title(_latin1(title))
    pdf.set_creator("ONFH grading portal")
    bottom = pdf.h - 22  # room for the footer
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(width, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(width, 5, _latin1(f"{site_name} - {date_text}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    top = pdf.get_y()
    image_mm = 62
    pdf.image(io.BytesIO(image_png), x=pdf.l_margin, y=top, w=image_mm, h=image_mm)
    pdf.set_xy(pdf.l_margin + image_mm + 6, top)
    facts_w = width - image_mm - 6
    for label, value in facts:
        pdf.set_x(pdf.l_margin + image_mm + 6)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(facts_w, 5, _latin1(label), new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(pdf.l_margin + image_mm + 6)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(facts_w, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.set_y(max(pdf.get_y(), top + image_mm) + 4)

    def paragraph(text: str, *, style: str = "", size: float = 9.5, gap: float = 1.5) -> None:
        if pdf.get_y() > bottom - 5:
            return
        pdf.set_font("Helvetica", style, size)
        lines: Any = pdf.multi_cell(width, 4.6, _latin1(text), dry_run=True, output="LINES")
        room = int((bottom - pdf.get_y()) // 4.6)
        if room <= 0:
            return
        shown = "\n".join(lines[:room])
        pdf.multi_cell(width, 4.6, shown, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    for heading, paragraphs in sections:
        if heading:
            paragraph(heading, style="B", size=11, gap=0.5)
        for text in paragraphs:
            paragraph(text)
    if note.strip():
        paragraph("Your doctor's note", style="B", size=11, gap=0.5)
        paragraph(note.strip())
    paragraph(f"{doctor_name}, {date_text}", style="B", size=10)

    pdf.set_y(pdf.h - 18)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(width, 3.8, _latin1(DISCLAIMER), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
