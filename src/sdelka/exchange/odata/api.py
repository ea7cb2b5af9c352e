"""OData sync tasks API: start a task's run and follow it.

    GET  /api/v1/sync-tasks/                 the active tasks the user may run, with their last run
    POST /api/v1/sync-tasks/{id}/run/        {"dry_run": false, "full": false}
                                             → 202 {"run": 17, "status": "queued", …}: the run, queued now
                                             dry run → 200, the result itself (what would change; nothing written)
    GET  /api/v1/sync-runs/{id}/             a run's status and counts (done/total, created, updated, …)

Who may run a task is who may run it from the screen (`SyncTask.may_run`: administrators, integrators, and the
teams the task names); anyone else gets 403. A run is visible to whoever may run a task of its connection.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from sdelka.api.errors import call_service
from sdelka.exchange import selectors
from sdelka.exchange.models import ExchangeRun, Route

from .models import SyncTask


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExchangeRun
        fields = ["id", "connection", "status", "trigger", "started_at", "finished_at", "done", "total", "created",
                  "updated", "unchanged", "skipped", "failed", "message"]  # fmt: skip
        read_only_fields = fields


class SyncTaskSerializer(serializers.ModelSerializer):
    last_run = RunSerializer(read_only=True)

    class Meta:
        model = SyncTask
        fields = ["id", "name", "connection", "schedule", "next_run_at", "last_run"]
        read_only_fields = fields


class RunRequestSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False)
    full = serializers.BooleanField(required=False, default=False)


class QueuedRunSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class SyncTaskViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = SyncTaskSerializer

    def get_queryset(self) -> QuerySet[SyncTask]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return SyncTask.objects.none()
        return selectors.runnable_tasks(user=self.request.user)

    @extend_schema(
        request=RunRequestSerializer,
        responses={202: QueuedRunSerializer, 200: {"type": "object", "description": "the dry run's result"}},
    )
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        from sdelka.exchange.tasks import queue_sync_run

        task = get_object_or_404(SyncTask.objects.select_related("connection"), pk=pk)
        if not task.may_run(request.user):
            raise PermissionDenied(_("You may not run this task."))
        options = RunRequestSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        if options.validated_data["dry_run"]:
            return Response(call_service(_dry_run, task=task, user=request.user, full=options.validated_data["full"]))
        run = call_service(queue_sync_run, task=task, user=request.user, full=options.validated_data["full"])
        run.refresh_from_db()
        url = request.build_absolute_uri(reverse("api:sync-run-detail", kwargs={"pk": run.pk}))
        return Response({"run": run.pk, "status": run.status, "url": url}, status=status.HTTP_202_ACCEPTED)


def _dry_run(*, task: SyncTask, user: Any, full: bool) -> dict[str, Any]:
    """Read 1C as a run would and say what would change; nothing is written anywhere (no run, no journal)."""
    from .client import ODataError
    from .services import client_for
    from .sync import run_task

    try:
        result = run_task(connection=task.connection, task=task, client=client_for(task.connection), dry_run=True,
                          full=full, user=user)  # fmt: skip
    except ODataError as exc:  # 1C unreachable, a refused login…: the caller's problem to see, not a server error
        raise ValidationError(str(exc)) from exc
    return result.as_dict()


class SyncRunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = RunSerializer

    def get_queryset(self) -> QuerySet[ExchangeRun]:
        runs = ExchangeRun.objects.filter(route=Route.ODATA)
        user = self.request.user
        if getattr(self, "swagger_fake_view", False):
            return runs.none()
        if getattr(user, "manages_exchange", False):
            return runs
        runnable = selectors.runnable_tasks(user=user).filter(connection=OuterRef("connection"))
        return runs.filter(Exists(runnable))


def register(router: BaseRouter) -> None:
    router.register("sync-tasks", SyncTaskViewSet, basename="sync-task")
    router.register("sync-runs", SyncRunViewSet, basename="sync-run")
