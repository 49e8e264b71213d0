"""``onfh benchmark --classifications``: JIC type and Kerboul angle on held-out volume phantoms.

For each phantom (seeds not used anywhere else) the coronal and sagittal series are
sampled as a scanner would (4 mm apart, 0.9 mm pixels, slices off the head centre by a
random amount within half a spacing); the mid-coronal and mid-sagittal slices are the
ones with the largest head section; the JIC type and the arcs are measured on that
slice's masks (the phantom's true head, lesion and acetabular masks on the series grid:
the measurement and slice choice, not a network's segmentation) and compared with the
truth on the exact planes through the head centre of the 1 mm volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grading.engine.classifications import JicType, jic_type, kerboul_combined, necrotic_arc_deg
from grading.engine.phantoms.volume import make_volume_phantom, slice_volume

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
