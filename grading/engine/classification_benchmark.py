"""``onfh benchmark --classifications``: JIC type and Kerboul angle on held-out volume phantoms.

For each phantom (seeds not used anywhere else) the coronal and sagittal series are
sampled as a scanner would (4 mm apart, 0.9 mm pixels, slices off the head centre by a
random amount within half a spacing); the mid-coronal and mid-sagittal slices are the
ones with the largest head section; the JIC type and the arcs are measured on that
slice's masks (the phantom's true head, lesion and acetabular masks on the series grid:
the measurement and slice choice, not a network's segmentation) and compared with the
truth on the exact planes through the head centre of the 1 mm volume.

:func:`engine_classification_benchmark` does the same from the engine's own masks: the
pipeline grades coronal, axial and sagittal T1 series of other held-out phantoms, the
acetabular roof is found in the image, and JIC type, Kerboul angle, roof edge, coronal
per-slice and volumetric grades and the axial-coronal agreement are compared with the
volume's truth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from grading.engine.classifications import JicType, jic_type, kerboul_combined, necrotic_arc_deg
from grading.engine.grading_rules import grade_from_proportion
from grading.engine.hips import Box, FemoralHead
from grading.engine.measure import slice_order, summarise_series
from grading.engine.necrosis import NecrosisResult
from grading.engine.phantoms.volume import make_volume_phantom, slice_volume
from grading.engine.series_rules import GradedHead, run_series_stages, series_stages
from grading.engine.types import MRSlice, SeriesHipResult, SeriesResult, Side

JIC_LABELS: tuple[str, ...] = ("A", "B", "C1", "C2", "none")


@dataclass
class ClassificationReport:
    hips: int = 0
    jic_correct: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(JIC_LABELS, 0) for t in JIC_LABELS}
    )
    kerboul_errors: list[float] = field(default_factory=list)
    coronal_errors: list[float] = field(default_factory=list)

    @property
    def jic_accuracy(self) -> float:
        return self.jic_correct / self.hips if self.hips else float("nan")

    @property
    def kerboul_mae_deg(self) -> float:
        return float(np.mean(self.kerboul_errors)) if self.kerboul_errors else float("nan")

    def as_text(self) -> str:
        lines = [
            f"hips: {self.hips}; JIC type accuracy {100 * self.jic_accuracy:.1f} % "
            "(Shen et al. 2024: 87.8 % internal, 83.8 % external)",
            f"Kerboul combined angle MAE {self.kerboul_mae_deg:.1f} deg "
            f"(coronal arc alone {float(np.mean(self.coronal_errors)):.1f} deg)",
            "confusion (rows truth, columns measured): " + " ".join(f"{c:>5}" for c in JIC_LABELS),
        ]
        for truth in JIC_LABELS:
            row = self.confusion[truth]
            lines.append(f"  {truth:>5} " + " ".join(f"{row[c]:>5}" for c in JIC_LABELS))
        return "\n".join(lines)


def _label(kind: JicType | None) -> str:
    return "none" if kind is None else str(kind)


def classification_benchmark(*, n_phantoms: int = 12, seed: int = 30000) -> ClassificationReport:
    """Both hips of ``n_phantoms`` volume phantoms from ``seed`` on (held out: the volume
    phantoms are not used for training, and these seeds for nothing else)."""
    report = ClassificationReport()
    rng = np.random.default_rng(seed)
    for index in range(n_phantoms):
        phantom = make_volume_phantom(seed + index)
        blank = np.zeros(phantom.tissues.shape, dtype=np.float32)
        for spec, truth in zip(phantom.hips, phantom.truth, strict=True):
            offset = float(rng.uniform(-2.0, 2.0))
            coronal = slice_volume(
                phantom,
                blank,
                "coronal",
                centre_mm=spec.centre_mm,
                count=9,
                spacing_mm=4.0,
                field_of_view_mm=(140.0, 140.0),
                pixel_mm=0.9,
                offset_mm=offset,
            )
            sagittal = slice_volume(
                phantom,
                blank,
                "sagittal",
                centre_mm=spec.centre_mm,
                count=9,
                spacing_mm=4.0,
                field_of_view_mm=(140.0, 140.0),
                pixel_mm=0.9,
                offset_mm=float(rng.uniform(-2.0, 2.0)),
            )
            k = int(np.argmax((coronal.labels > 0).sum(axis=(1, 2))))
            head = coronal.labels[k] > 0
            lesion = coronal.labels[k] == 2
            measured = jic_type(
                head,
                lesion,
                coronal.roof[k],
                pixel_spacing_mm=coronal.pixel_spacing_mm,
                lateral_col_sign=int(spec.lateral_sign),
            )
            m = int(np.argmax((sagittal.labels > 0).sum(axis=(1, 2))))
            coronal_arc = necrotic_arc_deg(head, lesion, pixel_spacing_mm=coronal.pixel_spacing_mm)
            sagittal_arc = necrotic_arc_deg(
                sagittal.labels[m] > 0,
                sagittal.labels[m] == 2,
                pixel_spacing_mm=sagittal.pixel_spacing_mm,
            )
            kerboul = kerboul_combined(coronal_arc, sagittal_arc)
            report.hips += 1
            t, got = _label(truth.jic_type), _label(measured.type)
            report.confusion[t][got] += 1
            report.jic_correct += int(t == got)
            assert kerboul is not None
            report.kerboul_errors.append(abs(kerboul.angle_deg - truth.kerboul_angle_deg))
            report.coronal_errors.append(abs(coronal_arc - truth.kerboul_coronal_deg))
    return report


# ---------------------------------------------------------------------------------------
# From the engine's own masks (issue 14 items 4 and 5)
# ---------------------------------------------------------------------------------------


@dataclass
class EngineClassificationReport:
    """The pipeline on held-out volume phantoms: coronal, axial and sagittal T1 series
    graded as the portal grades them (network, plane-aware finder, threshold necrosis,
    roof from the image), compared with the volume's truth."""

    model_version: str = ""
    hips: int = 0
    jic_correct: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(JIC_LABELS, 0) for t in JIC_LABELS}
    )
    kerboul_errors: list[float] = field(default_factory=list)
    kerboul_partial: int = 0
    coronal_arc_errors: list[float] = field(default_factory=list)
    roof_edge_errors_mm: list[float] = field(default_factory=list)
    roof_missing: int = 0
    coronal_dice: list[float] = field(default_factory=list)
    sagittal_dice: list[float] = field(default_factory=list)
    slices: int = 0
    slices_correct: int = 0
    coronal_correct: int = 0
    axial_correct: int = 0
    axial_coronal_agree: int = 0
    proportion_gaps: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    split: dict[str, SplitCounts] = field(default_factory=dict)
    """With ``split``: the coronal JIC type, arc and volumetric grade again with true masks
    in place of the engine's head, necrosis or both (:data:`SPLIT_MODES`)."""
    axial_split: dict[str, AxialSplitCounts] = field(default_factory=dict)
    """With ``split`` (and the axial series): the axial volumetric grade the same way."""

    def _pct(self, count: int, total: int) -> str:
        return f"{100 * count / total:.1f} % ({count}/{total})" if total else "n/a"

    def as_text(self) -> str:
        def mean(values: list[float]) -> float:
            return float(np.mean(values)) if values else float("nan")

        edges = np.abs(self.roof_edge_errors_mm) if self.roof_edge_errors_mm else np.array([])
        lines = [
            f"engine masks ({self.model_version}), hips: {self.hips}",
            f"  JIC type accuracy {self._pct(self.jic_correct, self.hips)} "
            "(Shen et al. 2024: 87.8 % internal, 83.8 % external, on patients)",
            f"  Kerboul combined angle MAE {mean(self.kerboul_errors):.1f} deg "
            f"({self.kerboul_partial} hips partial: no sagittal section found); "
            f"coronal arc MAE {mean(self.coronal_arc_errors):.1f} deg",
            f"  acetabular roof lateral edge: mean abs error {mean(list(edges)):.1f} mm, "
            f"median {float(np.median(edges)) if edges.size else float('nan'):.1f} mm, "
            f"max {float(edges.max()) if edges.size else float('nan'):.1f} mm, "
            f"bias {mean(self.roof_edge_errors_mm):+.1f} mm (+ lateral); not found "
            f"{self.roof_missing}",
            f"  head Dice coronal {mean(self.coronal_dice):.3f}, sagittal "
            f"{mean(self.sagittal_dice):.3f}",
            f"  coronal per-slice grade accuracy {self._pct(self.slices_correct, self.slices)}",
            f"  coronal volumetric grade accuracy {self._pct(self.coronal_correct, self.hips)}; "
            f"axial {self._pct(self.axial_correct, self.hips)}",
            f"  axial vs coronal grade agreement {self._pct(self.axial_coronal_agree, self.hips)}"
            f"; mean |proportion difference| {100 * mean(self.proportion_gaps):.1f} points",
            f"  grading time per phantom (4 series, {sum(1 for _ in self.seconds)} phantoms): "
            f"mean {mean(self.seconds):.1f} s",
            "confusion (rows truth, columns measured): " + " ".join(f"{c:>5}" for c in JIC_LABELS),
        ]
        for truth in JIC_LABELS:
            row = self.confusion[truth]
            lines.append(f"  {truth:>5} " + " ".join(f"{row[c]:>5}" for c in JIC_LABELS))
        for mode, counts in self.split.items():
            lines.append(f"split: {SPLIT_MODES[mode]}")
            lines.append(counts.as_text())
        for mode, axial in self.axial_split.items():
            lines.append(f"axial split: {SPLIT_MODES[mode]}")
            lines.append(axial.as_text())
        return "\n".join(lines)


