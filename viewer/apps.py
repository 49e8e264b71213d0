from django.apps import AppConfig


class ViewerConfig(AppConfig):
    """Pages of the portal: log in, worklist, upload and the Cornerstone3D study viewer."""

    name = "viewer"
    verbose_name = "Viewer"
