"""Grade a slice or a series: find the heads, threshold necrosis, measure, summarise.

``grade_series`` sorts the slices along the slice normal, runs the network in as few
``predict`` calls as it can (one coarse pass over the whole series, then the fine pass
in chunks of about ``fine_batch`` windows so progress can be reported), measures every
head and summarises each hip over the series. Results come back in the input order.

The marrow reference of each hip is taken over the whole series (the 80th percentile of
the per-slice marrow levels of that hip's larger sections), so a section that is mostly
necrotic is not compared with itself.

Then, in the numbering of ``docs/grading.md``: steps 1-8 threshold each head section
(:mod:`grading.engine.necrosis`; on a coronal or sagittal slice with step 6c in place of
5-6b, the lesion expected superior or anterosuperior), steps 9-11 run over the series as
the named stages of
:func:`grading.engine.series_rules.series_stages`, step 13 adds the learned necrosis
method when the network has a necrosis output (:mod:`grading.engine.learned`;
``PipelineConfig.reported_method`` says which method reports), and step 14 grades each
head again under test-time augmentations and gives every slice and hip its interval and
grade probabilities (:mod:`grading.engine.uncertainty`). On a coronal or sagittal
series each hip also gets its classifications from its mid slice (JIC type with the
acetabular roof found in the image, the necrotic arc:
:mod:`grading.engine.hip_classification`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from grading.engine.hip_classification import with_classifications
from grading.engine.hips import (
    DEFAULT_CONFIG,
    STANDARD_AXIAL,
    FemoralHead,
    HipFinderConfig,
    Segmenter,
    bridged_candidates,
    coarse_pass,
    consistent_candidates,
    fine_pass,
    fine_requests,
    series_head_diameters,
    slice_plane,
)
from grading.engine.learned import has_necrosis_output, learned_necrosis
from grading.engine.measure import (
    SAME_POSITION_MM,
    SMALL_HEAD_MM2,
    measure_hip,
    positions_along_normal,
    series_slice_spacing_mm,
    slice_order,
    summarise_series,
    with_one_side_only,
)
from grading.engine.necrosis import (
    DEFAULT_NECROSIS_CONFIG,
    NecrosisConfig,
    anterior_in_image,
    find_necrosis,
    lesion_direction_in_image,
    marrow_reference,
)
from grading.engine.series_rules import (
    ANATOMICAL_STAGES,
    Graded,
    GradedHead,
    SeriesRulesConfig,
    run_series_stages,
    series_stages,
)
from grading.engine.types import (
    NECROSIS,
    VIABLE_HEAD,
    HipSliceResult,
    MRSlice,
    SeriesResult,
    Side,
    SliceResult,
)
from grading.engine.uncertainty import (
    DEFAULT_UNCERTAINTY,
    Augmentation,
    UncertaintyConfig,
    augment_head,
    augment_pixels,
    with_methods,
    with_uncertainty,
)

Progress = Callable[[int, int], None]

REFERENCE_PERCENTILE = 80.0


@dataclass(frozen=True)
class PipelineConfig:
    """Knobs of the pipeline; the defaults are the product's settings."""

    hips: HipFinderConfig = DEFAULT_CONFIG
    necrosis: NecrosisConfig = DEFAULT_NECROSIS_CONFIG
    batch_size: int = 16
    fine_batch: int = 16
    """Fine-pass windows per ``predict`` call (progress is reported between calls)."""
    series_rules: SeriesRulesConfig = SeriesRulesConfig()
    reported_method: Literal["threshold", "learned"] = "threshold"
    """Which necrosis method sets the reported proportion when both run (step 13)."""
    uncertainty: UncertaintyConfig | None = DEFAULT_UNCERTAINTY
    """Step 14; None leaves it out (no intervals, no ``uncertain_grade``)."""


DEFAULT_PIPELINE = PipelineConfig()


def series_references(
    slices: Sequence[MRSlice],
    heads: Sequence[Sequence[FemoralHead]],
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
) -> dict[Side, float]:
    """Per side, the viable-marrow level over a series (stored-value units).

    The ``REFERENCE_PERCENTILE`` of the per-slice levels of sections of at least
    ``SMALL_HEAD_MM2`` (all sections when none is that large).
    """
    levels: dict[Side, list[tuple[float, float]]] = {}
    for mr_slice, slice_heads in zip(slices, heads, strict=True):
        for head in slice_heads:
            level = marrow_reference(
                mr_slice.pixels[head.box.slices], head.mask, mr_slice.pixel_spacing_mm, config
            )
            if level is not None:
                area = float(head.mask.sum()) * mr_slice.pixel_area_mm2
                levels.setdefault(head.side, []).append((level, area))
    out: dict[Side, float] = {}
    for side, values in levels.items():
        large = [v for v, a in values if a >= SMALL_HEAD_MM2] or [v for v, _ in values]
        out[side] = float(np.percentile(large, REFERENCE_PERCENTILE))
    return out


