"""Quality flags: a closed set of codes, each with what it means (highdicom ``seg/enum.py`` style).

A flag on a hip is a :class:`FlagNote`: a ``str`` ``"code: detail"`` (the form that
results.json, the API and the SR have always carried) that also knows its
:class:`Flag`. Stages create notes with ``Flag.X.note(detail)``; readers that only see
the string use :func:`flag_code`. A hip without flags needs no extra look.

Adding a flag: add a member here with its meaning, raise it in the stage that finds it,
test it there. ``docs/grading.md`` ("Quality flags") lists the same codes.
"""

from __future__ import annotations

from enum import StrEnum


class Flag(StrEnum):
    """Flag codes. ``Flag.X.meaning`` says, in a line, when it is raised."""

    meaning: str

    def __new__(cls, code: str, meaning: str) -> Flag:
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    SMALL_HEAD = (
        "small_head",
        "head section below 250 mm² (a pole, or cut off); over a series, the largest section "
        "below 700 mm²",
    )
    PARTIAL_HEAD = ("partial_head", "the head touches the image border")
    LOW_CONFIDENCE = (
        "low_confidence",
        "low network probability inside the head, or many uncertain pixels around it",
    )
    NOT_BIMODAL = (
        "not_bimodal",
        "necrosis claimed with a weak contrast; over a series, the grade rests on such slices",
    )
    NOT_COUNTED = (
        "not_counted",
        "dark structures found but not counted as necrosis (a ring; necrosis that forms no "
        "3-D segment of the anterosuperior head, e.g. a cap at a pole or a lone section)",
    )
    ONE_SIDE_ONLY = ("one_side_only", "a bilateral slice or series with one femoral head found")
    CONTINUED = (
        "continued",
        "necrosis carried up from the slice below (the section lies inside its lesion)",
    )
    NEIGHBOUR_LESION = (
        "neighbour_lesion",
        "a band-dark structure counted because it lies inside the lesion of a neighbouring slice",
    )
    METHODS_DISAGREE = (
        "methods_disagree",
        "the adaptive threshold and the learned necrosis output give different grades",
    )
    UNCERTAIN_GRADE = (
        "uncertain_grade",
        "the proportion's interval crosses a grade boundary, or none against mild rests on "
        "a small volume",
    )

    SERIES_DISAGREEMENT = (
        "series_disagreement",
        "the same hip graded differently by two graded series of the study (e.g. axial and "
        "coronal T1)",
    )

    def note(self, detail: str) -> FlagNote:
        """This flag with the reason for this hip (one line)."""
        return FlagNote(self, detail)


class FlagNote(str):
    """``"code: detail"``, a ``str`` (JSON and the database see the old form) with its code."""

    code: Flag
    detail: str

    def __new__(cls, code: Flag, detail: str) -> FlagNote:
        detail = " ".join(detail.split())
        note = super().__new__(cls, f"{code.value}: {detail}")
        note.code = code
        note.detail = detail
        return note

    def __reduce__(self) -> tuple[type[FlagNote], tuple[Flag, str]]:
        return (FlagNote, (self.code, self.detail))


def flag_code(flag: str) -> str:
    """``"partial_head: ..."`` -> ``"partial_head"`` (also for plain strings from JSON)."""
    if isinstance(flag, FlagNote):
        return flag.code.value
    return flag.split(":", 1)[0].strip()


def has_flag(flags: tuple[str, ...] | list[str], code: Flag) -> bool:
    return any(flag_code(f) == code.value for f in flags)
