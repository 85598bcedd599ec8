from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import DeactivateForm, PasswordResetForm, ReasonForm, RoleChangeForm, UserCreateForm
from accounts.models import User
from accounts.roles import Role
from accounts.selectors import user_list, user_login_lock, user_visible_queryset
from accounts.services import (
    user_create,
    user_deactivate,
    user_password_reset,
    user_reactivate,
    user_role_change,
    user_unlock,
)
from audit.selectors import audit_event_list
from core.permissions import permission_needed


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


@require_GET
@permission_needed("accounts.view_user")
def user_list_view(request: HttpRequest) -> HttpResponse:
    term = request.GET.get("q", "")[:100]
    users = user_list(user=request.user, search=term)
    return render(request, "accounts/user_list.html", {"users": users, "term": term})


@require_http_methods(["GET", "POST"])
@permission_needed("accounts.add_user")
def user_create_view(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            user = user_create(
                actor=request.user,
                username=data["username"],
                password=data["new_password"],
                role=Role(data["role"]),
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("accounts:user_detail", pk=user.pk)
    return render(request, "accounts/user_form.html", {"form": form, "title": "New user"})


@require_GET
@permission_needed("accounts.view_user")
def user_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(user_visible_queryset(request.user), pk=pk)
    context = {
        "member": member,
        "role_form": RoleChangeForm(initial={"role": member.role}),
        "login_lock": user_login_lock(user=member),
        "events": audit_event_list(user=request.user, object_type="accounts.user", object_id=str(member.pk))[
            :20
        ],
    }
    return render(request, "accounts/user_detail.html", context)


def _user_action(
    request: HttpRequest, pk: int, form_class: type[forms.Form], action: Callable[[User, dict], str]
) -> HttpResponse:
    """POST-only administrative actions: run the service, report, go back to the user's page."""
    member = get_object_or_404(user_visible_queryset(request.user), pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, "Please correct the form: " + form.errors.as_text())
        return redirect("accounts:user_detail", pk=member.pk)
    try:
        message = action(member, form.cleaned_data)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, message)
    return redirect("accounts:user_detail", pk=member.pk)


@require_POST
@permission_needed("accounts.change_user")
def user_role_change_view(request: HttpRequest, pk: int) -> HttpResponse:
    def change(member: User, data: dict) -> str:
        user_role_change(actor=request.user, user=member, role=Role(data["role"]), reason=data["reason"])
        return f"{member.username} is now {Role(data['role']).label}."

    return _user_action(request, pk, RoleChangeForm, change)


@require_http_methods(["GET", "POST"])
@permission_needed("accounts.change_user")
def user_deactivate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirmation page first: deactivating takes a ticked confirmation and a reason."""
    member = get_object_or_404(user_visible_queryset(request.user), pk=pk)
    form = DeactivateForm(request.POST or None)
    if form.is_valid():
        try:
            user_deactivate(actor=request.user, user=member, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, f"{member.username} can no longer log in.")
        return redirect("accounts:user_detail", pk=member.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "member": member}
    return render(request, "accounts/user_deactivate.html", context, status=status)


@require_POST
@permission_needed("accounts.change_user")
def user_unlock_view(request: HttpRequest, pk: int) -> HttpResponse:
    def unlock(member: User, data: dict) -> str:
        user_unlock(actor=request.user, user=member, reason=data["reason"])
        return f"{member.username} may log in again: their failed logins are cleared."

    return _user_action(request, pk, ReasonForm, unlock)


@require_POST
@permission_needed("accounts.change_user")
def user_reactivate_view(request: HttpRequest, pk: int) -> HttpResponse:
    def reactivate(member: User, data: dict) -> str:
        user_reactivate(actor=request.user, user=member, reason=data["reason"])
        return f"{member.username} can log in again."

    return _user_action(request, pk, ReasonForm, reactivate)


@require_http_methods(["GET", "POST"])
@permission_needed("accounts.change_user")
def user_password_reset_view(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(user_visible_queryset(request.user), pk=pk)
    form = PasswordResetForm(request.POST or None)
    if form.is_valid():
        try:
            user_password_reset(
                actor=request.user,
                user=member,
                new_password=form.cleaned_data["new_password"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            form.add_error("new_password", error)
        else:
            messages.success(request, f"New password set for {member.username}; their sessions have ended.")
            return redirect("accounts:user_detail", pk=member.pk)
    return render(
        request, "accounts/user_form.html", {"form": form, "title": f"Reset password of {member.username}"}
    )
