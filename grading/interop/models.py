"""Which DICOM peers may send studies, and into which site."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.db import models

from grading.models import Site


def _valid_ae_title(value: str) -> None:
    # PS3.5: AE is at most 16 characters of the default repertoire, no backslash or
    # control characters; leading/trailing spaces are not significant.
    stripped = value.strip()
    if not stripped or len(stripped) > 16:
        raise ValidationError("An AE title has 1 to 16 characters.")
    if "\\" in stripped or any(ord(c) < 32 or ord(c) > 126 for c in stripped):
        raise ValidationError("An AE title has printable ASCII characters and no backslash.")


class RemoteAE(models.Model):
    """A DICOM application entity (a scanner, a PACS) that may send to the portal.

    The receiver files each instance a peer sends into ``site``. A peer whose calling AE
    title is not listed here (or is disabled) is rejected at association time
    ("calling AE title not recognised") unless the receiver runs with a default site.
    When ``address`` is set, the peer must also connect from that IP address.
    """

    ae_title = models.CharField(max_length=16, unique=True, validators=[_valid_ae_title])
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="remote_aes")
    address = models.GenericIPAddressField(
        null=True, blank=True, help_text="Only accept this peer from this IP address."
    )
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "remote AE"
        verbose_name_plural = "remote AEs"

    def __str__(self) -> str:
        return f"{self.ae_title} -> {self.site}"

    def clean(self) -> None:
        self.ae_title = self.ae_title.strip()
        _valid_ae_title(self.ae_title)
        if self.address:
            try:
                ipaddress.ip_address(self.address)
            except ValueError as exc:
                raise ValidationError({"address": "Not an IP address."}) from exc
