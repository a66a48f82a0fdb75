"""Mints one Clerk session token (RS256, v2 claims) per bench org.

    python3 mint.py PRIVATE_KEY_PEM ISSUER AZP COUNT HOURS OUT_TSV

Each line of OUT_TSV: n, org slug, Clerk org id, Clerk user id, role, token.
Token n is user `user_bench<n>` in Clerk org `org_bench<n>` (slug
`bench-<n>`), role admin for odd n and member for even n: each token is a
distinct user in a distinct org. Only `cryptography` is needed (no PyJWT).
"""

import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    key_path, issuer, azp, count, hours, out = sys.argv[1:7]
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "ins_bench"},
                               separators=(",", ":")).encode())
    with open(out, "w") as f:
        for n in range(1, int(count) + 1):
            slug = f"bench-{n:04d}"
            org_id = f"org_bench{n:04d}"
            user_id = f"user_bench{n:04d}"
            role = "admin" if n % 2 else "member"
            claims = {
                "iss": issuer,
                "azp": azp,
                "sub": user_id,
                "sid": f"sess_bench{n:04d}",
                "iat": now - 5,
                "nbf": now - 10,
                "exp": now + int(float(hours) * 3600),
                "jti": f"bench{n:04d}",
                "v": 2,
                "fva": [0, -1],
                "o": {"id": org_id, "slg": slug, "rol": role, "per": "", "fpm": ""},
            }
            payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
            signing_input = f"{header}.{payload}".encode()
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            token = f"{header}.{payload}.{b64url(signature)}"
            f.write(f"{n}\t{slug}\t{org_id}\t{user_id}\t{role}\t{token}\n")


if __name__ == "__main__":
    main()
