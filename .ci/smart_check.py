"""SMART Backend Services checked from outside, with PyJWT: run by
.ci/smart-check against a server it started.

    python .ci/smart_check.py BASE_URL INFUSION_API_BINARY WORK_DIR

Two clients are registered with `infusion-api client register` (DATABASE_URL
from the environment): one with an RSA key (RS384) and `system/Patient.rs`
only, one with an EC P-384 key (ES384) and the default scopes. Each gets a
token with examples/ehr_client.py; PyJWT verifies the tokens against the
server's JWKS, and the API is called with them. Stops at the first failure.
"""
import json
import pathlib
import subprocess
import sys

import jwt
import requests
from cryptography.hazmat.primitives import serialization

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ehr_client.py"
sys.path.insert(0, str(EXAMPLE.parent))
sys.dont_write_bytecode = True  # no __pycache__ in examples/
import ehr_client  # noqa: E402  (its assertion signing, for the replay)

ISSUER = AUDIENCE = "infusion-api"
DEFAULT_SCOPES = "system/Patient.crs system/ServiceRequest.c system/Appointment.rs system/Slot.s system/PlanDefinition.rs"
PATIENT = {
    "given_name": "Grace",
    "family_name": "Hopper",
    "date_of_birth": "1986-12-09",
    "indications": [{"code": "migraine"}],
}


class Failed(Exception):
    pass


def expect(what, ok, detail=""):
    if not ok:
        raise Failed(f"{what}\n  got: {detail}")
    print(f"ok  {what}")


def shown(response):
    return f"{response.status_code} {response.headers.get('content-type')} {response.text[:600]}"


def run(*command):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode != 0:
        raise Failed(f"`{' '.join(str(c) for c in command)}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def example(*args):
    return run(sys.executable, EXAMPLE, *args)


def token_endpoint_form(assertion, scope):
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": scope,
    }


