"""PACS query/retrieve and sending results back (issue 15 items 2 and 3).

* ``pacs_node_create``: a site admin adds a node (audited).
* ``pacs_studies_find``: C-FIND of a patient's studies on a node (audited with the user).
* ``pacs_study_retrieve_request`` -> task ``pacs_retrieve`` -> ``pacs_study_retrieve``:
  C-MOVE of a study to the portal's own receiver (AE ``ONFH_SCP_AE_TITLE``), which files
  the instances into the node's site and sends them to analysis like any C-STORE.
* ``series_send_request`` -> task ``pacs_send`` -> ``pacs_send_run``: C-STORE of the
  series' DICOM SEG, TID 1500 SR and a secondary-capture summary to a node, retried with
  back-off; a node with ``send_on_confirm`` gets them after every grade confirmation
  (``series_sends_on_confirmation``). A newer SR names the SRs sent before it to the
  same node in its PredecessorDocumentsSequence; SEG and SR are new instances each time.
* ``pacs_sends_sweep`` (run by every process's sweep): a send with no progress for
  ``ONFH_PACS_SEND_STALE_S`` (its worker message lost) is sent again, or failed with the
  reason once its attempts are used up; audited; never a send that is still running.
"""

from grading.interop.services.nodes import pacs_node_create
from grading.interop.services.retrieve import (
    pacs_studies_find,
    pacs_study_retrieve,
    pacs_study_retrieve_request,
)
from grading.interop.services.sends import (
    SEND_OBJECTS,
    SendRetry,
    pacs_send_run,
    pacs_sends_sweep,
    series_send_request,
    series_sends_on_confirmation,
    series_summary_image,
)

__all__ = [
    "SEND_OBJECTS",
    "SendRetry",
    "pacs_node_create",
    "pacs_send_run",
    "pacs_sends_sweep",
    "pacs_studies_find",
    "pacs_study_retrieve",
    "pacs_study_retrieve_request",
    "series_send_request",
    "series_sends_on_confirmation",
    "series_summary_image",
]
