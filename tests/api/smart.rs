//! SMART Backend Services: backend clients an admin registers with their
//! public keys sign assertions (RS384 or ES384, with keys made here) and
//! exchange them at `/oauth/token` for ES256 access tokens, which are held
//! to the client's role and to the scopes asked for. Also the discovery
//! document, our JWKS, and a signing key's rotation.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, JwksServer, RequestBuilder, TestApp, TestResponse};

const PUBLIC_URL: &str = "https://api.clinic.test";
const TOKEN_URL: &str = "https://api.clinic.test/oauth/token";
const SIGNING_KEY_1: &str = "tests/fixtures/signing/es256-1.pem";
const SIGNING_KEY_2: &str = "tests/fixtures/signing/es256-2.pem";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const FORM: &str = "application/x-www-form-urlencoded";

/// What a client is registered with when it names no scopes.
const DEFAULT_SCOPES: [&str; 5] = [
    "system/Patient.crs",
    "system/ServiceRequest.c",
    "system/Appointment.rs",
    "system/Slot.s",
    "system/PlanDefinition.rs",
];

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key a backend client signs its assertions with: the private half as
/// PEM, the public half as the JWK it registers.
struct ClientKey {
    alg: Algorithm,
    kid: String,
    pem: String,
    jwk: Value,
}

impl ClientKey {
    /// A new 2048-bit RSA key, for RS384.
    fn rsa(kid: &str) -> Self {
        Self::rsa_of(kid, 2048)
    }

    /// A new RSA key of `bits`, for RS384.
    fn rsa_of(kid: &str, bits: usize) -> Self {
        use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        let jwk = json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS384",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())
        });
        Self { alg: Algorithm::RS384, kid: kid.to_owned(), pem, jwk }
    }

    /// A new EC P-384 key, for ES384.
    fn ec(kid: &str) -> Self {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        use p384::pkcs8::{EncodePrivateKey, LineEnding};
        let key = p384::SecretKey::random(&mut rand_core::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let point = key.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC", "crv": "P-384", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())
        });
        Self { alg: Algorithm::ES384, kid: kid.to_owned(), pem, jwk }
    }

    fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES384 => EncodingKey::from_ec_pem(self.pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(self.pem.as_bytes()),
        }
        .unwrap()
    }

    /// `claims` signed with this key's algorithm, its `kid` in the header.
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    /// `claims` signed with this key, with `alg` and `kid` in the header.
    fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        header.typ = Some("JWT".into());
        encode(&header, claims, &self.encoding()).unwrap()
    }
}

/// The RSA key of the tests' clients, made once per test process (RSA
/// key generation is slow).
fn rsa_key() -> &'static ClientKey {
    static KEY: OnceLock<ClientKey> = OnceLock::new();
    KEY.get_or_init(|| ClientKey::rsa("rsa-1"))
}

/// The EC P-384 key of the tests' clients.
fn ec_key() -> &'static ClientKey {
    static KEY: OnceLock<ClientKey> = OnceLock::new();
    KEY.get_or_init(|| ClientKey::ec("ec-1"))
}

/// An app that issues access tokens: signing key 1, at [`PUBLIC_URL`].
async fn smart_app() -> TestApp {
    smart_app_with(&[]).await
}

async fn smart_app_with(settings: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder()
        .setting("SIGNING_KEY_FILE", SIGNING_KEY_1)
        .setting("PUBLIC_URL", PUBLIC_URL);
    for (key, value) in settings {
        builder = builder.setting(key, value);
    }
    builder.build().await
}

/// A JWKS of `keys`' public halves.
fn jwks(keys: &[&ClientKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

/// Registers a client (as an admin) with `keys` and `scopes`; its id.
async fn register(app: &TestApp, keys: &[&ClientKey], scopes: &[&str]) -> String {
    let body = json!({"name": "Riverside EHR", "jwks": jwks(keys), "scopes": scopes});
    let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["id"].as_str().unwrap().to_owned()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn new_jti() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The claims of a valid assertion by `client`.
fn claims(client: &str) -> Value {
    json!({"iss": client, "sub": client, "aud": TOKEN_URL, "iat": now(),
           "exp": now() + 300, "jti": new_jti()})
}

/// [`claims`] with `changes` (a `null` removes the claim).
fn claims_with(client: &str, changes: Value) -> Value {
    let mut claims = claims(client);
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

/// A form of `pairs`, in order, repeats kept.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

/// A well-formed token request for `assertion` and `scope`.
fn token_form(assertion: &str, scope: &str) -> String {
    form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", scope),
    ])
}

fn token_request<'a>(app: &'a TestApp, assertion: &str, scope: &str) -> RequestBuilder<'a> {
    app.post("/oauth/token").raw(FORM, token_form(assertion, scope))
}

async fn ask(app: &TestApp, assertion: &str, scope: &str) -> TestResponse {
    token_request(app, assertion, scope).send().await
}

