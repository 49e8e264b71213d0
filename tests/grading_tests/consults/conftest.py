"""The API tests' scenario (two sites, every role, an analysed phantom study)."""

from tests.grading_tests.apis.conftest import phantom_dicom, world  # noqa: F401 - fixtures
