"""Signs a user in to OMS's OpenID Provider with authlib, a stock OAuth 2 /
OpenID Connect client library, as a confidential client authenticating
with client_secret_basic: discovery, the authorization code flow with
PKCE (S256) and a nonce, the ID token's signature (EdDSA, from the JWKS)
and claims, UserInfo, refresh, revocation. The sign-in page is filled in
by a plain HTTP session standing in for the browser (the redirect to the
client is read, not followed: the client's host is not real).

usage: oidc_authlib.py <issuer> <client-id> <client-secret> <redirect-uri> <email> <password>
"""

import os
import sys
import warnings
from html.parser import HTMLParser

# Loopback over plain HTTP in the tests; authlib insists on TLS otherwise.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
# RFC 9864 names the algorithm "Ed25519"; OMS signs as "EdDSA" (RFC 8037),
# which every verifier of the mesh and openid-client expect. Known; quiet.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from joserfc import jwt  # noqa: E402  (authlib's own JOSE library)
from joserfc.jwk import KeySet  # noqa: E402


class Form(HTMLParser):
    """The sign-in page's form fields."""

    def __init__(self):
        super().__init__()
        self.fields = {}
        self.action = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        if tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def fail(message: str) -> int:
    print(f"oidc_authlib: FAILED: {message}", file=sys.stderr)
    return 1


def main() -> int:
    issuer, client_id, secret, redirect_uri, email, password = sys.argv[1:7]
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    if meta["issuer"] != issuer:
        return fail(f"discovery names issuer {meta['issuer']!r}, fetched from {issuer!r}")
    client = OAuth2Session(
        client_id,
        secret,
        scope="openid email profile offline_access",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    # The browser: the sign-in page, then its form.
    browser = requests.Session()
    page = browser.get(url, timeout=10)
    if page.status_code != 200 or "frame-ancestors 'none'" not in page.headers.get("content-security-policy", ""):
        return fail(f"sign-in page: {page.status_code} {page.headers}")
    form = Form()
    form.feed(page.text)
    form.fields.update(email=email, password=password)
    answer = browser.post(f"{issuer}{form.action}", data=form.fields, allow_redirects=False, timeout=10)
    location = answer.headers.get("location", "")
    if answer.status_code != 303 or not location.startswith(redirect_uri):
        return fail(f"sign-in answered {answer.status_code} to {location!r}: {answer.text[:300]}")

    token = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["EdDSA"]).claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        auth_time={"essential": True},
    ).validate(claims)
    header, payload, signature = token["id_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    try:
        jwt.decode(forged, keys, algorithms=["EdDSA"])
        return fail("an ID token with a forged signature was accepted")
    except Exception:  # noqa: BLE001 - any refusal is the right answer
        pass
    if claims.get("email") != email:
        return fail(f"ID token email {claims.get('email')!r}")

    info = client.get(meta["userinfo_endpoint"], timeout=10).json()
    if info.get("sub") != claims["sub"] or info.get("email") != email:
        return fail(f"userinfo {info}")

    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    if not refreshed.get("access_token") or refreshed.get("refresh_token") == token["refresh_token"]:
        return fail(f"refresh gave {refreshed}")
    revoked = client.revoke_token(
        meta["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    if revoked.status_code != 200:
        return fail(f"revocation answered {revoked.status_code}")
    dead = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(client_id, secret),
        timeout=10,
    )
    if dead.status_code != 400 or dead.json().get("error") != "invalid_grant":
        return fail(f"a revoked refresh token answered {dead.status_code} {dead.text}")
    print(
        f"authlib: {client_id} (confidential, client_secret_basic) signed in {claims['sub']}: "
        "code + PKCE, ID token verified (EdDSA), userinfo, refresh, revoke"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