SPLIT_MODES: dict[str, str] = {
    "true_both": "true head, true necrosis (the rules and the slice choice only)",
    "true_head": "true head, engine necrosis (the threshold step on the true head mask)",
    "true_necrosis": "engine head, true necrosis (inside the engine's head mask)",
    "engine": "engine head, engine necrosis (as graded)",
}
"""Where the coronal masks come from in the split of :func:`engine_classification_benchmark`."""


@dataclass
class SplitCounts:
    """The coronal measures of one split mode; ``details``: one line per hip."""

    hips: int = 0
    jic_correct: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(JIC_LABELS, 0) for t in JIC_LABELS}
    )
    arc_errors: list[float] = field(default_factory=list)
    grade_correct: int = 0
    details: list[str] = field(default_factory=list)

    def add(
        self,
        truth: Any,
        hip: SeriesHipResult | None,
        label: str,
    ) -> None:
        classification = None if hip is None else hip.classification
        got = None if classification is None else classification.jic_type
        t, g = _label(truth.jic_type), "none" if got is None else got
        self.hips += 1
        self.confusion[t][g] += 1
        self.jic_correct += int(t == g)
        if classification is not None:
            self.arc_errors.append(abs(classification.arc_deg - truth.kerboul_coronal_deg))
        grade = None if hip is None else hip.grade
        self.grade_correct += int(grade == truth.grade)
        fraction = None if classification is None else classification.jic_fraction
        self.details.append(
            f"{label}: JIC {t} -> {g}"
            + ("" if fraction is None else f" (fraction {fraction:.2f})")
            + f", proportion {100 * truth.proportion:.0f} -> "
            + ("n/a" if hip is None else f"{100 * hip.proportion:.0f}")
            + " %"
            + (
                ""
                if classification is None or not classification.reason
                else f"; {classification.reason}"
            )
        )

    def as_text(self, details: bool = False) -> str:
        arc = float(np.mean(self.arc_errors)) if self.arc_errors else float("nan")
        pct = 100 * self.jic_correct / self.hips if self.hips else float("nan")
        grade = 100 * self.grade_correct / self.hips if self.hips else float("nan")
        wrong = {
            f"{t}->{g}": n
            for t, row in self.confusion.items()
            for g, n in row.items()
            if n and t != g
        }
        out = (
            f"  JIC {pct:.1f} % ({self.jic_correct}/{self.hips}), coronal arc MAE {arc:.1f} deg, "
            f"coronal volumetric grade {grade:.1f} %; wrong: "
            + (", ".join(f"{k} x{n}" for k, n in sorted(wrong.items())) or "none")
        )
        if details:
            out += "\n" + "\n".join(f"    {line}" for line in self.details)
        return out


