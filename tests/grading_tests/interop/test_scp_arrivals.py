"""A series arriving by a DICOM association is not analysed until the association
ends (issue 13 item 1): pynetdicom as a real client holds the association open."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from grading.models import IncomingSeries, Study
from grading.services.analyses import study_analyses_request
from tests.grading_tests.interop.test_scp import _wait_for, receiver  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed"),
    pytest.mark.timeout(120),
]


def test_no_analysis_while_the_association_is_open(receiver, mr_series) -> None:  # noqa: F811
    scp, _site = receiver
    client = AE(ae_title="SCANNER1")
    client.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    assoc = client.associate("127.0.0.1", scp.port, ae_title="ONFH")
    assert assoc.is_established
    try:
        for path in mr_series.paths[:2]:
            status = assoc.send_c_store(pydicom.dcmread(path))
            assert status.Status == 0x0000
        study = Study.objects.get(study_instance_uid=mr_series.study_instance_uid)
        assert IncomingSeries.objects.filter(receiver__startswith="association").exists()
        # An ingest message now (another association of the study ended) waits.
        assert study_analyses_request(study_id=study.pk) == []
    finally:
        assoc.release()
    _wait_for(lambda: not IncomingSeries.objects.exists())
    assert [a.progress_total for a in study_analyses_request(study_id=study.pk)] == [2]
