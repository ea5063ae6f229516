"""Verifies an OMS access token with PyJWT, a JWT library of another
language, against the JWKS from user-svc: signature (EdDSA), `typ`, `iss`,
`aud` and expiry. Exits non-zero with the reason when anything is off.

usage: verify_jwt.py <access-token> <GetJwks JSON> <issuer> <audience>
"""

import json
import sys

import jwt


def main() -> int:
    token, jwks_json, issuer, audience = sys.argv[1:5]
    jwks = json.loads(jwks_json)
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        print(f"typ is {header.get('typ')!r}, expected 'at+jwt'", file=sys.stderr)
        return 1
    matching = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    if len(matching) != 1:
        print(f"kid {header['kid']!r} is not in the JWKS", file=sys.stderr)
        return 1
    key = jwt.PyJWK(matching[0])
    claims = jwt.decode(
        token,
        key=key.key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    # A wrong audience must fail too, or the check above proves nothing.
    try:
        jwt.decode(token, key=key.key, algorithms=["EdDSA"], audience="someone-else", issuer=issuer)
    except jwt.InvalidAudienceError:
        pass
    else:
        print("a wrong audience was accepted", file=sys.stderr)
        return 1
    print(f"PyJWT {jwt.__version__} verified the token: sub={claims['sub']} role={claims.get('role')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
