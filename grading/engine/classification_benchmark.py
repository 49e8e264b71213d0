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

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from grading.engine.classifications import JicType, jic_type, kerboul_combined, necrotic_arc_deg
from grading.engine.grading_rules import grade_from_proportion
from grading.engine.phantoms.volume import make_volume_phantom, slice_volume
from grading.engine.types import MRSlice, SeriesHipResult, SeriesResult

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
        return "\n".join(lines)


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
) -> EngineClassificationReport:
    """Both hips of ``n_phantoms`` volume phantoms from ``seed`` on (held out: no
    training, and not looked at while the finder and the roof were written, which used
    seeds 11-14 and 30000-30009). Per phantom: a coronal T1 series (16 slices 4 mm apart
    through both hips, 300 x 170 mm), an axial T1 (16 x 4 mm, 300 x 200 mm) and a
    sagittal T1 per hip (14 x 4 mm, 200 x 170 mm, Laterality set), each off the head
    centres by up to 2 mm; graded by :func:`grading.engine.pipeline.grade_series` without
    the test-time augmentations."""
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
        axial_result = grade_series(
            _mr_series(axial, f"2.25.{seed + index}2"), segmenter, config=config
        )
        report.coronal_dice.append(_dice(coronal_result, coronal.labels))
        sagittal_found: dict[str, Any] = {}
        for spec in phantom.hips:
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
