"""Obtains a service token from the gateway's /oauth2/token with a stock
OAuth2 client library (oauthlib + requests-oauthlib, the client-credentials
BackendApplicationClient), and checks what it got.

usage: oauth2_client.py <token-url> <client-id> <client-secret> <scope>
"""

import os
import sys

# The smoke test talks plain HTTP on loopback; oauthlib insists on TLS otherwise.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

from oauthlib.oauth2 import BackendApplicationClient  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402


def main() -> int:
    url, client_id, secret, scope = sys.argv[1:5]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
    token = session.fetch_token(token_url=url, client_id=client_id, client_secret=secret, scope=[scope])
    if token.get("token_type", "").lower() != "bearer" or not token.get("access_token"):
        print(f"unexpected token response: {token}", file=sys.stderr)
        return 1
    if token.get("scope") not in (scope, [scope]):
        print(f"granted scope {token.get('scope')!r}, asked {scope!r}", file=sys.stderr)
        return 1
    print(f"oauthlib obtained a {token['token_type']} token for {client_id}, scope {scope}, expires in {token['expires_in']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