/// Asks for a token with a fresh assertion by `client` signed with `key`;
/// the access token.
async fn access_token(app: &TestApp, key: &ClientKey, client: &str, scope: &str) -> String {
    let res = ask(app, &key.sign(&claims(client)), scope).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts an RFC 6749 §5.2 error: 400, JSON (not a problem document),
/// `error` and a description; returns the description.
#[track_caller]
fn assert_oauth_error(res: &TestResponse, error: &str) -> String {
    assert_eq!(res.status, 400, "{error}: {}", res.text);
    assert_eq!(res.header("content-type"), Some("application/json"), "{}", res.text);
    assert_eq!(res.body["error"], error, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"), "{}", res.text);
    let description = res.body["error_description"].as_str().expect("error_description");
    assert!(!description.is_empty());
    description.to_owned()
}

/// A JWT's header and claims, undecoded beyond base64url and JSON.
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let part = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (part(parts[0]), part(parts[1]))
}

/// `/.well-known/jwks.json`'s keys.
async fn published_keys(app: &TestApp) -> Vec<Value> {
    let res = app.get("/.well-known/jwks.json").send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// The audit trail as an admin reads it, filtered by `query`.
async fn trail(app: &TestApp, query: &str) -> Vec<Value> {
    let res =
        app.get(&format!("/v1/audit-events?limit=200&{query}")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_client_signing_rs384_or_es384_gets_a_token_held_to_its_role_and_scopes() {
    let app = smart_app().await;
    let patient = app.create_patient(patient_body()).await;
    let patient = patient["id"].as_str().unwrap();
    let published = published_keys(&app).await;
    for key in [rsa_key(), ec_key()] {
        let client = register(&app, &[key], &["system/Patient.read", "system/Location.s"]).await;
        let res =
            ask(&app, &key.sign(&claims(&client)), "system/Patient.read system/Location.s").await;
        assert_eq!(res.status, 200, "{:?}: {}", key.alg, res.text);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert_eq!(res.body["token_type"], "bearer");
        assert_eq!(res.body["expires_in"], 300);
        // SMART v1's `.read` as v2 writes it.
        assert_eq!(res.body["scope"], "system/Patient.rs system/Location.s");
        let token = res.body["access_token"].as_str().unwrap();

        // An ES256 JWT (RFC 9068) our published key verifies.
        let (header, claims) = jwt_parts(token);
        assert_eq!(
            (header["alg"].as_str(), header["typ"].as_str()),
            (Some("ES256"), Some("at+jwt"))
        );
        let kid = header["kid"].as_str().unwrap();
        let jwk = published.iter().find(|k| k["kid"] == kid).expect("the token's kid is published");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&["infusion-api"]);
        validation.set_issuer(&["infusion-api"]);
        let verified = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(verified.claims, claims);
        assert_eq!(claims["role"], "integration");
        assert_eq!(claims["scope"], "system/Patient.rs system/Location.s");
        assert_eq!(
            (claims["sub"].as_str(), claims["client_id"].as_str()),
            (Some(&*client), Some(&*client))
        );
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);

        // Reads a patient (`r`) and searches (`s`).
        let res = app.get(&format!("/v1/patients/{patient}")).bearer(token).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body["id"], patient);
        let res = app.get("/v1/patients").bearer(token).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        // Its role may register patients, its scopes may not.
        let before = app.count("patients");
        let res = app.post("/v1/patients").bearer(token).json(&patient_body()).send().await;
        res.assert_problem(403, "insufficient_scope");
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer error="insufficient_scope", scope="system/Patient.c""#)
        );
        assert_eq!(app.count("patients"), before);
        let res = app.get("/v1/protocols").bearer(token).send().await;
        res.assert_problem(403, "insufficient_scope");
        assert_eq!(
            res.header("www-authenticate"),
            Some(r#"Bearer error="insufficient_scope", scope="system/PlanDefinition.s""#)
        );
        // Its scopes allow listing rooms, its role does not: the role refuses.
        let res = app.get("/v1/rooms").bearer(token).send().await;
        res.assert_problem(403, "forbidden");
        assert_eq!(res.header("www-authenticate"), None);
        app.get("/v1/clients").bearer(token).send().await.assert_problem(403, "forbidden");
    }
}

#[actix_web::test]
async fn a_client_registered_as_a_scheduler_gets_a_schedulers_token() {
    let app = smart_app().await;
    let body = json!({"name": "Front desk kiosk", "role": "scheduler", "jwks": jwks(&[ec_key()]),
                      "scopes": ["system/Location.s", "system/Patient.s"]});
    let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["role"], "scheduler");
    let client = res.body["id"].as_str().unwrap();
    let token = access_token(&app, ec_key(), client, "system/Location.s").await;
    assert_eq!(jwt_parts(&token).1["role"], "scheduler");
    let res = app.get("/v1/rooms").bearer(&token).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    // A scope registered but not asked for is not in the token.
    let res = app.get("/v1/patients").bearer(&token).send().await;
    res.assert_problem(403, "insufficient_scope");
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope", scope="system/Patient.s""#)
    );
}

