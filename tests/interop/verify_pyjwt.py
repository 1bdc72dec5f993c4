"""Verify a Tessera authorization token the ways Python services do.

Usage: verify_pyjwt.py ISSUER AUDIENCE TOKEN PEM_DIR

1. PyJWT's PyJWKClient, starting from the discovery document (OIDC-style
   middleware): the JWKS URL is read from `jwks_uri`.
2. A djangorestframework-sso "otherapp": the public key is the PEM file whose
   name is the token's `kid`, the claims `token`, `sid`, `uid`, `scopes`.

Prints the claims as JSON; exits non-zero on any failure.
"""

import json
import pathlib
import sys
import urllib.request

import jwt

issuer, audience, token, pem_dir = sys.argv[1:5]

with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
    discovery = json.load(response)
assert discovery["issuer"] == issuer, discovery
jwks_client = jwt.PyJWKClient(discovery["jwks_uri"])
signing_key = jwks_client.get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=["RS256"],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "iss", "aud", "sub"]},
)

# djangorestframework-sso looks the key up by file name = kid.
kid = jwt.get_unverified_header(token)["kid"]
public_pem = (pathlib.Path(pem_dir) / f"{kid}.pem").read_bytes()
otherapp = jwt.decode(token, public_pem, algorithms=["RS256"], audience=audience)
assert otherapp["token"] == "auth", otherapp
for claim in ("sid", "uid", "scopes"):
    assert claim in otherapp, claim

# A tampered token must fail.
header, payload, signature = token.split(".")
tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
try:
    jwt.decode(tampered, signing_key.key, algorithms=["RS256"], audience=audience)
except jwt.InvalidSignatureError:
    pass
else:
    sys.exit("a tampered token verified")

print(json.dumps(claims))
