"""Which DICOM peers may send studies, and into which site."""

from __future__ import annotations

import ipaddress

from django.conf import settings
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
    The peer must connect from ``address``; a remote AE without one is accepted only over
    TLS, with a client certificate whose common name is the AE title (issue 13, item 6).
    """

    ae_title = models.CharField(max_length=16, unique=True, validators=[_valid_ae_title])
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="remote_aes")
    address = models.GenericIPAddressField(
        null=True, blank=True, help_text="Only accept this peer from this IP address."
    )
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    # C-GET of the site's studies (a viewing workstation). Off by default: a scanner that
    # sends need not read. The same trust as sending: its address, or its TLS certificate.
    may_retrieve = models.BooleanField(
        default=False,
        help_text="May fetch the site's studies and series with C-GET (a viewing "
        "workstation, not a scanner).",
    )
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


class PacsNode(models.Model):
    """A PACS the portal queries (C-FIND), retrieves from (C-MOVE to the portal's own
    receiver) and sends results to (C-STORE), for one site.

    The node is also a trusted sender: the receiver files what it sends (the C-MOVE
    answers) into ``site``, from the node's address only.
    """

    name = models.CharField(max_length=100)
    ae_title = models.CharField(max_length=16, validators=[_valid_ae_title])
    host = models.CharField(max_length=255, help_text="Host name or IP address of the PACS.")
    port = models.PositiveIntegerField()
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="pacs_nodes")
    send_on_confirm = models.BooleanField(
        default=False,
        help_text="Send SEG, SR and summary here on each grade confirmation.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "name"]
        verbose_name = "PACS node"
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="pacs_node_unique_name"),
            models.CheckConstraint(
                condition=models.Q(port__gte=1) & models.Q(port__lte=65535),
                name="pacs_node_port_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    def clean(self) -> None:
        self.ae_title = self.ae_title.strip()
        _valid_ae_title(self.ae_title)
        if not 1 <= self.port <= 65535:
            raise ValidationError({"port": "A port is 1 to 65535."})
        if not self.host.strip():
            raise ValidationError({"host": "A host is required."})


class SendState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    DONE = "done", "Sent"
    FAILED = "failed", "Failed"


class PacsSend(models.Model):
    """One request to C-STORE a series' results (SEG, SR, summary image) to a node; its
    state as the worker tries (and retries with back-off)."""

    series = models.ForeignKey(
        "grading.Series", on_delete=models.CASCADE, related_name="pacs_sends"
    )
    node = models.ForeignKey(PacsNode, on_delete=models.CASCADE, related_name="sends")
    objects_requested = models.JSONField(default=list)  # ["seg", "sr", "summary"]
    state = models.CharField(max_length=10, choices=SendState.choices, default=SendState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # The worker process ("host:pid") that claimed the send when it went to "sending".
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # What went out: [{"object", "sop_class_uid", "sop_instance_uid", "series_instance_uid"}]
    sent = models.JSONField(default=list, blank=True)
    trigger = models.CharField(max_length=20, default="user")  # user | confirmation
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"send {self.pk} of series {self.series_id} to {self.node_id}: {self.state}"
