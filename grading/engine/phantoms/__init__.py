"""Synthetic axial T1 hip MRI with ground truth, deterministic by seed.

Research and teaching data, not patient data. Everything is drawn from one
anatomy model (:mod:`.anatomy`) rendered on any pixel grid (:mod:`.render`)
with scanner effects (:mod:`.acquisition`):

- :func:`make_bilateral_series`: contiguous axial slices through both hips,
  any matrix and spacing, per-hip volumetric truth and grade;
- :func:`make_hip_crop`: one paper-style 256 x 256 window around a hip;
- :func:`make_training_crops`: fast batches of windows for training;
- :func:`grade_balanced_series`: series whose hips span the four grades;
- :func:`make_training_crops_with_tissue`: the training windows with their tissue
  maps (:class:`TissueClass` per pixel), for SynthSeg-style domain randomisation.

Every head, normal or lesioned, carries normal findings that are darker than fatty
marrow on T1 (fovea capitis, red marrow islands, compressive trabeculae:
:class:`~.anatomy.HeadVariants`) and every series scanner effects (chemical shift, coil
bias, Gibbs ringing, partial volume at the head's poles), all labelled viable head; see
``docs/grading.md``, "Normal findings that look like necrosis on T1".

Label maps: 0 background, 1 viable femoral head, 2 necrosis (inside the head).
Image left is the patient's right; rows run anterior to posterior.
"""

from grading.engine.phantoms.acquisition import INTENSITY_MAXIMA, Acquisition
from grading.engine.phantoms.anatomy import MIMICS, NECROSIS_PATTERNS, SIDES
from grading.engine.phantoms.crops import (
    PhantomCrop,
    make_hip_crop,
    make_training_crops,
    make_training_crops_with_tissue,
)
from grading.engine.phantoms.series import (
    GRADE_CYCLE,
    MATRICES,
    HipTruth,
    PhantomSeries,
    SliceHipTruth,
    grade_balanced_series,
    make_bilateral_series,
)
from grading.engine.phantoms.tissues import N_TISSUE_CLASSES, TissueClass

__all__ = [
    "GRADE_CYCLE",
    "INTENSITY_MAXIMA",
    "MATRICES",
    "MIMICS",
    "NECROSIS_PATTERNS",
    "SIDES",
    "Acquisition",
    "HipTruth",
    "PhantomCrop",
    "PhantomSeries",
    "SliceHipTruth",
    "grade_balanced_series",
    "make_bilateral_series",
    "make_hip_crop",
    "make_training_crops",
    "make_training_crops_with_tissue",
    "N_TISSUE_CLASSES",
    "TissueClass",
]
