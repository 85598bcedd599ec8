from django import template

from audit.models import AuditEvent

register = template.Library()


@register.filter
def change_lines(event: AuditEvent) -> list[tuple[str, object, object]]:
    """(field, before, after) per field an event mentions, for a readable change column."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    names = list(dict.fromkeys([*before, *after]))
    return [(name, before.get(name, ""), after.get(name, "")) for name in names]