def grade_heads(
    mr_slice: MRSlice,
    heads: Sequence[FemoralHead],
    references: dict[Side, float] | None = None,
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
    augmentation: Augmentation | None = None,
) -> list[GradedHead]:
    """Necrosis inside each head of one slice (as ``augmentation`` sees it, if given)."""
    orientation = mr_slice.image_orientation or STANDARD_AXIAL
    plane = slice_plane(orientation)
    # where the lesion is expected: anterior on an axial (or oblique) slice, superior on a
    # coronal one, anterosuperior on a sagittal one
    anterior = (
        lesion_direction_in_image(orientation)
        if plane in ("coronal", "sagittal")
        else anterior_in_image(orientation)
    )
    out = []
    for head in heads:
        pixels = mr_slice.pixels[head.box.slices]
        if augmentation is not None:
            head = augment_head(head, augmentation)
            pixels = augment_pixels(pixels, augmentation)
        reference = (references or {}).get(head.side)
        if augmentation is not None and reference is not None:
            top = float(np.max(mr_slice.pixels[head.box.slices]))
            reference = float(augment_pixels(np.asarray([reference, top]), augmentation)[0])
        necrosis = find_necrosis(
            pixels,
            head.mask,
            mr_slice.pixel_spacing_mm,
            reference=reference,
            anterior=anterior,
            config=config,
            plane=plane,
        )
        out.append(GradedHead(head, necrosis))
    return out


def slice_result(
    mr_slice: MRSlice, graded: Sequence[GradedHead], *, bilateral: bool
) -> SliceResult:
    """The ``(H, W)`` uint8 label map and the measured hips of one slice."""
    labelmap = np.zeros(mr_slice.shape, dtype=np.uint8)
    hips: list[HipSliceResult] = []
    for item in graded:
        head = item.head
        window = labelmap[head.box.slices]
        window[head.mask] = VIABLE_HEAD
        necrosis = item.necrosis.mask & head.mask
        window[necrosis] = NECROSIS
        hips.append(
            measure_hip(
                mr_slice,
                head.side,
                head.box,
                head.mask,
                necrosis,
                probability=head.probability,
                necrosis=item.necrosis,
            )
        )
    return SliceResult(
        labelmap=labelmap,
        hips=with_one_side_only(hips, bilateral=bilateral),
        sop_instance_uid=mr_slice.sop_instance_uid,
        source=mr_slice.source,
    )