@dataclass
class AxialSplitCounts:
    """The axial volumetric grade of one split mode; ``details``: one line per hip."""

    hips: int = 0
    grade_correct: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, truth: Any, hip: SeriesHipResult | None, label: str) -> None:
        grade = None if hip is None else hip.grade
        self.hips += 1
        self.grade_correct += int(grade == truth.grade)
        self.details.append(
            f"{label}: {truth.grade} {100 * truth.proportion:.1f} % -> "
            + ("n/a" if hip is None else f"{hip.grade} {100 * hip.proportion:.1f} %")
        )

    def as_text(self, details: bool = False) -> str:
        pct = 100 * self.grade_correct / self.hips if self.hips else float("nan")
        out = f"  axial volumetric grade {pct:.1f} % ({self.grade_correct}/{self.hips})"
        if details:
            out += "\n" + "\n".join(f"    {line}" for line in self.details)
        return out


def _mr_series(slices: Any, uid: str, laterality: str | None = None) -> list[MRSlice]:
    normal = np.cross(slices.orientation[:3], slices.orientation[3:])
    first = np.asarray(slices.first_position_mm)
    return [
        MRSlice(
            pixels=slices.images[k],
            pixel_spacing_mm=slices.pixel_spacing_mm,
            slice_thickness_mm=slices.spacing_mm,
            spacing_between_slices_mm=slices.spacing_mm,
            image_position=(
                float(first[0] + k * slices.spacing_mm * normal[0]),
                float(first[1] + k * slices.spacing_mm * normal[1]),
                float(first[2] + k * slices.spacing_mm * normal[2]),
            ),
            image_orientation=slices.orientation,
            laterality=laterality,
            series_instance_uid=uid,
            sop_instance_uid=f"{uid}.{k}",
        )
        for k in range(slices.images.shape[0])
    ]


