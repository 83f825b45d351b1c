#!/usr/bin/env python3
"""An EHR's side of SMART Backend Services against infusion-api.

Make a key pair, and the public JWKS to register the client with:

    python3 examples/ehr_client.py --make-key keys --kid ehr-1

Get an access token (printed on stdout), or call the API with one:

    python3 examples/ehr_client.py --client-id ID --key keys/private-key.pem \\
        --kid ehr-1 --scope "system/Patient.rs"
    python3 examples/ehr_client.py ... --get "/v1/patients?limit=1"

Needs `pip install "PyJWT[crypto]" requests`.
"""
import argparse
import json
import os
import sys
import time
import uuid

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def make_key(directory, kid):
    """Writes an EC P-384 private key and its public JWKS into `directory`."""
    os.makedirs(directory, exist_ok=True)
    private_path = os.path.join(directory, "private-key.pem")
    jwks_path = os.path.join(directory, "jwks.json")
    if os.path.exists(private_path):
        sys.exit(f"{private_path} exists: keep that key, or write the new one elsewhere")
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Readable by its owner only.
    with os.fdopen(os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(pem)
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="ES384", use="sig")
    with open(jwks_path, "w") as f:
        json.dump({"keys": [jwk]}, f, indent=2)
    print(f"private key: {private_path} (keep it secret)", file=sys.stderr)
    print(f"public JWKS: {jwks_path} (register the client with it)", file=sys.stderr)


def sign_assertion(key_pem, kid, client_id, token_endpoint):
    """A client assertion: RS384 for an RSA key, ES384 for an EC P-384 key."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        algorithm = "ES384"
    else:
        sys.exit("the key must be RSA (2048 bits or more) or EC P-384")
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),  # single-use: sign a new assertion for each token
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


def get_token(base_url, client_id, key_pem, kid, scope):
    """The token endpoint's answer: access_token, expires_in, scope."""
    config = requests.get(f"{base_url}/.well-known/smart-configuration", timeout=10)
    config.raise_for_status()
    token_endpoint = config.json()["token_endpoint"]
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": sign_assertion(key_pem, kid, client_id, token_endpoint),
        "scope": scope,
    }
    response = requests.post(token_endpoint, data=form, timeout=10)
    if response.status_code != 200:
        sys.exit(f"POST {token_endpoint}: {response.status_code} {response.text}")
    return response.json()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-key", metavar="DIR", help="write an EC P-384 key and its JWKS into DIR, and stop")
    parser.add_argument("--client-id", help="the id `infusion-api client register` printed")
    parser.add_argument("--key", help="the private key (PEM): RSA or EC P-384")
    parser.add_argument("--kid", required=True, help="the key's id in the registered JWKS")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--scope", default="system/Patient.rs", help="space-separated SMART system scopes")
    parser.add_argument("--get", metavar="PATH", help="call GET PATH with the token and print the JSON")
    args = parser.parse_args()

    if args.make_key:
        make_key(args.make_key, args.kid)
        return
    if not args.client_id or not args.key:
        parser.error("--client-id and --key are needed to get a token")
    with open(args.key, "rb") as f:
        key_pem = f.read()
    base_url = args.base_url.rstrip("/")
    token = get_token(base_url, args.client_id, key_pem, args.kid, args.scope)
    if not args.get:
        print(token["access_token"])
        return
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    response = requests.get(base_url + args.get, headers=headers, timeout=10)
    print(json.dumps(response.json(), indent=2))
    if response.status_code >= 400:
        sys.exit(f"GET {args.get}: {response.status_code}")


if __name__ == "__main__":
    main()
