//! Tokens from the clinic's identity provider (`TRUSTED_ISSUERS_FILE`):
//! RS256 and ES256 tokens verified with the provider's JWKS, their role
//! mapped from its groups, and every check our own tokens get.

use std::path::{Path, PathBuf};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{JwksServer, TestApp, SECRET};

const IDP: &str = "https://idp.example.org/realms/clinic";
const FIXTURES: &str = "tests/fixtures/idp";

/// A file of the test's own, removed when it ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let path = std::env::temp_dir().join(format!("infusion-{unique}-{name}"));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
}

/// An app trusting the pretend provider, whose JWKS is `jwks` (a file the
/// test may rewrite), with `algorithms`.
async fn trusting(jwks: &TempFile, algorithms: &[&str]) -> (TestApp, TempFile) {
    trusting_source(json!({"jwks_file": jwks.0}), algorithms).await
}

/// An app trusting the pretend provider, its JWKS from `source`
/// (`jwks_file` or `jwks_url`).
async fn trusting_source(source: Value, algorithms: &[&str]) -> (TestApp, TempFile) {
    let mut issuer = json!({
        "issuer": IDP,
        "audience": "infusion-api",
        "algorithms": algorithms,
        "role_claim": "realm_access.roles",
        "roles": [
            {"group": "clinic-admin", "role": "admin"},
            {"group": "clinic-clinician", "role": "clinician"},
            {"group": "clinic-desk", "role": "scheduler"},
            {"group": "ehr", "role": "integration"}
        ]
    });
    for (k, v) in source.as_object().unwrap() {
        issuer[k] = v.clone();
    }
    let file = TempFile::new("issuers.json", &json!([issuer]).to_string());
    let path = file.0.to_string_lossy().into_owned();
    let app = TestApp::builder().setting("TRUSTED_ISSUERS_FILE", &path).build().await;
    (app, file)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims as the provider would issue them to `sub` in `groups`.
fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({"iss": IDP, "aud": "infusion-api", "sub": sub, "iat": now(), "exp": now() + 300,
           "realm_access": {"roles": groups}, "preferred_username": "desk"})
}

/// `claims` signed by the provider's key `kid` (a fixture) with `alg`.
fn signed(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let pem = fixture(&format!("{kid}.pem"));
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &key).unwrap()
}

#[actix_web::test]
async fn a_providers_rs256_and_es256_tokens_carry_the_role_its_groups_map_to() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256", "ES256"]).await;
    let desk =
        signed(Algorithm::RS256, "rsa-1", &claims("kc-user-1", &["offline_access", "clinic-desk"]));
    let res = app.get("/v1/patients").bearer(&desk).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    // A scheduler: no rooms.
    let room = json!({"name": "Room 9"});
    app.post("/v1/rooms").bearer(&desk).json(&room).send().await.assert_problem(403, "forbidden");
    let admin = signed(Algorithm::ES256, "ec-1", &claims("kc-user-2", &["clinic-admin"]));
    let res = app.post("/v1/rooms").bearer(&admin).json(&room).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    // The trail names the provider's subjects, refused and admitted.
    let trail = app.get("/v1/audit-events?operation=create_room").bearer(&admin).send().await;
    let who: Vec<(Value, Value, Value)> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].clone(), e["actor_role"].clone(), e["status"].clone()))
        .collect();
    assert_eq!(
        who,
        [
            (json!(format!("kc-user-1@{IDP}")), json!("scheduler"), json!(403)),
            (json!(format!("kc-user-2@{IDP}")), json!("admin"), json!(201))
        ]
    );
}

