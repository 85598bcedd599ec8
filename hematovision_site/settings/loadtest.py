"""Production settings served over plain HTTP on 127.0.0.1, for the load test (scripts/load.sh).

Locally there is no TLS-terminating proxy, so cookies cannot be Secure (a client would never send
them back over http) and nothing may redirect to https. Everything else is production's.
"""

from hematovision_site.settings.production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# A throwaway database that scripts/load.sh creates: its users are seeded like the demo users.
HEMATOVISION_DEMO_USERS_ALLOWED = True
