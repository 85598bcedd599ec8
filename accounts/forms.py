from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html

from accounts.roles import Role


class _CrispyForm(forms.Form):
    submit_label = "Save"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", self.submit_label))


class _NewPasswordMixin(forms.Form):
    new_password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    new_password_again = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("new_password") != cleaned.get("new_password_again"):
            self.add_error("new_password_again", "The two passwords differ.")
        return cleaned


class UserCreateForm(_NewPasswordMixin, _CrispyForm):
    submit_label = "Create user"
    username = forms.CharField(max_length=150)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices)

    field_order = [
        "username",
        "first_name",
        "last_name",
        "email",
        "role",
        "new_password",
        "new_password_again",
    ]


class RoleChangeForm(_CrispyForm):
    submit_label = "Change role"
    role = forms.ChoiceField(choices=Role.choices)
    reason = forms.CharField(max_length=500, required=False)


class ReasonForm(_CrispyForm):
    reason = forms.CharField(max_length=500, required=False)


class PasswordResetForm(_NewPasswordMixin, _CrispyForm):
    submit_label = "Set password"
    reason = forms.CharField(max_length=500, required=False)


class DeactivateForm(_CrispyForm):
    submit_label = "Deactivate"
    reason = forms.CharField(max_length=500, help_text="Kept in the audit trail.")
    confirm = forms.BooleanField(label="Yes, this person may no longer log in or use the API.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper.inputs[0].field_classes = "btn btn-danger"