#[actix_web::test]
async fn an_assertion_is_taken_once_in_this_process_or_any_other() {
    let app = smart_app().await;
    let twin = app.twin().await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let scope = "system/Patient.rs";

    let assertion = ec_key().sign(&claims(&client));
    assert_eq!(ask(&app, &assertion, scope).await.status, 200);
    assert_eq!(app.count("client_assertions"), 1);
    let again = ask(&app, &assertion, scope).await;
    assert!(assert_oauth_error(&again, "invalid_client").contains("jti"), "{}", again.text);
    // The other process refuses it too: it was taken in the database.
    assert_oauth_error(&ask(&twin, &assertion, scope).await, "invalid_client");

    // Taken by the other process first.
    let assertion = ec_key().sign(&claims(&client));
    let res = ask(&twin, &assertion, scope).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_oauth_error(&ask(&app, &assertion, scope).await, "invalid_client");
    assert_eq!(app.count("client_assertions"), 2);

    // Past its `exp` but within the 30 s of skew allowed: taken once, and
    // kept until the leeway is over too, so a replay finds it.
    let late = ec_key().sign(&claims_with(&client, json!({"exp": now() - 10})));
    let res = ask(&app, &late, scope).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_oauth_error(&ask(&app, &late, scope).await, "invalid_client");
    assert_oauth_error(&ask(&twin, &late, scope).await, "invalid_client");
    assert_eq!(app.count("client_assertions"), 3);

    // Sent to both at once: one token.
    let assertion = ec_key().sign(&claims(&client));
    let answers = app
        .send_all(vec![
            token_request(&app, &assertion, scope),
            token_request(&twin, &assertion, scope),
        ])
        .await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{answers:#?}");
    let refused = answers.iter().find(|r| r.status == 400).unwrap();
    assert_oauth_error(refused, "invalid_client");
    assert_eq!(app.count("client_assertions"), 4);
}

#[actix_web::test]
async fn an_assertion_for_another_audience_expired_too_long_lived_or_without_jti_is_refused() {
    let app = smart_app().await;
    let client = register(&app, &[rsa_key(), ec_key()], &["system/Patient.rs"]).await;
    // (changed claims, what the refusal says)
    let refused = [
        (json!({"aud": "https://other.example.org/oauth/token"}), "aud"),
        (json!({"aud": PUBLIC_URL}), "aud"),
        (json!({"aud": null}), ""),
        (json!({"iat": now() - 600, "exp": now() - 120}), "expired"),
        (json!({"exp": null}), ""),
        (json!({"exp": now() + 400}), "5 minutes"),
        (json!({"jti": null}), "jti"),
        (json!({"jti": ""}), "jti"),
        (json!({"iat": now() + 300}), "iat"),
        (json!({"iss": "someone-else"}), "iss"),
        (json!({"sub": "someone-else"}), "sub"),
        (json!({"nbf": now() + 120}), "nbf"),
    ];
    for key in [rsa_key(), ec_key()] {
        for (changes, says) in &refused {
            let res =
                ask(&app, &key.sign(&claims_with(&client, changes.clone())), "system/Patient.rs")
                    .await;
            let description = assert_oauth_error(&res, "invalid_client");
            assert!(description.contains(says), "{changes} {says}: {description}");
        }
    }
    assert_eq!(app.count("client_assertions"), 0, "no refused assertion is kept");
    // Within the rules: `exp` 5 minutes ahead with the leeway, no `iat`.
    let fine = claims_with(&client, json!({"exp": now() + 320, "iat": null}));
    let res = ask(&app, &ec_key().sign(&fine), "system/Patient.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.count("client_assertions"), 1);
}

#[actix_web::test]
async fn an_unknown_or_disabled_client_gets_no_token_until_enabled() {
    let app = smart_app().await;
    let unknown = new_jti();
    let res = ask(&app, &ec_key().sign(&claims(&unknown)), "system/Patient.rs").await;
    assert_oauth_error(&res, "invalid_client");

    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let held = access_token(&app, ec_key(), &client, "system/Patient.rs").await;
    let res = app.post(&format!("/v1/clients/{client}/disable")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "disabled");
    assert!(res.body["disabled_at"].is_string(), "{}", res.text);
    let before = app.count("client_assertions");
    let res = ask(&app, &ec_key().sign(&claims(&client)), "system/Patient.rs").await;
    assert!(assert_oauth_error(&res, "invalid_client").contains("disabled"), "{}", res.text);
    assert_eq!(app.count("client_assertions"), before);
    // A token taken before keeps working until it expires (as documented).
    assert_eq!(app.get("/v1/patients").bearer(&held).send().await.status, 200);

    let res = app.post(&format!("/v1/clients/{client}/enable")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (res.body["status"].as_str(), &res.body["disabled_at"]),
        (Some("active"), &Value::Null)
    );
    let res = ask(&app, &ec_key().sign(&claims(&client)), "system/Patient.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
}

#[actix_web::test]
async fn an_assertion_signed_hs256_rs256_or_unsigned_is_refused() {
    let app = smart_app().await;
    let client = register(&app, &[rsa_key(), ec_key()], &["system/Patient.rs"]).await;
    let hmac = |alg: Algorithm, secret: &[u8]| {
        let mut header = Header::new(alg);
        header.kid = Some("rsa-1".into());
        encode(&header, &claims(&client), &EncodingKey::from_secret(secret)).unwrap()
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).to_string().as_bytes()),
        b64(claims(&client).to_string().as_bytes())
    );
    let assertions = [
        hmac(Algorithm::HS256, b"a-shared-secret-0123456789abcdef"),
        // The classic confusion: an HMAC keyed with the client's public key.
        hmac(Algorithm::HS384, jwks(&[rsa_key()]).to_string().as_bytes()),
        rsa_key().sign_as(Algorithm::RS256, Some("rsa-1"), &claims(&client)),
        rsa_key().sign_as(Algorithm::PS384, Some("rsa-1"), &claims(&client)),
        unsigned,
        "not-a-jwt".to_owned(),
    ];
    for assertion in assertions {
        let res = ask(&app, &assertion, "system/Patient.rs").await;
        assert_oauth_error(&res, "invalid_client");
    }
    assert_eq!(app.count("client_assertions"), 0);
}

#[actix_web::test]
async fn a_key_the_client_did_not_register_is_refused() {
    let app = smart_app().await;
    let client = register(&app, &[rsa_key(), ec_key()], &["system/Patient.rs"]).await;
    let another_ec = ClientKey::ec("ec-1");
    let another_rsa =
        EncodingKey::from_rsa_pem(&std::fs::read("tests/fixtures/idp/rsa-1.pem").unwrap()).unwrap();
    let mut rsa_header = Header::new(Algorithm::RS384);
    rsa_header.kid = Some("rsa-1".into());
    let assertions = [
        // A `kid` not in the client's JWKS.
        ec_key().sign_as(Algorithm::ES384, Some("ec-9"), &claims(&client)),
        // No `kid`.
        ec_key().sign_as(Algorithm::ES384, None, &claims(&client)),
        // Another key under a registered `kid`.
        another_ec.sign(&claims(&client)),
        encode(&rsa_header, &claims(&client), &another_rsa).unwrap(),
        // ES384 naming the RSA key, RS384 naming the EC key.
        ec_key().sign_as(Algorithm::ES384, Some("rsa-1"), &claims(&client)),
        rsa_key().sign_as(Algorithm::RS384, Some("ec-1"), &claims(&client)),
    ];
    for (i, assertion) in assertions.into_iter().enumerate() {
        let res = ask(&app, &assertion, "system/Patient.rs").await;
        assert_eq!(res.status, 400, "assertion {i}: {}", res.text);
        assert_oauth_error(&res, "invalid_client");
    }
    assert_eq!(app.count("client_assertions"), 0);
    // A client's key is no other client's.
    let other = register(&app, &[&another_ec], &["system/Patient.rs"]).await;
    let res = ask(&app, &ec_key().sign(&claims(&other)), "system/Patient.rs").await;
    assert_oauth_error(&res, "invalid_client");
    assert_eq!(ask(&app, &another_ec.sign(&claims(&other)), "system/Patient.rs").await.status, 200);
}

#[actix_web::test]
async fn a_token_is_scoped_within_the_clients_scopes() {
    let app = smart_app().await;
    let patient = app.create_patient(patient_body()).await;
    let patient = patient["id"].as_str().unwrap();
    let client =
        register(&app, &[ec_key()], &["system/Patient.crs", "system/Appointment.rs"]).await;
    let sign = || ec_key().sign(&claims(&client));
    // Beyond the client's scopes, or not scopes at all.
    for scope in [
        "system/Patient.crus",
        "system/Patient.d",
        "system/Slot.s",
        "system/*.rs",
        "system/Patient.rs system/Appointment.c",
        "system/Appointment.write",
        "patient/Patient.rs",
        "user/Patient.rs",
        "system/Patient.x",
        "system/Patient.sr",
        "system/Medication.rs",
        "system/Patient.rs?name=Ada",
        "openid",
    ] {
        let res = ask(&app, &sign(), scope).await;
        let description = assert_oauth_error(&res, "invalid_scope");
        assert!(!description.is_empty(), "{scope}");
    }
    // No scope at all is a malformed request.
    assert_oauth_error(&ask(&app, &sign(), "").await, "invalid_request");
    let res = app
        .post("/oauth/token")
        .raw(
            FORM,
            form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &sign()),
            ]),
        )
        .send()
        .await;
    assert_oauth_error(&res, "invalid_request");
    assert_eq!(app.count("client_assertions"), 0);

    // Narrower than the client's scopes: fine, and the token holds only those.
    let res = ask(&app, &sign(), "system/Patient.r").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["scope"], "system/Patient.r");
    let token = res.body["access_token"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/patients/{patient}")).bearer(token).send().await.status, 200);
    let res = app.get("/v1/patients").bearer(token).send().await;
    res.assert_problem(403, "insufficient_scope");
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope", scope="system/Patient.s""#)
    );
    let res = ask(&app, &sign(), "system/Appointment.read system/Patient.c").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["scope"], "system/Appointment.rs system/Patient.c");
    assert_eq!(app.count("client_assertions"), 2);
}