def _heads_from_masks(
    masks: npt.NDArray[np.bool_], sides: dict[str, slice], margin_px: int
) -> list[list[FemoralHead]]:
    """Per slice of ``masks`` ``(N, H, W)``, a :class:`FemoralHead` per side (``sides``:
    the columns of each side) where the mask has pixels, its box ``margin_px`` around it
    (the necrosis step reads the tissue up to 20 mm around the head)."""
    out: list[list[FemoralHead]] = []
    height, width = masks.shape[1:]
    for mask in masks:
        heads = []
        for side, columns in sides.items():
            own = np.zeros_like(mask)
            own[:, columns] = mask[:, columns]
            rows, cols = np.nonzero(own)
            if rows.size == 0:
                continue
            box = Box(
                max(int(rows.min()) - margin_px, 0),
                max(int(cols.min()) - margin_px, 0),
                min(int(rows.max()) + 1 + margin_px, height),
                min(int(cols.max()) + 1 + margin_px, width),
            )
            inside = own[box.slices]
            heads.append(
                FemoralHead(
                    side=cast(Side, side),
                    window=box,
                    box=box,
                    mask=inside,
                    probability=inside.astype(np.float32),
                    centre_rc=(float(rows.mean()), float(cols.mean())),
                )
            )
        out.append(heads)
    return out


