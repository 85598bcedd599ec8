"""``duration``: a time span as a lab reads it on a worklist ("2 d 4 h", "3 h 20 min", "12 min")."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(span: timedelta | None) -> str:
    if span is None:
        return ""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
