"""The process-wide segmenter and the conversions between engine values and rows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import default_storage

from grading.dicom.reader import DicomReadError, read_mr_frames, read_mr_slice
from grading.engine.types import Grade, HipSliceResult, MRSlice, SeriesHipResult, Uncertainty
from grading.engine.uncertainty import uncertainty_as_dict

if TYPE_CHECKING:
    from grading.engine.predictor import HeadSegmenter
    from grading.models import Instance

logger = logging.getLogger(__name__)

_segmenter: HeadSegmenter | None = None
_segmenter_lock = threading.Lock()


def engine_device() -> str:
    """``cuda`` when ONFH_DEVICE allows it and a GPU is there, else ``cpu``."""
    import torch

    wanted = (settings.ONFH_DEVICE or "auto").lower()
    if wanted == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        logger.warning("ONFH_DEVICE=cuda but no CUDA device is visible: using the CPU")
    return "cpu"


def segmenter_get() -> HeadSegmenter:
    """The segmenter of this process, loaded on first use and then kept (one per worker
    process: ``grading.tasks`` preloads it at ``worker_process_init``)."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                import torch

                from grading.engine.predictor import HeadSegmenter

                if settings.ONFH_TORCH_THREADS:
                    torch.set_num_threads(settings.ONFH_TORCH_THREADS)
                device = engine_device()
                weights = settings.ONFH_WEIGHTS
                _segmenter = HeadSegmenter.load(weights, device=device)
                logger.info("segmenter %s loaded on %s", _segmenter.model_version, device)
    return _segmenter


def instance_read(instance: Instance) -> MRSlice:
    """Read a stored instance (a slice, or one frame of a multi-frame file) back through
    the DICOM layer."""
    return instances_read([instance])[0]


def instances_read(instances: Sequence[Instance]) -> list[MRSlice]:
    """Read stored instances in order; a multi-frame file is read once for all its frames."""
    frames_of: dict[str, list[MRSlice]] = {}
    slices: list[MRSlice] = []
    for instance in instances:
        name = instance.file.name
        if instance.frame_number is None:
            with default_storage.open(name, "rb") as handle:
                slices.append(read_mr_slice(handle.read(), name=instance.sop_instance_uid))
            continue
        if name not in frames_of:
            with default_storage.open(name, "rb") as handle:
                frames_of[name] = read_mr_frames(handle.read(), name=instance.sop_instance_uid)
        frames = frames_of[name]
        if not 1 <= instance.frame_number <= len(frames):
            raise DicomReadError(
                instance.sop_instance_uid,
                f"frame {instance.frame_number} of a file with {len(frames)} frames",
            )
        slices.append(frames[instance.frame_number - 1])
    return slices


def hip_slice_as_dict(hip: HipSliceResult) -> dict[str, Any]:
    return {
        "side": hip.side,
        "head_area_mm2": float(hip.head_area_mm2),
        "necrosis_area_mm2": float(hip.necrosis_area_mm2),
        "proportion": float(hip.proportion),
        "grade": str(Grade(hip.grade).value),
        "flags": list(hip.flags),
        "bbox": list(hip.bbox) if hip.bbox is not None else None,
        "confidence": float(hip.confidence) if hip.confidence is not None else None,
        **uncertainty_as_dict(hip.uncertainty),
    }


def uncertainty_from_dict(data: dict[str, Any]) -> Uncertainty | None:
    interval = data.get("proportion_interval")
    probabilities = data.get("grade_probabilities")
    if not interval or not probabilities:
        return None
    return Uncertainty(
        interval=(float(interval[0]), float(interval[1])),
        grade_probabilities={str(k): float(v) for k, v in probabilities.items()},
    )


def hip_slice_from_dict(data: dict[str, Any]) -> HipSliceResult:
    bbox = data.get("bbox")
    return HipSliceResult(
        side=data["side"],
        head_area_mm2=float(data["head_area_mm2"]),
        necrosis_area_mm2=float(data["necrosis_area_mm2"]),
        proportion=float(data["proportion"]),
        grade=Grade(data["grade"]),
        flags=tuple(data.get("flags") or ()),
        bbox=tuple(bbox) if bbox else None,  # type: ignore[arg-type]
        confidence=data.get("confidence"),
        uncertainty=uncertainty_from_dict(data),
    )


def series_hip_as_dict(hip: SeriesHipResult) -> dict[str, Any]:
    return {
        "side": hip.side,
        "head_volume_mm3": float(hip.head_volume_mm3),
        "necrosis_volume_mm3": float(min(hip.necrosis_volume_mm3, hip.head_volume_mm3)),
        "proportion": float(min(max(hip.proportion, 0.0), 1.0)),
        "grade": str(Grade(hip.grade).value),
        "flags": list(hip.flags),
        "slice_count": int(hip.slice_count),
        **uncertainty_as_dict(hip.uncertainty),
        "method_proportions": {k: float(v) for k, v in hip.method_proportions.items()},
        "classification": None if hip.classification is None else hip.classification.as_dict(),
    }