/// The FHIR facade holds an access token to its scopes as /v1 does: a
/// resource type the token has no scope for is a 403 OperationOutcome,
/// with the scope it needs.
#[actix_web::test]
async fn a_tokens_scopes_decide_which_fhir_resources_it_reads() {
    let app = smart_app().await;
    let patient = app.create_patient(patient_body()).await;
    let patient = patient["id"].as_str().unwrap();
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let token = access_token(&app, ec_key(), &client, "system/Patient.rs").await;
    let res = app.get(&format!("/fhir/R4/Patient/{patient}")).bearer(&token).send().await;
    assert_eq!((res.status, &res.body["id"]), (200, &json!(patient)), "{}", res.text);
    let res = app.get("/fhir/R4/Patient?_count=1").bearer(&token).send().await;
    assert_eq!(res.body["resourceType"], "Bundle", "{}", res.text);
    for path in [format!("/fhir/R4/Appointment?patient={patient}"), "/fhir/R4/Slot".to_owned()] {
        let res = app.get(&path).bearer(&token).send().await;
        assert_eq!(res.status, 403, "{path}: {}", res.text);
        assert_eq!(res.header("content-type"), Some("application/fhir+json"));
        assert_eq!(res.body["resourceType"], "OperationOutcome");
        assert!(
            res.header("www-authenticate").is_some_and(|h| h.contains("insufficient_scope")),
            "{path}"
        );
    }
    // The CapabilityStatement names the token endpoint.
    let res = app.get("/fhir/R4/metadata").send().await;
    let token_uri = &res.body["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"];
    assert_eq!(token_uri, &json!(format!("{PUBLIC_URL}/oauth/token")));
}

/// A scope of spaces only names no scope: asking for nothing gets no
/// token (`invalid_request` as a missing scope, or `invalid_scope`), and
/// the assertion is not taken.
#[actix_web::test]
async fn a_scope_of_spaces_only_gets_no_token() {
    let app = smart_app().await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    for scope in [" ", "   "] {
        let res = ask(&app, &ec_key().sign(&claims(&client)), scope).await;
        assert_eq!(res.status, 400, "{scope:?}: {}", res.text);
        let error = res.body["error"].as_str().unwrap_or_default().to_owned();
        assert!(["invalid_request", "invalid_scope"].contains(&error.as_str()), "{}", res.text);
        assert_oauth_error(&res, &error);
    }
    assert_eq!(app.count("client_assertions"), 0);
}

