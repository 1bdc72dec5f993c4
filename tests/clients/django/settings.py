"""A minimal mozilla-django-oidc 5.0.2 relying party of Tessera, for
tests/browser/django.rs. Everything comes from the environment:

  TESSERA_ISSUER      Tessera's issuer; the endpoints come from its discovery
                      document (the library has no discovery of its own)
  OIDC_CLIENT_ID      the client registered at Tessera
  OIDC_CLIENT_SECRET  its secret
  PORT                where this app listens on 127.0.0.1
  DJANGO_DB_PATH      the SQLite file (users and sessions)

Register at Tessera the redirect URI http://127.0.0.1:$PORT/oidc/callback/
and the post-logout redirect URI http://127.0.0.1:$PORT/logged-out/.
"""
import json
import os
import urllib.request

PORT = int(os.environ["PORT"])
BASE_URL = f"http://127.0.0.1:{PORT}"
TESSERA_ISSUER = os.environ["TESSERA_ISSUER"]

SECRET_KEY = os.urandom(32).hex()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mozilla_django_oidc",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = []
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DB_PATH"]}
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

# Browsers do not keep cookies apart by port: Tessera and this app share
# 127.0.0.1's jar, so neither may use the other's names.
SESSION_COOKIE_NAME = "djrp_sessionid"
CSRF_COOKIE_NAME = "djrp_csrftoken"

AUTHENTICATION_BACKENDS = ["oidc.TesseraBackend"]
LOGIN_URL = "/oidc/authenticate/"
LOGIN_REDIRECT_URL = "/protected/"
LOGIN_REDIRECT_URL_FAILURE = "/login-failed/"
# Where logout goes without a Tessera session to end (read, and needed, by
# the library before it asks oidc.logout_url).
LOGOUT_REDIRECT_URL = "/logged-out/"

with urllib.request.urlopen(f"{TESSERA_ISSUER}/.well-known/openid-configuration", timeout=10) as r:
    _discovery = json.load(r)
OIDC_OP_AUTHORIZATION_ENDPOINT = _discovery["authorization_endpoint"]
OIDC_OP_TOKEN_ENDPOINT = _discovery["token_endpoint"]
OIDC_OP_USER_ENDPOINT = _discovery["userinfo_endpoint"]
OIDC_OP_JWKS_ENDPOINT = _discovery["jwks_uri"]
TESSERA_END_SESSION_ENDPOINT = _discovery["end_session_endpoint"]
TESSERA_POST_LOGOUT_REDIRECT_URI = f"{BASE_URL}/logged-out/"

OIDC_RP_CLIENT_ID = os.environ["OIDC_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = os.environ["OIDC_CLIENT_SECRET"]
# The library's default is HS256 with the client secret as the key.
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid email profile"
# As Hue configures it: no PKCE, which a confidential client may go without.
OIDC_USE_PKCE = False
OIDC_STORE_ID_TOKEN = True  # for the id_token_hint at logout
OIDC_OP_LOGOUT_URL_METHOD = "oidc.logout_url"
OIDC_TIMEOUT = 10

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "mozilla_django_oidc": {"handlers": ["stderr"], "level": "INFO"},
        "django.request": {"handlers": ["stderr"], "level": "WARNING"},
        "django.security": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
