"""What the app adds to mozilla-django-oidc: the Django user is named by
`preferred_username` (the library would take a hash of the email), the ID
token's `iss` and `aud` are checked (the library checks neither), and logout
goes through Tessera's end-session endpoint."""
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class TesseraBackend(OIDCAuthenticationBackend):
    def get_username(self, claims):
        return claims["preferred_username"]

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username=claims.get("preferred_username"))

    def update_user(self, user, claims):
        user.email = claims.get("email", "")
        user.save()
        return user

    def create_user(self, claims):
        return self.update_user(super().create_user(claims), claims)

    def get_or_create_user(self, access_token, id_token, payload):
        # `payload`: the ID token's claims, its signature, exp and nonce checked.
        audience = payload.get("aud")
        audience = audience if isinstance(audience, list) else [audience]
        if payload.get("iss") != settings.TESSERA_ISSUER or self.OIDC_RP_CLIENT_ID not in audience:
            raise SuspiciousOperation(f"ID token for {audience} from {payload.get('iss')}")
        return super().get_or_create_user(access_token, id_token, payload)


def logout_url(request):
    """RP-initiated logout, called before Django forgets the session (and
    with it the ID token)."""
    params = {
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "post_logout_redirect_uri": settings.TESSERA_POST_LOGOUT_REDIRECT_URI,
        "state": secrets.token_urlsafe(16),
        "id_token_hint": request.session["oidc_id_token"],
    }
    return f"{settings.TESSERA_END_SESSION_ENDPOINT}?{urlencode(params)}"
