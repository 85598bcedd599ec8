from collections.abc import Mapping

from django.contrib.auth import authenticate
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.roles import Role
from accounts.selectors import user_list
from accounts.services import (
    api_token_issue,
    user_create,
    user_deactivate,
    user_password_reset,
    user_reactivate,
    user_role_change,
)
from core.api import ActionPermissions

# The answer of every endpoint that checks a password once the login lockout holds (token,
# model activation).
LOCKED_OUT_RESPONSE = OpenApiResponse(
    inline_serializer("LockedOut", {"detail": serializers.CharField()}),
    description="Locked out after too many failures (the login form's lockout); see Retry-After.",
)


class UserSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    # Optional, so often empty: a plain string, not the schema's "email" format ("" is no email).
    email = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "role",
            "is_active",
            "last_login",
            "date_joined",
        ]
        read_only_fields = fields

    def get_role(self, user: User) -> str | None:
        return user.role.value if user.role else None


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(max_length=150, required=False, default="")
    last_name = serializers.CharField(max_length=150, required=False, default="")
    email = serializers.EmailField(required=False, default="")


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    reason = serializers.CharField(max_length=500, required=False, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="")


class DeactivateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why the account is deactivated (audited).")


class PasswordResetSerializer(serializers.Serializer):
    new_password = serializers.CharField(write_only=True)
    reason = serializers.CharField(max_length=500, required=False, default="")


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """User administration (admins only). Users are never deleted: deactivate them."""

    serializer_class = UserSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("accounts.view_user",),
        "retrieve": ("accounts.view_user",),
        "create": ("accounts.add_user",),
        "role": ("accounts.view_user", "accounts.change_user"),
        "deactivate": ("accounts.view_user", "accounts.change_user"),
        "reactivate": ("accounts.view_user", "accounts.change_user"),
        "password": ("accounts.view_user", "accounts.change_user"),
    }
    filterset_fields = ["is_active", "username"]

    def get_queryset(self) -> QuerySet[User]:
        return user_list(user=self.request.user, search=self.request.query_params.get("search", ""))

    def _validated(self, serializer_class: type[serializers.Serializer]) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request: Request) -> Response:
        data = self._validated(UserCreateSerializer)
        user = user_create(actor=request.user, **{**data, "role": Role(data["role"])})
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoleChangeSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def role(self, request: Request, pk: str) -> Response:
        data = self._validated(RoleChangeSerializer)
        user = user_role_change(
            actor=request.user, user=self.get_object(), role=Role(data["role"]), reason=data["reason"]
        )
        return Response(UserSerializer(user).data)

    @extend_schema(request=DeactivateSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> Response:
        data = self._validated(DeactivateSerializer)
        return Response(
            UserSerializer(user_deactivate(actor=request.user, user=self.get_object(), **data)).data
        )

    @extend_schema(request=ReasonSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str) -> Response:
        data = self._validated(ReasonSerializer)
        return Response(
            UserSerializer(user_reactivate(actor=request.user, user=self.get_object(), **data)).data
        )

    @extend_schema(request=PasswordResetSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def password(self, request: Request, pk: str) -> Response:
        data = self._validated(PasswordResetSerializer)
        user = user_password_reset(actor=request.user, user=self.get_object(), **data)
        return Response(UserSerializer(user).data)


class TokenObtainView(APIView):
    """Exchange a username and password for an API token (``Authorization: Token <key>``).

    Subject to the same lockout as the login form; a new token replaces the previous one.
    """

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        request=inline_serializer(
            "TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            429: LOCKED_OUT_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, Mapping):  # e.g. a JSON number or list
            raise ParseError("Send a username and a password.")
        username = str(request.data.get("username", ""))
        password = str(request.data.get("password", ""))
        if "\x00" in username + password:  # as the login form's fields refuse (and the database)
            raise ParseError("A username or password cannot contain NUL characters.")
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise AuthenticationFailed("Wrong username or password, or the account is locked.")
        return Response({"token": api_token_issue(user=user).key})