#[actix_web::test]
async fn a_token_request_is_a_form_with_each_parameter_once() {
    let app = smart_app().await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let assertion = ec_key().sign(&claims(&client));
    let scope = "system/Patient.rs";
    let send = |content_type: &'static str, body: String| {
        let app = &app;
        async move { app.post("/oauth/token").raw(content_type, body).send().await }
    };
    let good = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
        ("scope", scope),
    ];
    let json_body = json!({"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                           "client_assertion": assertion, "scope": scope});
    let res = app.post("/oauth/token").json(&json_body).send().await;
    assert_oauth_error(&res, "invalid_request");
    let res = send("text/plain", token_form(&assertion, scope)).await;
    assert_oauth_error(&res, "invalid_request");
    let res = app.post("/oauth/token").send().await;
    assert_oauth_error(&res, "invalid_request");

    let mut twice_scope = good.to_vec();
    twice_scope.push(("scope", "system/Patient.r"));
    let mut twice_grant = good.to_vec();
    twice_grant.push(("grant_type", "client_credentials"));
    let mut code = good.to_vec();
    code[0].1 = "authorization_code";
    let mut password = good.to_vec();
    password[0].1 = "password";
    let no_grant = good[1..].to_vec();
    let mut wrong_type = good.to_vec();
    wrong_type[1].1 = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
    let mut no_assertion = good.to_vec();
    no_assertion.remove(2);
    // (pairs, error)
    let cases: [(Vec<(&str, &str)>, &str); 7] = [
        (twice_scope, "invalid_request"),
        (twice_grant, "invalid_request"),
        (code, "unsupported_grant_type"),
        (password, "unsupported_grant_type"),
        (no_grant, "invalid_request"),
        (wrong_type, "invalid_client"),
        (no_assertion, "invalid_client"),
    ];
    for (pairs, error) in cases {
        let res = send(FORM, form(&pairs)).await;
        let description = assert_oauth_error(&res, error);
        assert!(!description.is_empty(), "{pairs:?}");
    }
    // Client authentication is the assertion alone.
    let res = token_request(&app, &assertion, scope)
        .header("authorization", &format!("Basic {}", b64(format!("{client}:secret").as_bytes())))
        .send()
        .await;
    assert_oauth_error(&res, "invalid_client");
    let res = token_request(&app, &assertion, scope).role(Role::Admin).send().await;
    assert_oauth_error(&res, "invalid_client");
    // Only POST.
    let res = app.get("/oauth/token").send().await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(app.count("client_assertions"), 0, "nothing refused was kept");
    // The assertion was never exchanged: it still is good once.
    let res = send(FORM, form(&good)).await;
    assert_eq!(res.status, 200, "{}", res.text);
}

#[actix_web::test]
async fn only_admins_register_clients_and_bad_registrations_store_nothing() {
    let app = smart_app().await;
    let body = json!({"name": "Riverside EHR", "jwks": jwks(&[ec_key()])});
    for role in [Role::Clinician, Role::Scheduler, Role::Integration, Role::Patient] {
        let res = app.post("/v1/clients").role(role).json(&body).send().await;
        res.assert_problem(403, "forbidden");
        app.get("/v1/clients").role(role).send().await.assert_problem(403, "forbidden");
    }
    app.post("/v1/clients").json(&body).send().await.assert_problem(401, "unauthorized");
    app.get("/v1/clients").send().await.assert_problem(401, "unauthorized");
    assert_eq!(app.count("clients"), 0);

    let with_key = |changes: Value| {
        let mut key = ec_key().jwk.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                key.as_object_mut().unwrap().remove(k);
            } else {
                key[k] = v.clone();
            }
        }
        json!({"name": "EHR", "jwks": {"keys": [key]}})
    };
    // RFC 7517's example P-256 key: ES256, not ES384.
    let p256 = json!({"kty": "EC", "crv": "P-256", "kid": "p256",
                      "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                      "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
    let short_rsa = json!({"kty": "RSA", "kid": "rsa-1024", "n": "u".repeat(171), "e": "AQAB"});
    let jwks_ec = jwks(&[ec_key()]);
    // (body, the fields named)
    let refused: Vec<(Value, Vec<&str>)> = vec![
        (json!({"name": "EHR", "role": "admin", "jwks": jwks_ec}), vec!["role"]),
        (json!({"name": "EHR", "role": "patient", "jwks": jwks_ec}), vec!["role"]),
        (
            json!({"name": "EHR", "jwks": jwks_ec, "jwks_url": "https://ehr.example.org/jwks.json"}),
            vec!["jwks"],
        ),
        (json!({"name": "EHR"}), vec!["jwks"]),
        (with_key(json!({"d": "c2VjcmV0"})), vec!["jwks.keys[0]"]),
        (with_key(json!({"kid": null})), vec!["jwks.keys[0]"]),
        (with_key(json!({"use": "enc"})), vec!["jwks.keys[0]"]),
        (with_key(json!({"alg": "ES256"})), vec!["jwks.keys[0]"]),
        (json!({"name": "EHR", "jwks": {"keys": [p256]}}), vec!["jwks.keys[0]"]),
        (json!({"name": "EHR", "jwks": {"keys": [short_rsa]}}), vec!["jwks.keys[0]"]),
        (
            json!({"name": "EHR", "jwks": {"keys": [ec_key().jwk, ec_key().jwk]}}),
            vec!["jwks.keys[1]"],
        ),
        (json!({"name": "EHR", "jwks": {"keys": []}}), vec!["jwks"]),
        (json!({"name": "EHR", "jwks_url": "http://ehr.example.org/jwks.json"}), vec!["jwks_url"]),
        (json!({"name": "EHR", "jwks_url": "http://10.0.0.5/jwks.json"}), vec!["jwks_url"]),
        (json!({"name": "EHR", "jwks_url": "ftp://ehr.example.org/jwks.json"}), vec!["jwks_url"]),
        (json!({"name": "EHR", "jwks": jwks_ec, "scopes": ["patient/Patient.rs"]}), vec!["scopes"]),
        (
            json!({"name": "EHR", "jwks": jwks_ec, "scopes": ["system/Patient.rs", "system/Medication.rs"]}),
            vec!["scopes"],
        ),
        (json!({"name": "EHR", "jwks": jwks_ec, "scopes": ["system/Patient.x"]}), vec!["scopes"]),
        (json!({"name": "EHR", "jwks": jwks_ec, "scopes": []}), vec!["scopes"]),
        (
            json!({"name": "EHR", "role": "admin", "jwks": jwks_ec, "scopes": ["openid"]}),
            vec!["role", "scopes"],
        ),
    ];
    for (body, fields) in refused {
        let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
        res.assert_invalid_fields(&fields);
    }
    assert_eq!(app.count("clients"), 0, "nothing refused was stored");

    // Registered with the defaults: `integration`, what that role can do.
    let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let client = res.body.clone();
    let id = client["id"].as_str().unwrap();
    assert_eq!(res.header("location"), Some(format!("/v1/clients/{id}").as_str()));
    assert_eq!(client["name"], "Riverside EHR");
    assert_eq!(client["role"], "integration");
    assert_eq!(client["scopes"], json!(DEFAULT_SCOPES));
    assert_eq!((client["status"].as_str(), &client["disabled_at"]), (Some("active"), &Value::Null));
    assert_eq!(client["jwks_url"], Value::Null);
    let key = &client["jwks"]["keys"][0];
    for member in ["kty", "crv", "kid", "x", "y"] {
        assert_eq!(key[member], ec_key().jwk[member], "{member}");
    }
    assert!(client["created_at"].is_string() && client["updated_at"].is_string());
    assert_eq!(app.count("clients"), 1);

    let res = app.get(&format!("/v1/clients/{id}")).role(Role::Admin).send().await;
    assert_eq!((res.status, &res.body), (200, &client), "{}", res.text);
    let res = app.get("/v1/clients").role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"], json!([client]));
    assert_eq!(res.body["next_cursor"], Value::Null);
    let missing = "019ac5a0-0000-7000-8000-0000000000c9";
    let res = app.get(&format!("/v1/clients/{missing}")).role(Role::Admin).send().await;
    res.assert_problem(404, "not_found");

    // Changes: admins only; a bad one changes nothing.
    let path = format!("/v1/clients/{id}");
    for role in [Role::Clinician, Role::Scheduler, Role::Integration] {
        let res = app.patch(&path).role(role).json(&json!({"name": "X"})).send().await;
        res.assert_problem(403, "forbidden");
        let res = app.post(&format!("{path}/disable")).role(role).send().await;
        res.assert_problem(403, "forbidden");
    }
    let bad = json!({"scopes": ["system/Nope.r"]});
    app.patch(&path).role(Role::Admin).json(&bad).send().await.assert_invalid_fields(&["scopes"]);
    let bad = json!({"jwks": jwks_ec, "jwks_url": "https://ehr.example.org/jwks.json"});
    app.patch(&path).role(Role::Admin).json(&bad).send().await.assert_invalid_fields(&["jwks"]);
    let res = app.get(&path).role(Role::Admin).send().await;
    assert_eq!(res.body, client, "unchanged");
    let change = json!({"name": "Riverside EHR 2", "scopes": ["system/Appointment.read"]});
    let res = app.patch(&path).role(Role::Admin).json(&change).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["name"], "Riverside EHR 2");
    assert_eq!(res.body["scopes"], json!(["system/Appointment.rs"]));
    assert_eq!(res.body["jwks"], client["jwks"]);
}

