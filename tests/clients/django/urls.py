from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.urls import include, path
from django.utils.html import escape


def page(title, body):
    return HttpResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


@login_required
def protected(request):
    return page(
        "Protected",
        f"<p>Signed in as <span id='username'>{escape(request.user.username)}</span>"
        f" (<span id='email'>{escape(request.user.email)}</span>)</p>"
        "<form method='post' action='/oidc/logout/'>"
        f"<input type='hidden' name='csrfmiddlewaretoken' value='{escape(get_token(request))}'>"
        "<button id='logout' type='submit'>Log out</button></form>",
    )


def logged_out(request):
    who = "signed in" if request.user.is_authenticated else "signed out"
    return page(
        "Logged out",
        f"<p id='who'>{who}</p><p id='state'>{escape(request.GET.get('state', ''))}</p>",
    )


def login_failed(request):
    return page("Login failed", "")


def health(request):
    return HttpResponse("ok")


urlpatterns = [
    path("protected/", protected),
    path("logged-out/", logged_out),
    path("login-failed/", login_failed),
    path("health/", health),
    # /oidc/authenticate/, /oidc/callback/ (the redirect URI), /oidc/logout/ (POST)
    path("oidc/", include("mozilla_django_oidc.urls")),
]