def check(base, binary, work):
    response = requests.get(f"{base}/.well-known/smart-configuration", timeout=10)
    expect("GET /.well-known/smart-configuration is 200", response.status_code == 200, shown(response))
    config = response.json()
    token_endpoint, jwks_uri = config.get("token_endpoint"), config.get("jwks_uri")
    expect(f"token_endpoint is {base}/oauth/token", token_endpoint == f"{base}/oauth/token", config)
    expect("RS384 and ES384 assertions are offered",
           {"RS384", "ES384"} <= set(config.get("token_endpoint_auth_signing_alg_values_supported", [])), config)

    # The EC P-384 key with the example's key mode; the RSA key with openssl.
    ec_dir, rsa_dir = work / "ec", work / "rsa"
    example("--make-key", ec_dir, "--kid", "ec-1")
    rsa_dir.mkdir()
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", rsa_dir / "private-key.pem")
    rsa_key = serialization.load_pem_private_key((rsa_dir / "private-key.pem").read_bytes(), None)
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    rsa_jwk.update(kid="rsa-1", alg="RS384", use="sig")
    (rsa_dir / "jwks.json").write_text(json.dumps({"keys": [rsa_jwk]}))

    rsa_id = run(binary, "client", "register", "--name", "Check RSA", "--jwks", rsa_dir / "jwks.json",
                 "--scope", "system/Patient.rs")
    ec_id = run(binary, "client", "register", "--name", "Check EC", "--jwks", ec_dir / "jwks.json")
    print(f"ok  registered {rsa_id} (RSA, system/Patient.rs) and {ec_id} (EC P-384, default scopes)")

    clients = [
        ("RS384", rsa_id, rsa_dir, "rsa-1", "system/Patient.rs"),
        ("ES384", ec_id, ec_dir, "ec-1", DEFAULT_SCOPES),
    ]
    tokens = {}
    jwks_client = jwt.PyJWKClient(jwks_uri)
    for alg, client_id, key_dir, kid, scope in clients:
        token = example("--client-id", client_id, "--key", key_dir / "private-key.pem", "--kid", kid,
                        "--base-url", base, "--scope", scope)
        header = jwt.get_unverified_header(token)
        expect(f"{alg} client: the access token's header is typ at+jwt, alg ES256",
               header.get("typ") == "at+jwt" and header.get("alg") == "ES256", header)
        try:
            key = jwks_client.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as e:
            raise Failed(f"{alg} client: PyJWT does not verify the access token with {jwks_uri}: {e!r}")
        print(f"ok  {alg} client: PyJWT verifies the access token with {jwks_uri}")
        expected = {"sub": client_id, "client_id": client_id, "scope": scope, "role": "integration"}
        expect(f"{alg} client: the token's sub, client_id, scope and role",
               {k: claims.get(k) for k in expected} == expected, claims)
        expect(f"{alg} client: the token lives 300 s", claims["exp"] - claims["iat"] == 300, claims)
        tokens[alg] = token

    page = json.loads(example("--client-id", rsa_id, "--key", rsa_dir / "private-key.pem", "--kid", "rsa-1",
                              "--base-url", base, "--scope", "system/Patient.rs", "--get", "/v1/patients?limit=1"))
    expect("GET /v1/patients?limit=1 with system/Patient.rs (the example's --get) answers a page",
           isinstance(page.get("items"), list), page)

    bearer = {alg: {"Authorization": f"Bearer {token}"} for alg, token in tokens.items()}
    response = requests.get(f"{base}/v1/patients?limit=1", headers=bearer["ES384"], timeout=10)
    expect("GET /v1/patients?limit=1 with the default scopes is 200", response.status_code == 200, shown(response))

    response = requests.post(f"{base}/v1/patients", json=PATIENT, headers=bearer["RS384"], timeout=10)
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    expect("POST /v1/patients with system/Patient.rs only is 403 insufficient_scope (problem+json)",
           response.status_code == 403 and body.get("code") == "insufficient_scope"
           and response.headers.get("content-type", "").startswith("application/problem+json"), shown(response))
    challenge = response.headers.get("www-authenticate", "")
    expect('... with WWW-Authenticate: Bearer error="insufficient_scope", scope="..."',
           challenge.startswith("Bearer") and 'error="insufficient_scope"' in challenge and "scope=" in challenge,
           challenge)

    response = requests.post(f"{base}/v1/patients", json=PATIENT, headers=bearer["ES384"], timeout=10)
    expect("POST /v1/patients with system/Patient.crs is 201", response.status_code == 201, shown(response))

    ec_pem = (ec_dir / "private-key.pem").read_bytes()
    assertion = ehr_client.sign_assertion(ec_pem, "ec-1", ec_id, token_endpoint)
    first = requests.post(token_endpoint, data=token_endpoint_form(assertion, "system/Patient.rs"), timeout=10)
    expect("an assertion is taken once (200, Cache-Control: no-store)",
           first.status_code == 200 and first.headers.get("cache-control") == "no-store", shown(first))
    again = requests.post(token_endpoint, data=token_endpoint_form(assertion, "system/Patient.rs"), timeout=10)
    expect("the same assertion again is 400 invalid_client",
           again.status_code == 400 and again.json().get("error") == "invalid_client", shown(again))

    rsa_pem = (rsa_dir / "private-key.pem").read_bytes()
    assertion = ehr_client.sign_assertion(rsa_pem, "rsa-1", rsa_id, token_endpoint)
    response = requests.post(token_endpoint, data=token_endpoint_form(assertion, "system/Patient.crs"), timeout=10)
    expect("a scope beyond the client's registration is 400 invalid_scope",
           response.status_code == 400 and response.json().get("error") == "invalid_scope", shown(response))


def main():
    base, binary, work = sys.argv[1].rstrip("/"), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    try:
        check(base, binary, work)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("SMART Backend Services check passed")


if __name__ == "__main__":
    main()
