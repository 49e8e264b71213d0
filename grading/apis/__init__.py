"""The REST API (docs/architecture.md, "Portal REST API"): one module per resource area,
one class per operation, with input and output serializers. Reads go through
``grading.selectors`` (a study the user may not see is a 404), writes through
``grading.services``; what students may not see is in ``grading.permissions``."""