#[actix_web::test]
async fn a_providers_token_passes_every_check_our_own_tokens_pass() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256"]).await;
    let with = |changes: Value| {
        let mut c = claims("kc-user-1", &["clinic-desk"]);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let rsa = |c: &Value| signed(Algorithm::RS256, "rsa-1", c);
    let mut crit = Header::new(Algorithm::RS256);
    crit.kid = Some("rsa-1".into());
    crit.crit = Some(vec!["exp".into()]);
    let key = EncodingKey::from_rsa_pem(fixture("rsa-1.pem").as_bytes()).unwrap();
    let with_crit = encode(&crit, &claims("kc-user-1", &["clinic-desk"]), &key).unwrap();
    let mut typ = Header::new(Algorithm::RS256);
    typ.kid = Some("rsa-1".into());
    typ.typ = Some("dpop+jwt".into());
    let with_typ = encode(&typ, &claims("kc-user-1", &["clinic-desk"]), &key).unwrap();
    // An HS256 token claiming the provider's `iss`: HS256 is ours alone.
    let hs_ours = encode(
        &Header::new(Algorithm::HS256),
        &claims("kc-user-1", &["clinic-desk"]),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    // The classic confusion: an HMAC keyed with the provider's public key,
    // naming the provider (HS384, so that it is not taken for ours).
    let hs_public = encode(
        &Header::new(Algorithm::HS384),
        &claims("kc-user-1", &["clinic-desk"]),
        &EncodingKey::from_secret(fixture("jwks.json").as_bytes()),
    )
    .unwrap();
    // `alg: none`, unsigned.
    let unsigned = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims("kc-user-1", &["clinic-desk"]))
        )
    };
    // (token, what the refusal says)
    let refused = [
        (rsa(&with(json!({"aud": "another-api"}))), "not valid"),
        (
            rsa(&with(json!({"iss": "https://evil.example.org"}))),
            "issuer is not one this API trusts",
        ),
        (rsa(&with(json!({"iat": now() - 7200, "exp": now() - 3600}))), "expired"),
        (rsa(&with(json!({"exp": now() + 13 * 3600}))), "JWT_MAX_LIFETIME_MINUTES"),
        (rsa(&with(json!({"iat": null}))), "no `iat`"),
        (rsa(&with(json!({"iat": now() + 3600, "exp": now() + 7200}))), "`iat` is in the future"),
        (rsa(&with(json!({"sub": null}))), "not valid"),
        (rsa(&with(json!({"realm_access": {"roles": ["offline_access"]}}))), "no group"),
        (with_crit, "`crit`"),
        (with_typ, "`typ`"),
        (
            signed(Algorithm::ES256, "ec-1", &with(json!({}))),
            "algorithm is not one its issuer may use",
        ),
        (
            signed(Algorithm::RS256, "rsa-2", &with(json!({}))),
            "key (`kid`) is not one its issuer publishes",
        ),
        (hs_ours, "not valid"),
        (hs_public, "algorithm is not one its issuer may use"),
        (unsigned, "not valid"),
    ];
    for (token, says) in refused {
        let res = app.get("/v1/patients").bearer(&token).send().await;
        let body = res.assert_problem(401, "unauthorized");
        assert!(body["detail"].as_str().unwrap().contains(says), "{says}: {}", res.text);
    }
    // Our own tokens still work beside the provider's.
    let ours =
        app.get("/v1/patients").role(infusion_api::domain::access::Role::Scheduler).send().await;
    assert_eq!(ours.status, 200);
}

/// The provider rotates: its JWKS file gains the next key, and a token
/// signed with it is taken once the file says so; a JWKS that stops
/// reading keeps the keys read before.
#[actix_web::test]
async fn a_rotated_key_is_read_from_the_jwks_and_a_broken_jwks_keeps_the_old_keys() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256", "ES256"]).await;
    jwks.write(&fixture("jwks-rotated.json"));
    let next = signed(Algorithm::RS256, "rsa-2", &claims("kc-user-1", &["clinic-desk"]));
    let res = app.get("/v1/patients").bearer(&next).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let before = signed(Algorithm::RS256, "rsa-1", &claims("kc-user-1", &["clinic-desk"]));
    assert_eq!(app.get("/v1/patients").bearer(&before).send().await.status, 200);
}

#[actix_web::test]
async fn a_jwks_that_stops_reading_keeps_the_keys_read_before() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256", "ES256"]).await;
    jwks.write("{ not json");
    // An unknown key makes it read the file again, which fails.
    let unknown = signed(Algorithm::RS256, "rsa-2", &claims("kc-user-1", &["clinic-desk"]));
    app.get("/v1/patients").bearer(&unknown).send().await.assert_problem(401, "unauthorized");
    let known = signed(Algorithm::ES256, "ec-1", &claims("kc-user-1", &["clinic-desk"]));
    let res = app.get("/v1/patients").bearer(&known).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A JWKS URL: fetched at start, fetched again when a token names a key it
