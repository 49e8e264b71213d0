"""The classifications of a stored hip (JIC type, Kerboul angle, extent, stage).

From the current proportion: the extent (Steinberg/ARCO A, B, C) and the MRI-only stage.
The JIC type and the Kerboul angle need the mid-coronal (and mid-sagittal) masks with
the acetabular roof, which the engine gives only once it grades coronal series (issue 14
item 4); until then they are null here and ``onfh grade``/``onfh benchmark`` compute them
from coronal label maps.
"""

from __future__ import annotations

from typing import Any

from grading.engine.classifications import extent_from_proportion, stage_from_findings


def hip_classifications(*, hip: Any) -> dict[str, Any]:
    """``{"jic_type", "kerboul_angle_deg", "kerboul_partial", "extent", "stage",
    "stage_source"}`` of a HipResult, from its current proportion."""
    proportion = min(max(float(hip.proportion or 0.0), 0.0), 1.0)
    extent = extent_from_proportion(proportion)
    stage = stage_from_findings(necrosis_on_mri=extent is not None, findings=None, extent=extent)
    return {
        "jic_type": None,
        "kerboul_angle_deg": None,
        "kerboul_partial": None,
        "extent": None if extent is None else str(extent),
        "stage": stage.text,
        "stage_source": stage.source,
    }
