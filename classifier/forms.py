"""Forms of the classifier pages."""

from django import forms


class ModelActivationForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
        help_text="Your password, as for a sign-off: changing the model that classifies every new slide "
        "needs it every time.",
    )
