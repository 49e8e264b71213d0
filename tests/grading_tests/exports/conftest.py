"""The API tests' phantom study (``world``) is reused for the export tests."""

from tests.grading_tests.apis.conftest import phantom_dicom, world  # noqa: F401