def grade_series(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    progress: Progress | None = None,
    *,
    config: PipelineConfig = DEFAULT_PIPELINE,
) -> SeriesResult:
    """Grade the slices of one series (any order; results in the input order).

    ``progress(done, total)`` is called with ``(0, total)`` first, then as slices are
    segmented, and ``(total, total)`` once everything is measured. ``timings_s`` holds
    ``coarse``, ``fine``, ``necrosis`` and ``total`` seconds.
    """
    started = time.perf_counter()
    total = len(slices)
    if progress is not None:
        progress(0, total)
    model_version = str(getattr(segmenter, "model_version", ""))
    if total == 0:
        return SeriesResult(slices=(), hips=(), model_version=model_version)
    if total > 1 and one_position(slices):
        return _each_alone(slices, segmenter, progress, config, started)
    order = slice_order(slices)
    ordered = [slices[i] for i in order]

    coarse = coarse_pass(ordered, segmenter, config.hips, batch_size=config.batch_size)
    coarse = consistent_candidates(ordered, coarse, config.hips)
    if total > 2:
        coarse = bridged_candidates(coarse, series_slice_spacing_mm(ordered), config.hips)
    after_coarse = time.perf_counter()
    diameters = series_head_diameters(coarse) if total > 1 else None
    requests = fine_requests(ordered, coarse, diameters, config.hips)
    flip = config.uncertainty is not None and any(
        a.flipped_head for a in config.uncertainty.augmentations
    )
    heads: list[list[FemoralHead]] = [[] for _ in ordered]
    start = 0
    while start < len(requests):
        # whole slices per chunk, about ``fine_batch`` windows
        stop = min(start + max(config.fine_batch, 1), len(requests))
        while stop < len(requests) and requests[stop][0] == requests[stop - 1][0]:
            stop += 1
        chunk = requests[start:stop]
        found = fine_pass(
            ordered, chunk, segmenter, config.hips, batch_size=config.batch_size, flip=flip
        )
        for index, slice_heads in enumerate(found):
            heads[index].extend(slice_heads)
        start = stop
        if progress is not None:
            done = requests[stop - 1][0] + 1 if stop < len(requests) else total
            progress(min(done, total - 1), total)
    after_fine = time.perf_counter()

    references = series_references(ordered, heads, config.necrosis)

    def threshold_method(augmentation: Augmentation | None = None) -> Graded:
        graded = [
            grade_heads(mr_slice, slice_heads, references, config.necrosis, augmentation)
            for mr_slice, slice_heads in zip(ordered, heads, strict=True)
        ]
        return run_series_stages(ordered, graded, stages)

    stages = series_stages(config.series_rules)
    methods: dict[str, Graded] = {"threshold": threshold_method()}
    if has_necrosis_output(segmenter):
        learned = learned_necrosis(
            ordered,
            heads,
            segmenter,
            batch_size=config.batch_size,
            min_area_mm2=config.necrosis.min_area_mm2,
        )
        methods["learned"] = run_series_stages(
            ordered,
            [
                [GradedHead(h, n) for h, n in zip(slice_heads, found, strict=True)]
                for slice_heads, found in zip(heads, learned, strict=True)
            ],
            [stage for stage in stages if stage.name in ANATOMICAL_STAGES],
        )
    reported = config.reported_method if config.reported_method in methods else "threshold"
    graded = methods[reported]
    results: list[SliceResult] = []
    per_slice: list[tuple[MRSlice, tuple[HipSliceResult, ...]]] = []
    for mr_slice, slice_graded, coarse_result in zip(ordered, graded, coarse, strict=True):
        result = slice_result(
            mr_slice, slice_graded, bilateral=coarse_result.layout.kind == "bilateral"
        )
        results.append(result)
        per_slice.append((mr_slice, result.hips))
    hips = summarise_series(ordered[0].series_instance_uid, per_slice)
    after_necrosis = time.perf_counter()
    hips = with_methods(hips, reported, methods, ordered)
    if config.uncertainty is not None:
        samples = [threshold_method(a) for a in config.uncertainty.augmentations]
        if reported != "threshold":
            samples = [methods[reported]]  # the threshold's augmentations do not apply
        results, hips = with_uncertainty(
            ordered, results, hips, samples, methods, reported, config.uncertainty
        )
    hips = tuple(
        replace(
            h, classification=replace(h.classification, mid_index=order[h.classification.mid_index])
        )
        if h.classification is not None
        else h
        for h in with_classifications(ordered, results, hips)
    )
    finished = time.perf_counter()
    if progress is not None:
        progress(total, total)

    in_input_order: list[SliceResult | None] = [None] * total
    for position, index in enumerate(order):
        in_input_order[index] = results[position]
    return SeriesResult(
        slices=tuple(r for r in in_input_order if r is not None),
        hips=hips,
        model_version=model_version,
        timings_s={
            "coarse": after_coarse - started,
            "fine": after_fine - after_coarse,
            "necrosis": after_necrosis - after_fine,
            "uncertainty": finished - after_necrosis,
            "total": finished - started,
        },
    )


def one_position(slices: Sequence[MRSlice]) -> bool:
    """Whether every slice lies at one position along the normal (within
    ``SAME_POSITION_MM``): not a stack but separate images (single-hip crops, key images)."""
    positions = positions_along_normal(slices)
    return positions is not None and max(positions) - min(positions) <= SAME_POSITION_MM


def _each_alone(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    progress: Progress | None,
    config: PipelineConfig,
    started: float,
) -> SeriesResult:
    """Images that share one position are graded each on its own, as single slices: no
    series stage joins them and there is no volume, so no hip result."""
    results = []
    for done, mr_slice in enumerate(slices, start=1):
        results.append(grade_series([mr_slice], segmenter, config=config).slices[0])
        if progress is not None:
            progress(min(done, len(slices) - 1), len(slices))
    if progress is not None:
        progress(len(slices), len(slices))
    return SeriesResult(
        slices=tuple(results),
        hips=(),
        model_version=str(getattr(segmenter, "model_version", "")),
        timings_s={"total": time.perf_counter() - started},
    )


def grade_slice(
    mr_slice: MRSlice, segmenter: Segmenter, *, config: PipelineConfig = DEFAULT_PIPELINE
) -> SliceResult:
    """Grade one slice on its own (its own marrow reference and window sizes)."""
    return grade_series([mr_slice], segmenter, config=config).slices[0]
