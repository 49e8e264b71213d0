"""Tissue classes of the phantom label maps: what each pixel is made of.

The segmentation labels (0 background, 1 viable head, 2 necrosis) say what the
network must find; the tissue map says what the painters drew there, one
:class:`TissueClass` per pixel, so training can synthesise new images from the
same anatomy with other intensities (SynthSeg-style domain randomisation,
:mod:`grading.engine.synthesis`). Every painter that writes a signal writes its
class beside it, in :meth:`Canvas.paint <.shapes.Canvas.paint>`.
"""

from __future__ import annotations

from enum import IntEnum


class TissueClass(IntEnum):
    """One drawn tissue (uint8 codes, stable: cached training maps store them)."""

    AIR = 0
    FAT = 1
    SKIN = 2
    MUSCLE = 3
    CORTEX = 4
    FEMUR_MARROW = 5
    """Femoral marrow outside the head (neck, trochanters, shaft)."""
    HEAD_MARROW = 6
    """Viable marrow inside the femoral head (label 1)."""
    PELVIC_MARROW = 7
    """Acetabulum, ilium, ischium, pubis, sacrum."""
    CARTILAGE = 8
    JOINT_LINE = 9
    CAPSULE = 10
    LABRUM = 11
    PULVINAR_FAT = 12
    ARTERY = 13
    VEIN = 14
    NERVE = 15
    BOWEL_WALL = 16
    BOWEL_CONTENT = 17
    BLADDER_WALL = 18
    URINE = 19
    PELVIC_ORGAN = 20
    OEDEMA = 21
    """Marrow oedema (a mimic, viable head where it lies inside the head)."""
    PHYSEAL_SCAR = 22
    LESION_BAND = 23
    """The dark reactive band at the margin of a necrotic lesion (label 2)."""
    LESION_INTERIOR = 24
    """Necrotic interior darker than marrow (homogeneous pattern, label 2)."""
    LESION_FAT_LIKE = 25
    """Necrotic interior near marrow signal (fat-like and mixed patterns, label 2)."""
    LIGAMENTUM_TERES = 26
    """The fovea capitis' pit with the ligamentum teres (a normal variant, label 1)."""
    RED_MARROW = 27
    """Residual haematopoietic marrow island in the head (a normal variant, label 1)."""
    COMPRESSIVE_TRABECULAE = 28
    """The primary compressive trabeculae, dense bone (a normal variant, label 1)."""


N_TISSUE_CLASSES = len(TissueClass)

HEAD_VARIANT_CLASSES: tuple[TissueClass, ...] = (
    TissueClass.LIGAMENTUM_TERES,
    TissueClass.RED_MARROW,
    TissueClass.COMPRESSIVE_TRABECULAE,
)
"""Normal findings of the head drawn darker than fatty marrow (viable head, label 1)."""

LESION_CLASSES: tuple[TissueClass, ...] = (
    TissueClass.LESION_BAND,
    TissueClass.LESION_INTERIOR,
    TissueClass.LESION_FAT_LIKE,
)