def _measured(
    ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]
) -> tuple[SeriesHipResult, ...]:
    """The series' hips, with their classifications, from graded heads."""
    from grading.engine.hip_classification import with_classifications
    from grading.engine.pipeline import slice_result

    results = [
        slice_result(mr_slice, items, bilateral=True)
        for mr_slice, items in zip(ordered, graded, strict=True)
    ]
    hips = summarise_series(
        ordered[0].series_instance_uid, [(s, r.hips) for s, r in zip(ordered, results, strict=True)]
    )
    return with_classifications(ordered, results, hips)


def _split_series(
    series: Sequence[MRSlice], coronal: Any, result: SeriesResult, config: Any
) -> dict[str, tuple[SeriesHipResult, ...]]:
    """The hips of a bilateral series (coronal or axial: ``coronal`` is its
    :class:`PlaneSlices`) measured with true masks in place of the engine's (see
    :data:`SPLIT_MODES`; "engine" is ``result`` itself and left out here)."""
    from grading.engine.pipeline import grade_heads, series_references

    order = slice_order(series)
    if order != sorted(order):
        raise ValueError("the benchmark's slices are written along their normal")
    width = coronal.images.shape[2]
    sides = {"right": slice(0, width // 2), "left": slice(width // 2, width)}
    margin = int(round(25.0 / coronal.pixel_spacing_mm[0]))
    true_heads = _heads_from_masks(coronal.labels > 0, sides, margin)
    engine_heads = _heads_from_masks(
        np.stack([np.asarray(r.labelmap) > 0 for r in result.slices]), sides, margin
    )
    lesion = coronal.labels == 2

    def with_true_necrosis(heads: list[list[FemoralHead]]) -> list[list[GradedHead]]:
        return [
            [
                GradedHead(
                    head,
                    NecrosisResult(
                        mask=lesion[k][head.box.slices] & head.mask,
                        threshold=math.nan,
                        relative_threshold=math.nan,
                        reference=math.nan,
                        otsu_relative=math.nan,
                        contrast=0.0,
                        otsu_separation=0.0,
                        bimodal=True,
                        ambiguous=False,
                        reason="true necrosis",
                    ),
                )
                for head in heads[k]
            ]
            for k in range(len(heads))
        ]

    references = series_references(series, true_heads, config.necrosis)
    threshold = [
        grade_heads(mr_slice, heads, references, config.necrosis)
        for mr_slice, heads in zip(series, true_heads, strict=True)
    ]
    return {
        "true_both": _measured(series, with_true_necrosis(true_heads)),
        "true_head": _measured(
            series, run_series_stages(series, threshold, series_stages(config.series_rules))
        ),
        "true_necrosis": _measured(series, with_true_necrosis(engine_heads)),
    }


def _dice(result: SeriesResult, labels: npt.NDArray[np.uint8]) -> float:
    predicted = np.stack([r.labelmap > 0 for r in result.slices])
    truth = labels > 0
    total = float(predicted.sum() + truth.sum())
    return 2.0 * float((predicted & truth).sum()) / total if total else 1.0


def _lateral_edge_mm(
    mask: npt.NDArray[np.bool_], centre_row: float, sign: int, pixel: float
) -> float | None:
    above = mask & (np.arange(mask.shape[0])[:, None] < centre_row)
    cols = np.nonzero(above.any(axis=0))[0]
    if cols.size == 0:
        return None
    return float(cols.max() if sign > 0 else -cols.min()) * pixel


def engine_classification_benchmark(
    segmenter: Any,
    *,
    n_phantoms: int = 8,
    seed: int = 31000,
    pixel_mm: float = 0.9,
    split: bool = False,
    coronal_only: bool = False,
) -> EngineClassificationReport:
    """Both hips of ``n_phantoms`` volume phantoms from ``seed`` on (held out: no
    training, and not looked at while the finder and the roof were written, which used
    seeds 11-14 and 30000-30009). Per phantom: a coronal T1 series (16 slices 4 mm apart
    through both hips, 300 x 170 mm), an axial T1 (16 x 4 mm, 300 x 200 mm) and a
    sagittal T1 per hip (14 x 4 mm, 200 x 170 mm, Laterality set), each off the head
    centres by up to 2 mm; graded by :func:`grading.engine.pipeline.grade_series` without
    the test-time augmentations.

    ``split``: the coronal series is also measured with true masks in place of the
    engine's head, necrosis or both (:data:`SPLIT_MODES`, ``report.split``), to tell which
    mask loses a hip. ``coronal_only``: leave out the axial and sagittal series (no axial
    grades, agreement, Kerboul totals or sagittal Dice)."""
    from grading.engine.hip_classification import combined_kerboul
    from grading.engine.pipeline import PipelineConfig, grade_series
    from grading.engine.roof import find_roof

    config = PipelineConfig(uncertainty=None)
    report = EngineClassificationReport(model_version=str(getattr(segmenter, "model_version", "")))
    rng = np.random.default_rng(seed)
    for index in range(n_phantoms):
        phantom = make_volume_phantom(seed + index)
        t1 = phantom.render("T1")
        y = float(np.mean([h.centre_mm[1] for h in phantom.hips]))
        started = time.perf_counter()
        coronal = slice_volume(
            phantom,
            t1,
            "coronal",
            centre_mm=(0.0, y, 0.0),
            count=16,
            spacing_mm=4.0,
            field_of_view_mm=(300.0, 170.0),
            pixel_mm=pixel_mm,
            offset_mm=float(rng.uniform(-2.0, 2.0)),
        )
        axial = slice_volume(
            phantom,
            t1,
            "axial",
            centre_mm=(0.0, y, 0.0),
            count=16,
            spacing_mm=4.0,
            field_of_view_mm=(300.0, 200.0),
            pixel_mm=pixel_mm,
            offset_mm=float(rng.uniform(-2.0, 2.0)),
        )
        coronal_series = _mr_series(coronal, f"2.25.{seed + index}1")
        coronal_result = grade_series(coronal_series, segmenter, config=config)
        axial_series = _mr_series(axial, f"2.25.{seed + index}2")
        axial_result = (
            SeriesResult(slices=(), hips=())
            if coronal_only
            else grade_series(axial_series, segmenter, config=config)
        )
        report.coronal_dice.append(_dice(coronal_result, coronal.labels))
        if split:
            split_hips = _split_series(coronal_series, coronal, coronal_result, config)
            for spec, truth in zip(phantom.hips, phantom.truth, strict=True):
                label = f"seed {seed + index} {spec.side}"
                for mode in SPLIT_MODES:
                    found: dict[str, SeriesHipResult] = {
                        h.side: h for h in split_hips.get(mode, coronal_result.hips)
                    }
                    report.split.setdefault(mode, SplitCounts()).add(
                        truth, found.get(spec.side), label
                    )
            if not coronal_only:
                axial_split_hips = _split_series(axial_series, axial, axial_result, config)
                for spec, truth in zip(phantom.hips, phantom.truth, strict=True):
                    for mode in SPLIT_MODES:
                        by_side: dict[str, SeriesHipResult] = {
                            h.side: h for h in axial_split_hips.get(mode, axial_result.hips)
                        }
                        report.axial_split.setdefault(mode, AxialSplitCounts()).add(
                            truth, by_side.get(spec.side), f"seed {seed + index} {spec.side}"
                        )
        sagittal_found: dict[str, Any] = {}
        if coronal_only:
            rng.uniform(-2.0, 2.0, size=len(phantom.hips))  # the same offsets as a full run
        for spec in phantom.hips if not coronal_only else ():
            sagittal = slice_volume(
                phantom,
                t1,
                "sagittal",
                centre_mm=spec.centre_mm,
                count=14,
                spacing_mm=4.0,
                field_of_view_mm=(200.0, 170.0),
                pixel_mm=pixel_mm,
                offset_mm=float(rng.uniform(-2.0, 2.0)),
            )
            lateral = "R" if spec.side == "right" else "L"
            result = grade_series(
                _mr_series(sagittal, f"2.25.{seed + index}3{lateral}", lateral),
                segmenter,
                config=config,
            )
            report.sagittal_dice.append(_dice(result, sagittal.labels))
            for hip in result.hips:
                if hip.side == spec.side and hip.classification is not None:
                    sagittal_found[spec.side] = hip.classification
        report.seconds.append(time.perf_counter() - started)

        width = coronal.images.shape[2]
        halves = {"right": slice(0, width // 2), "left": slice(width // 2, width)}
        coronal_hips: dict[str, SeriesHipResult] = {h.side: h for h in coronal_result.hips}
        axial_hips: dict[str, SeriesHipResult] = {h.side: h for h in axial_result.hips}
        for spec, truth in zip(phantom.hips, phantom.truth, strict=True):
            report.hips += 1
            half = halves[spec.side]
            for k, slice_result in enumerate(coronal_result.slices):
                true_head = float((coronal.labels[k][:, half] > 0).sum())
                if true_head == 0:
                    continue
                true_grade = grade_from_proportion(
                    float((coronal.labels[k][:, half] == 2).sum()) / true_head
                )
                got = next((h.grade for h in slice_result.hips if h.side == spec.side), None)
                report.slices += 1
                report.slices_correct += int(got == true_grade)
            coronal_hip = coronal_hips.get(spec.side)
            classification = None if coronal_hip is None else coronal_hip.classification
            got_jic = None if classification is None else classification.jic_type
            t = _label(truth.jic_type)
            g = "none" if got_jic is None else got_jic
            report.confusion[t][g] += 1
            report.jic_correct += int(t == g)
            kerboul = combined_kerboul(classification, sagittal_found.get(spec.side))
            if kerboul is not None:
                report.kerboul_errors.append(abs(kerboul.angle_deg - truth.kerboul_angle_deg))
                report.kerboul_partial += int(kerboul.partial)
            if classification is not None:
                report.coronal_arc_errors.append(
                    abs(classification.arc_deg - truth.kerboul_coronal_deg)
                )
                k = classification.mid_index
                head = coronal_result.slices[k].labelmap > 0
                head[:, : half.start] = False
                head[:, half.stop :] = False
                sign = int(spec.lateral_sign)
                roof = find_roof(
                    coronal.images[k],
                    head,
                    pixel_spacing_mm=coronal.pixel_spacing_mm,
                    lateral_col_sign=sign,
                )
                true_head = coronal.labels[k] > 0
                true_head[:, : half.start] = False
                true_head[:, half.stop :] = False
                centre_row = float(np.nonzero(true_head)[0].mean()) if true_head.any() else 0.0
                truth_edge = _lateral_edge_mm(coronal.roof[k], centre_row, sign, pixel_mm)
                found_edge = (
                    None
                    if roof is None
                    else _lateral_edge_mm(roof.mask, centre_row, sign, pixel_mm)
                )
                if found_edge is None or truth_edge is None:
                    report.roof_missing += 1
                else:
                    report.roof_edge_errors_mm.append(found_edge - truth_edge)
            coronal_grade = None if coronal_hip is None else coronal_hip.grade
            axial_hip = axial_hips.get(spec.side)
            axial_grade = None if axial_hip is None else axial_hip.grade
            report.coronal_correct += int(coronal_grade == truth.grade)
            report.axial_correct += int(axial_grade == truth.grade)
            report.axial_coronal_agree += int(
                coronal_grade is not None and coronal_grade == axial_grade
            )
            if coronal_hip is not None and axial_hip is not None:
                report.proportion_gaps.append(abs(coronal_hip.proportion - axial_hip.proportion))
    return report
