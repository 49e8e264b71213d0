"""Are analysis workers alive? (the pages say so when none is)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer
from grading.selectors import analysis_stall_reason, workers_alive


class WorkerStatusApi(ApiAuthMixin, APIView):
    """Workers seen in the last ``ONFH_STALE_AFTER_S`` seconds; ``stalled`` is
    ``"no worker"`` when none takes analyses (uploads wait until one starts)."""

    @extend_schema_serializer(component_name="WorkerStatus")
    class OutputSerializer(serializers.Serializer):
        alive = serializers.IntegerField()
        stalled = serializers.CharField(allow_null=True)
        workers = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        operation_id="workers_retrieve",
        responses={200: OutputSerializer, 401: ErrorSerializer},
        tags=["workers"],
    )
    def get(self, request: Request) -> Response:
        alive = workers_alive()
        data = {
            "alive": len(alive),
            "stalled": analysis_stall_reason(),
            "workers": [
                {"name": w.name, "queues": w.queues, "last_seen": w.last_seen.isoformat()}
                for w in alive
            ],
        }
        return Response(self.OutputSerializer(data).data)
