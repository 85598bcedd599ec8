import pytest

from accounts.selectors import user_list, user_visible_queryset

pytestmark = pytest.mark.django_db


def test_only_user_administrators_see_users(administrator, lab_staff, pathologist, outsider):
    assert user_visible_queryset(administrator).count() == 4
    for user in (lab_staff, pathologist, outsider):
        assert user_visible_queryset(user).count() == 0


def test_user_list_searches_and_filters_on_activity(administrator, lab_staff, make_user):
    make_user("gone", None, is_active=False, first_name="Lena")
    assert [u.username for u in user_list(user=administrator, search="lena")] == ["gone", "lab"]
    assert [u.username for u in user_list(user=administrator, search="lena", active=True)] == ["lab"]