#[actix_web::test]
async fn a_changed_scope_or_key_holds_from_the_next_token_on() {
    let app = smart_app().await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let path = format!("/v1/clients/{client}");
    // Rotated to the RSA key: the EC key signs for it no longer.
    let change = json!({"jwks": jwks(&[rsa_key()]), "scopes": ["system/Appointment.rs"]});
    let res = app.patch(&path).role(Role::Admin).json(&change).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = ask(&app, &ec_key().sign(&claims(&client)), "system/Appointment.rs").await;
    assert_oauth_error(&res, "invalid_client");
    let res = ask(&app, &rsa_key().sign(&claims(&client)), "system/Patient.rs").await;
    assert_oauth_error(&res, "invalid_scope");
    let res = ask(&app, &rsa_key().sign(&claims(&client)), "system/Appointment.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
}

#[actix_web::test]
async fn a_client_registered_by_jwks_url_signs_with_the_keys_published_there() {
    let server = JwksServer::start(&jwks(&[rsa_key(), ec_key()]).to_string());
    let app = smart_app().await;
    let body =
        json!({"name": "Lakeside EHR", "jwks_url": server.url, "scopes": ["system/Patient.rs"]});
    let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(
        (&res.body["jwks"], res.body["jwks_url"].as_str()),
        (&Value::Null, Some(server.url.as_str()))
    );
    let client = res.body["id"].as_str().unwrap();
    for key in [ec_key(), rsa_key()] {
        let res = ask(&app, &key.sign(&claims(client)), "system/Patient.rs").await;
        assert_eq!(res.status, 200, "{:?}: {}", key.alg, res.text);
    }
    assert!(server.fetches() >= 1);
    // A key the URL does not publish.
    let stranger = ClientKey::ec("ec-9");
    let res = ask(&app, &stranger.sign(&claims(client)), "system/Patient.rs").await;
    assert_oauth_error(&res, "invalid_client");

    // A `jku` is the registered URL, or the assertion is refused: keys are
    // never read from where an assertion points.
    let signed = |jku: &str| {
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some("ec-1".into());
        header.jku = Some(jku.to_owned());
        encode(&header, &claims(client), &ec_key().encoding()).unwrap()
    };
    let res = ask(&app, &signed(&server.url), "system/Patient.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let elsewhere = format!("{}?evil", server.url);
    let res = ask(&app, &signed(&elsewhere), "system/Patient.rs").await;
    assert!(assert_oauth_error(&res, "invalid_client").contains("jku"), "{}", res.text);
}

/// The keys a URL serves are held to what registration asks of a JWKS: a
/// 1024-bit RSA key published there verifies nothing.
#[actix_web::test]
async fn a_short_rsa_key_at_a_jwks_url_verifies_nothing() {
    let short = ClientKey::rsa_of("rsa-short", 1024);
    let server = JwksServer::start(&jwks(&[&short, ec_key()]).to_string());
    let app = smart_app().await;
    let body =
        json!({"name": "Lakeside EHR", "jwks_url": server.url, "scopes": ["system/Patient.rs"]});
    let res = app.post("/v1/clients").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let client = res.body["id"].as_str().unwrap();
    let res = ask(&app, &short.sign(&claims(client)), "system/Patient.rs").await;
    assert_oauth_error(&res, "invalid_client");
    let res = ask(&app, &ec_key().sign(&claims(client)), "system/Patient.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.count("client_assertions"), 1);
}

/// Our key signs access tokens only as `typ: at+jwt` (RFC 9068): a JWT of
/// our key's that says otherwise is not taken for one.
#[actix_web::test]
async fn an_access_token_must_say_it_is_one() {
    let app = smart_app().await;
    let pem = std::fs::read(SIGNING_KEY_1).unwrap();
    let kid = app.get("/.well-known/jwks.json").send().await.body["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = json!({"iss": crate::helpers::ISSUER, "aud": crate::helpers::AUDIENCE,
        "sub": "c-1", "client_id": "c-1", "role": "integration", "scope": "system/Patient.rs",
        "iat": now(), "exp": now() + 60, "jti": new_jti()});
    let signed = |typ: Option<&str>| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        header.typ = typ.map(str::to_owned);
        encode(&header, &claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
    };
    for typ in [Some("at+jwt"), Some("application/AT+JWT")] {
        let res = app.get("/v1/patients").bearer(&signed(typ)).send().await;
        assert_eq!(res.status, 200, "{typ:?}: {}", res.text);
    }
    for typ in [Some("JWT"), None] {
        let res = app.get("/v1/patients").bearer(&signed(typ)).send().await;
        res.assert_problem(401, "unauthorized");
    }
}

#[actix_web::test]
async fn the_smart_configuration_and_the_jwks_describe_the_token_endpoint() {
    let app = smart_app().await;
    let res = app.get("/.well-known/smart-configuration").send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let config = &res.body;
    assert_eq!(config["token_endpoint"], TOKEN_URL);
    assert_eq!(config["jwks_uri"], format!("{PUBLIC_URL}/.well-known/jwks.json"));
    assert_eq!(config["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(config["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));
    assert_eq!(
        config["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS384", "ES384"])
    );
    let capabilities = config["capabilities"].as_array().unwrap();
    assert!(capabilities.contains(&json!("client-confidential-asymmetric")), "{}", res.text);
    let scopes = config["scopes_supported"].as_array().unwrap();
    for scope in ["system/Patient.crus", "system/Slot.rs", "system/PlanDefinition.rus"] {
        assert!(scopes.contains(&json!(scope)), "{scope}: {}", res.text);
    }
    assert!(scopes.iter().all(|s| s.as_str().is_some_and(|s| s.starts_with("system/"))));

    let res = app.get("/.well-known/jwks.json").send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("max-age=300"));
    let keys = res.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", res.text);
    let key = &keys[0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert!(key["x"].is_string() && key["y"].is_string());
    assert!(key.get("d").is_none(), "no private half: {}", res.text);
}

#[actix_web::test]
async fn without_a_signing_key_no_token_is_issued_and_nothing_is_published() {
    let app = TestApp::spawn().await;
    for path in ["/.well-known/smart-configuration", "/.well-known/jwks.json"] {
        app.get(path).send().await.assert_problem(404, "not_found");
    }
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let res = ask(&app, &ec_key().sign(&claims(&client)), "system/Patient.rs").await;
    res.assert_problem(404, "not_found");
    assert_eq!(app.count("client_assertions"), 0);
}

#[actix_web::test]
async fn the_access_token_lives_access_token_lifetime_seconds() {
    let app = smart_app_with(&[("ACCESS_TOKEN_LIFETIME_SECONDS", "60")]).await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let res = ask(&app, &ec_key().sign(&claims(&client)), "system/Patient.rs").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["expires_in"], 60);
    let (_, claims) = jwt_parts(res.body["access_token"].as_str().unwrap());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
}

