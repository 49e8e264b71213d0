"""DICOM interoperability: the C-STORE receiver (``manage.py dicom_scp``), DICOMweb
(STOW-RS, QIDO-RS, WADO-RS under ``/api/dicomweb/``) and the ingest benchmark against
Orthanc (``manage.py bench_interop``). Its own app (label ``interop``) so that its
migrations never collide with the core's."""
