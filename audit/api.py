import django_filters
from django.db.models import QuerySet
from rest_framework import serializers, viewsets

from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_event_visible_queryset
from core.api import ActionPermissions, DatabaseDateTimeFilter


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_username",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "reason",
            "client_address",
            "previous_hash",
            "hash",
        ]
        read_only_fields = fields


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    actor_username = django_filters.CharFilter(lookup_expr="iexact")
    created_after = DatabaseDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DatabaseDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "actor_username", "object_type", "object_id"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first (read-only: the table is append-only)."""

    serializer_class = AuditEventSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("audit.view_auditevent",),
        "retrieve": ("audit.view_auditevent",),
    }
    filterset_class = AuditEventFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return audit_event_visible_queryset(self.request.user).order_by("-id")