/// A rotation: a token signed with the key now retired keeps verifying
/// where the retired key is listed, and not where it is not.
#[actix_web::test]
async fn a_retired_signing_key_keeps_verifying_the_tokens_it_signed() {
    let before = smart_app().await;
    let old_kid = kids(&published_keys(&before).await)[0].clone();
    let client = register(&before, &[ec_key()], &["system/PlanDefinition.rs"]).await;
    let old = access_token(&before, ec_key(), &client, "system/PlanDefinition.s").await;
    assert_eq!(jwt_parts(&old).0["kid"], old_kid);
    assert_eq!(before.get("/v1/protocols").bearer(&old).send().await.status, 200);

    let rotated = smart_app_with(&[
        ("SIGNING_KEY_FILE", SIGNING_KEY_2),
        ("RETIRED_SIGNING_KEY_FILES", SIGNING_KEY_1),
    ])
    .await;
    let published = kids(&published_keys(&rotated).await);
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[1], old_kid, "the current key first, then the retired one");
    let new_kid = published[0].clone();
    assert_ne!(new_kid, old_kid);
    let res = rotated.get("/v1/protocols").bearer(&old).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    // New tokens are signed with the new key.
    let client = register(&rotated, &[ec_key()], &["system/PlanDefinition.rs"]).await;
    let new = access_token(&rotated, ec_key(), &client, "system/PlanDefinition.s").await;
    assert_eq!(jwt_parts(&new).0["kid"], new_kid);

    // Once the old key is no longer listed, its tokens stop verifying.
    let after = smart_app_with(&[("SIGNING_KEY_FILE", SIGNING_KEY_2)]).await;
    assert_eq!(kids(&published_keys(&after).await), [new_kid]);
    after.get("/v1/protocols").bearer(&old).send().await.assert_problem(401, "unauthorized");
    assert_eq!(after.get("/v1/protocols").bearer(&new).send().await.status, 200);
    // Nor does a key never listed verify: the new key's token before the rotation.
    before.get("/v1/protocols").bearer(&new).send().await.assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn a_clients_token_requests_and_calls_are_in_the_audit_trail() {
    let app = smart_app().await;
    let patient = app.create_patient(patient_body()).await;
    let patient = patient["id"].as_str().unwrap();
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let token = access_token(&app, ec_key(), &client, "system/Patient.rs").await;
    let res = app.get(&format!("/v1/patients/{patient}")).bearer(&token).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.post("/v1/patients").bearer(&token).json(&patient_body()).send().await;
    res.assert_problem(403, "insufficient_scope");
    let refused = ask(
        &app,
        &ec_key().sign_as(Algorithm::ES384, Some("ec-9"), &claims(&client)),
        "system/Patient.rs",
    )
    .await;
    assert_oauth_error(&refused, "invalid_client");

    let tokens = trail(&app, "operation=request_token").await;
    let issued: Vec<&Value> = tokens.iter().filter(|e| e["status"] == 200).collect();
    assert_eq!(issued.len(), 1, "{tokens:#?}");
    let issued = issued[0];
    let actor = format!("client:{client}");
    assert_eq!(issued["client_id"], client.as_str());
    assert_eq!(issued["actor"], actor.as_str());
    assert_eq!(issued["actor_role"], "integration");
    assert_eq!(
        (issued["method"].as_str(), issued["path"].as_str()),
        (Some("POST"), Some("/oauth/token"))
    );
    assert_eq!(issued["records"], json!([format!("client/{client}")]));
    // The refused request is on the trail too, its client unproven.
    let failed: Vec<&Value> = tokens.iter().filter(|e| e["status"] == 400).collect();
    assert_eq!(failed.len(), 1, "{tokens:#?}");
    assert_eq!(failed[0]["client_id"], Value::Null);

    let read = trail(&app, &format!("operation=get_patient&patient_id={patient}")).await;
    assert_eq!(read.len(), 1, "{read:#?}");
    assert_eq!(read[0]["client_id"], client.as_str());
    assert_eq!(read[0]["actor"], actor.as_str());
    assert_eq!(read[0]["actor_role"], "integration");
    assert_eq!(read[0]["status"], 200);
    let attempts = trail(&app, "operation=create_patient").await;
    let by_client: Vec<&Value> =
        attempts.iter().filter(|e| e["client_id"] == client.as_str()).collect();
    assert_eq!(by_client.len(), 1, "{attempts:#?}");
    assert_eq!(by_client[0]["status"], 403);
    // The clinician's registration is no client's.
    let clinician = attempts.iter().find(|e| e["status"] == 201).expect("the registration");
    assert_eq!(clinician["client_id"], Value::Null);
    // By the client, as the trail names it.
    let mine = trail(&app, &format!("actor={actor}")).await;
    assert_eq!(mine.len(), 3, "{mine:#?}");
    assert!(mine.iter().all(|e| e["client_id"] == client.as_str()), "{mine:#?}");
}

