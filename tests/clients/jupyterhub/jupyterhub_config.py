"""JupyterHub 6.1 with oauthenticator 17.4's GenericOAuthenticator, signing
people in with Tessera, for tests/browser/hub.rs. Everything comes from the
environment:

  TESSERA_ISSUER       Tessera's issuer; the endpoints come from its discovery
                       document (oauthenticator has no discovery of its own)
  HUB_CLIENT_ID        the client registered at Tessera
  HUB_CLIENT_SECRET    its secret
  HUB_PORT             the public port (configurable-http-proxy's)
  HUB_INTERNAL_PORT    the hub's own port, behind the proxy
  HUB_PROXY_API_PORT   the proxy's API port
  HUB_DIR              a directory for the database and pid files
  HUB_CHP              configurable-http-proxy
  HUB_REFRESH_AGE      seconds before the hub asks Tessera about a user again
  JUPYTERHUB_CRYPT_KEY the key of the stored tokens (read by JupyterHub)

Register at Tessera the redirect URI http://127.0.0.1:$HUB_PORT/hub/oauth_callback.
"""
import json
import os
import urllib.request

c = get_config()  # noqa: F821 (provided by JupyterHub)

issuer = os.environ["TESSERA_ISSUER"]
public = f"http://127.0.0.1:{int(os.environ['HUB_PORT'])}"
state_dir = os.environ["HUB_DIR"]

c.JupyterHub.bind_url = public
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{int(os.environ['HUB_INTERNAL_PORT'])}"
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.pid_file = os.path.join(state_dir, "hub.pid")
c.JupyterHub.cookie_secret = os.urandom(32)
c.JupyterHub.redirect_to_server = False
c.JupyterHub.default_url = "/hub/home"
c.ConfigurableHTTPProxy.command = [os.environ["HUB_CHP"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ['HUB_PROXY_API_PORT'])}"
c.ConfigurableHTTPProxy.pid_file = os.path.join(state_dir, "proxy.pid")

with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
    discovery = json.load(r)

c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.login_service = "Tessera"
c.GenericOAuthenticator.client_id = os.environ["HUB_CLIENT_ID"]
c.GenericOAuthenticator.client_secret = os.environ["HUB_CLIENT_SECRET"]
c.GenericOAuthenticator.oauth_callback_url = f"{public}/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = discovery["authorization_endpoint"]
c.GenericOAuthenticator.token_url = discovery["token_endpoint"]
c.GenericOAuthenticator.userdata_url = discovery["userinfo_endpoint"]
# Generic's default is no scope at all, so not even `openid`.
c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
c.GenericOAuthenticator.username_claim = "preferred_username"
# `groups` in userinfo: the user's scopes at the client's audience.
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
c.GenericOAuthenticator.allowed_groups = {"access"}
# Keeps the tokens, so that the hub asks Tessera again (userinfo, then the
# refresh grant) once a login is older than auth_refresh_age.
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.auth_refresh_age = int(os.environ["HUB_REFRESH_AGE"])