/// lacks (the provider rotated), at most once a minute, and kept when a
/// fetch fails.
#[actix_web::test]
async fn a_jwks_url_is_fetched_at_start_and_again_for_a_rotated_key_at_most_once_a_minute() {
    let server = JwksServer::start(&fixture("jwks.json"));
    let (app, _issuers) = trusting_source(json!({"jwks_url": server.url}), &["RS256"]).await;
    assert_eq!(server.fetches(), 1);
    let token = |kid: &str| signed(Algorithm::RS256, kid, &claims("kc-user-1", &["clinic-desk"]));
    assert_eq!(app.get("/v1/patients").bearer(&token("rsa-1")).send().await.status, 200);
    assert_eq!(server.fetches(), 1, "a known key needs no fetch");

    server.serve(200, &fixture("jwks-rotated.json"));
    let res = app.get("/v1/patients").bearer(&token("rsa-2")).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(server.fetches(), 2);

    // Within the minute, a made-up key fetches nothing: 401.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-9".into());
    let key = EncodingKey::from_rsa_pem(fixture("rsa-1.pem").as_bytes()).unwrap();
    let unknown = encode(&header, &claims("kc-user-1", &["clinic-desk"]), &key).unwrap();
    app.get("/v1/patients").bearer(&unknown).send().await.assert_problem(401, "unauthorized");
    assert_eq!(server.fetches(), 2);
}

/// A provider down at start: its tokens are refused (nothing to verify
/// with) until a fetch succeeds; the server starts anyway.
#[actix_web::test]
async fn a_provider_down_at_start_is_fetched_again_when_a_token_arrives() {
    let server = JwksServer::start("");
    server.serve(503, "down");
    let (app, _issuers) = trusting_source(json!({"jwks_url": server.url}), &["RS256"]).await;
    assert_eq!(server.fetches(), 1);
    server.serve(200, &fixture("jwks.json"));
    let token = signed(Algorithm::RS256, "rsa-1", &claims("kc-user-1", &["clinic-desk"]));
    let res = app.get("/v1/patients").bearer(&token).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(server.fetches(), 2);
}

/// A key the provider withdraws stops verifying once the JWKS is read
/// again, tokens already verified with it included.
#[actix_web::test]
async fn a_withdrawn_key_stops_verifying_even_a_token_taken_before() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256", "ES256"]).await;
    let old = signed(Algorithm::RS256, "rsa-1", &claims("kc-user-1", &["clinic-desk"]));
    assert_eq!(app.get("/v1/patients").bearer(&old).send().await.status, 200);
    // The provider replaces rsa-1 by rsa-2; a token with rsa-2 makes the
    // server read the JWKS again.
    let mut rotated: Value = serde_json::from_str(&fixture("jwks-rotated.json")).unwrap();
    rotated["keys"].as_array_mut().unwrap().retain(|k| k["kid"] != "rsa-1");
    jwks.write(&rotated.to_string());
    let new = signed(Algorithm::RS256, "rsa-2", &claims("kc-user-1", &["clinic-desk"]));
    assert_eq!(app.get("/v1/patients").bearer(&new).send().await.status, 200);
    let res = app.get("/v1/patients").bearer(&old).send().await;
    res.assert_problem(401, "unauthorized");
}

/// Only a signing key of the token's algorithm verifies it: a key the JWKS
/// marks for encryption, or for another algorithm, does not.
#[actix_web::test]
async fn a_key_for_encryption_or_another_algorithm_does_not_verify() {
    for (field, value) in [("use", "enc"), ("alg", "RS384")] {
        let mut set: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
        set["keys"][0][field] = json!(value);
        let jwks = TempFile::new("jwks.json", &set.to_string());
        let (app, _issuers) = trusting(&jwks, &["RS256"]).await;
        let token = signed(Algorithm::RS256, "rsa-1", &claims("kc-user-1", &["clinic-desk"]));
        let res = app.get("/v1/patients").bearer(&token).send().await;
        res.assert_problem(401, "unauthorized");
    }
}

/// A provider's subject is its own: our token with the same `sub` and role
/// is another caller, with its own idempotency keys.
#[actix_web::test]
async fn equal_subjects_of_two_issuers_are_two_callers() {
    let jwks = TempFile::new("jwks.json", &fixture("jwks.json"));
    let (app, _issuers) = trusting(&jwks, &["RS256"]).await;
    let theirs = signed(Algorithm::RS256, "rsa-1", &claims("desk-1", &["clinic-desk"]));
    let ours = app.token_for(infusion_api::domain::access::Role::Scheduler, "desk-1");
    let body = |given: &str| {
        json!({"given_name": given, "family_name": "Lovelace", "date_of_birth": "1985-12-10",
               "indications": [{"code": "migraine"}]})
    };
    let first = app
        .post("/v1/patients")
        .bearer(&theirs)
        .header("idempotency-key", "k")
        .json(&body("Ada"))
        .send()
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let second = app
        .post("/v1/patients")
        .bearer(&ours)
        .header("idempotency-key", "k")
        .json(&body("Grace"))
        .send()
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_ne!(first.body["id"], second.body["id"]);
}