#[actix_web::test]
async fn failed_client_authentications_count_toward_the_addresss_limit() {
    let app =
        smart_app_with(&[("AUTH_FAILURE_LIMIT", "3"), ("AUTH_FAILURE_WINDOW_SECONDS", "60")]).await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let scope = "system/Patient.rs";
    let forged = || ClientKey::ec("ec-1");
    let attacker = "203.0.113.5:40000";
    for _ in 0..3 {
        let res = token_request(&app, &forged().sign(&claims(&client)), scope)
            .from(attacker)
            .send()
            .await;
        assert_oauth_error(&res, "invalid_client");
    }
    // The address is blocked: a good assertion too, and its /v1 requests.
    let res = token_request(&app, &ec_key().sign(&claims(&client)), scope)
        .from("203.0.113.5:40001")
        .send()
        .await;
    res.assert_problem(429, "too_many_failed_authentications");
    assert!(res.header("retry-after").is_some());
    let res = app.get("/v1/patients").role(Role::Admin).from(attacker).send().await;
    res.assert_problem(429, "too_many_failed_authentications");
    assert_eq!(app.count("client_assertions"), 0);

    // A bad scope or a malformed request is no failed authentication.
    let other = "198.51.100.9:5000";
    for _ in 0..4 {
        let res = token_request(&app, &ec_key().sign(&claims(&client)), "system/Slot.s")
            .from(other)
            .send()
            .await;
        assert_oauth_error(&res, "invalid_scope");
        let res =
            app.post("/oauth/token").raw(FORM, form(&[("scope", scope)])).from(other).send().await;
        assert_oauth_error(&res, "invalid_request");
    }
    let res = token_request(&app, &ec_key().sign(&claims(&client)), scope).from(other).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A `jti` is pruned only ten minutes after its assertion could last pass
/// (`exp` + 30 s), so servers whose clocks disagree still find it.
#[actix_web::test]
async fn a_taken_jti_is_pruned_only_well_after_its_assertion_stopped_passing() {
    let app = smart_app().await;
    let client = register(&app, &[ec_key()], &["system/Patient.rs"]).await;
    let exp = now() + 60;
    let assertion = ec_key().sign(&claims_with(&client, json!({"exp": exp})));
    assert_eq!(ask(&app, &assertion, "system/Patient.rs").await.status, 200);
    let passes_until = exp + 30;
    let prune = |at: i64| {
        let mut conn = app.pool.get().unwrap();
        let at = chrono::DateTime::from_timestamp(at, 0).unwrap();
        infusion_api::store::clients::prune_assertions(&mut conn, at).unwrap()
    };
    assert_eq!(prune(passes_until + 599), 0);
    assert_eq!(app.count("client_assertions"), 1);
    assert_eq!(prune(passes_until + 601), 1);
    assert_eq!(app.count("client_assertions"), 0);
}
