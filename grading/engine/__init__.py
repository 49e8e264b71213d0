"""Pure grading engine: numpy and torch only, no Django, no DICOM.

Data flow: ``MRSlice`` (from ``grading.dicom`` or the phantom generator) ->
``hips`` (find each femoral head) -> ``predictor`` (CNN head mask) ->
``necrosis`` (adaptive threshold inside the head) -> ``measure`` (areas,
proportions, Steinberg extent grade).
"""
