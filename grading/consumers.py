"""WebSocket ``ws/studies/``: status and audit events of the studies a user may see.

Authenticate (session, via ``AuthMiddlewareStack``), join one group per site of the
user and one per study shared with them, forward ``study.status`` and ``study.audit``
messages, each only after checking that the user may still see that study: a
membership removed, a share ended or a consult closed after the socket opened stops
the messages at once (the groups joined at connect are only a pre-filter).
In the embedded mode the first connection also starts the relay of
the DB outbox into this process's in-memory channel layer.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from grading.selectors import study_visible_now, user_groups
from grading.services.notify import outbox_relay_ensure_started


class StudyStatusConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await outbox_relay_ensure_started()
        self.groups_joined = await database_sync_to_async(user_groups)(user=user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # A frame that is not JSON text (binary, empty, malformed, nested past the
        # recursion limit) gets an error message; the base class raises, which closes the
        # socket with 1011 (internal error) and logs a traceback.
        if not text_data:
            await self.send_json({"type": "error", "detail": "Send JSON text frames."})
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):
            await self.send_json({"type": "error", "detail": "The frame is not valid JSON."})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The socket only pushes; a ping gets a pong so that clients can check it is alive.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def _may_see(self, event: dict[str, Any]) -> bool:
        user = self.scope.get("user")
        study_id = event.get("study_id")
        if user is None or not isinstance(study_id, int):
            return False
        return await database_sync_to_async(study_visible_now)(user_id=user.pk, study_id=study_id)

    async def study_status(self, event: dict[str, Any]) -> None:
        if await self._may_see(event):
            await self.send_json(event)

    async def study_audit(self, event: dict[str, Any]) -> None:
        if await self._may_see(event):
            await self.send_json(event)

    # Second opinions (grading.consults), sent to the user's own group.
    async def consult_request(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def consult_answer(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
