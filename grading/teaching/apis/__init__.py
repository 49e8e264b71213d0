"""The teaching REST API under ``/api/teaching/`` (see ``grading/teaching/urls.py``)."""
