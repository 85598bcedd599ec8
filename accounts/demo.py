"""The quick start's demo accounts: fixed and published (README), so they must never work
anywhere else. Outside the quick start (``HEMATOVISION_DEMO_USERS_ALLOWED`` False, as production
forces) their usernames are refused at every authentication, and ``check --deploy`` fails while
such an account exists (a quick-start database promoted to a pilot)."""

from django.conf import settings

from accounts.roles import Role

DEMO_ACCOUNTS = (
    ("labstaff", "demo-labstaff-2024", Role.LAB_STAFF, "Lena", "Lab"),
    ("pathologist", "demo-pathologist-2024", Role.PATHOLOGIST, "Paula", "Pathologist"),
    ("admin", "demo-admin-2024", Role.ADMIN, "Adam", "Admin"),
    ("trainee", "demo-trainee-2024", Role.TRAINEE, "Tina", "Trainee"),
    ("consultant", "demo-consultant-2024", Role.CONSULTANT, "Conrad", "Consultant"),
)
DEMO_USERNAMES = frozenset(username for username, *_ in DEMO_ACCOUNTS)


def demo_username_refused(username: str) -> bool:
    """True where a demo username must not authenticate (case-insensitively: 'Admin' too)."""
    return not settings.HEMATOVISION_DEMO_USERS_ALLOWED and username.strip().lower() in DEMO_USERNAMES
