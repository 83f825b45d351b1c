//! Bearer JWT authentication and per-handler role checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, without, TestApp, AUDIENCE, ISSUER, SECRET};

fn claims() -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": "someone", "role": "admin", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
}

fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn with_claim(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

fn without_claim(key: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(key);
    c
}

async fn assert_refused(app: &TestApp, token: &str) -> Value {
    let res = app.get("/v1/patients").bearer(token).send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    res.body
}

#[actix_web::test]
async fn a_valid_token_is_accepted() {
    let app = TestApp::spawn().await;
    let token = sign(&claims(), Algorithm::HS256, SECRET);
    let res = app.get("/v1/patients").bearer(&token).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
}

#[actix_web::test]
async fn no_token_is_401() {
    let app = TestApp::spawn().await;
    let res = app.get("/v1/patients").send().await;
    res.assert_problem(401, "unauthorized");
    let res = app.get("/v1/patients/some-id").send().await;
    res.assert_problem(401, "unauthorized");
    let res = app.post("/v1/patients").json(&patient_body()).send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn malformed_tokens_and_headers_are_401() {
    let app = TestApp::spawn().await;
    assert_refused(&app, "not-a-jwt").await;
    assert_refused(&app, "a.b.c").await;
    let good = sign(&claims(), Algorithm::HS256, SECRET);
    for header in [format!("Basic {good}"), good.clone(), "Bearer".into(), "Bearer   ".into()] {
        let res = app.get("/v1/patients").header("authorization", &header).send().await;
        res.assert_problem(401, "unauthorized");
    }
}

#[actix_web::test]
async fn a_bad_signature_is_401() {
    let app = TestApp::spawn().await;
    let forged = sign(&claims(), Algorithm::HS256, "another-secret-0123456789abcdef-0123");
    assert_refused(&app, &forged).await;
    // A scheduler's token with its payload swapped for an admin's keeps the
    // scheduler's signature.
    let scheduler = sign(&with_claim("role", json!("scheduler")), Algorithm::HS256, SECRET);
    let parts: Vec<&str> = scheduler.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(with_claim("role", json!("admin")).to_string());
    assert_refused(&app, &format!("{}.{}.{}", parts[0], payload, parts[2])).await;
}

#[actix_web::test]
async fn alg_none_is_401() {
    let app = TestApp::spawn().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    assert_refused(&app, &format!("{header}.{payload}.")).await;
    assert_refused(&app, &format!("{header}.{payload}")).await;
}

#[actix_web::test]
async fn other_hmac_algorithms_are_401() {
    let app = TestApp::spawn().await;
    assert_refused(&app, &sign(&claims(), Algorithm::HS512, SECRET)).await;
    assert_refused(&app, &sign(&claims(), Algorithm::HS384, SECRET)).await;
}

#[actix_web::test]
async fn an_expired_token_is_401_and_says_so() {
    let app = TestApp::spawn().await;
    let past = Utc::now().timestamp() - 3600;
    let body =
        assert_refused(&app, &sign(&with_claim("exp", json!(past)), Algorithm::HS256, SECRET))
            .await;
    assert_eq!(body["detail"], "the token has expired");
}

#[actix_web::test]
async fn wrong_issuer_or_audience_is_401() {
    let app = TestApp::spawn().await;
    assert_refused(
        &app,
        &sign(&with_claim("iss", json!("someone-else")), Algorithm::HS256, SECRET),
    )
    .await;
    assert_refused(&app, &sign(&with_claim("aud", json!("another-api")), Algorithm::HS256, SECRET))
        .await;
}

#[actix_web::test]
async fn required_claims_must_be_present() {
    let app = TestApp::spawn().await;
    for claim in ["exp", "iss", "aud", "sub", "role"] {
        assert_refused(&app, &sign(&without_claim(claim), Algorithm::HS256, SECRET)).await;
    }
    assert_refused(&app, &sign(&with_claim("role", json!("superuser")), Algorithm::HS256, SECRET))
        .await;
    assert_refused(&app, &sign(&with_claim("sub", json!("  ")), Algorithm::HS256, SECRET)).await;
}

#[actix_web::test]
async fn roles_are_checked_per_handler() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(patient_body()).await;
    let id = patient["id"].as_str().unwrap();
    let path = format!("/v1/patients/{id}");

    // Integrations create and read but do not edit, and do not set the
    // clinical flags.
    let demographics =
        without(without(patient_body(), "pain_referral_required"), "in_mental_health_treatment");
    let res = app.post("/v1/patients").role(Role::Integration).json(&demographics).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["pain_referral_required"], false);
    for role in [Role::Integration, Role::Scheduler] {
        let res = app.post("/v1/patients").role(role).json(&patient_body()).send().await;
        res.assert_problem(403, "forbidden");
        assert!(res.body["detail"].as_str().unwrap().contains("only clinicians"));
    }
    assert_eq!(app.get("/v1/patients").role(Role::Integration).send().await.status, 200);
    assert_eq!(app.get(&path).role(Role::Integration).send().await.status, 200);
    app.patch(&path)
        .role(Role::Integration)
        .json(&json!({"phone": "+1 555 010 0000"}))
        .send()
        .await
        .assert_problem(403, "forbidden");

    // Patients neither list nor create nor edit.
    app.get("/v1/patients").patient(id).send().await.assert_problem(403, "forbidden");
    app.post("/v1/patients")
        .patient(id)
        .json(&patient_body())
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.patch(&path)
        .patient(id)
        .json(&json!({"phone": "+1 555 010 0000"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(app.count("patients"), 2);

    // Schedulers edit demographics; the flags that waive referrals are clinical.
    for flag in ["pain_referral_required", "in_mental_health_treatment"] {
        let res = app.patch(&path).role(Role::Scheduler).json(&json!({flag: true})).send().await;
        res.assert_problem(403, "forbidden");
    }
    let res = app
        .patch(&path)
        .role(Role::Scheduler)
        .json(&json!({"phone": "+1 555 010 7777"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for role in [Role::Admin, Role::Clinician] {
        let res = app
            .patch(&path)
            .role(role)
            .json(&json!({"pain_referral_required": false}))
            .send()
            .await;
        assert_eq!(res.status, 200, "{role:?}: {}", res.text);
    }
}

#[actix_web::test]
async fn a_patient_reads_only_its_own_record() {
    let app = TestApp::spawn().await;
    let mine = app.create_patient(patient_body()).await;
    let theirs = app.create_patient(patient_body()).await;
    let my_id = mine["id"].as_str().unwrap();
    let their_id = theirs["id"].as_str().unwrap();

    let res = app.get(&format!("/v1/patients/{my_id}")).patient(my_id).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["id"], my_id);

    // Another patient's record is 404, like one that does not exist.
    let res = app.get(&format!("/v1/patients/{their_id}")).patient(my_id).send().await;
    res.assert_problem(404, "not_found");
    let missing = uuid::Uuid::now_v7().to_string();
    let res = app.get(&format!("/v1/patients/{missing}")).patient(my_id).send().await;
    res.assert_problem(404, "not_found");
}

/// Signs `claims` under a hand-made `header` with HMAC-SHA256 and `secret`,
/// as an attacker shaping the header would.
fn forge(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use jsonwebtoken::crypto::sign;
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{head}.{body}");
    let signature =
        sign(message.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[actix_web::test]
async fn algorithm_confusion_is_refused() {
    let app = TestApp::spawn().await;
    // RFC 8725 §2.1: a token claiming RS256 (or ES256, PS256...) is refused
    // before any key is chosen, whatever it was signed with.
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "HS256 "] {
        let token = forge(&json!({"alg": alg, "typ": "JWT"}), &claims(), SECRET.as_bytes());
        assert_refused(&app, &token).await;
    }
    // The same HMAC over a well-formed HS256 header is accepted: the refusals
    // above are the algorithm's doing.
    let token = forge(&json!({"alg": "HS256", "typ": "JWT"}), &claims(), SECRET.as_bytes());
    assert_eq!(app.get("/v1/patients").bearer(&token).send().await.status, 200);
}

#[actix_web::test]
async fn a_kid_header_cannot_choose_the_key() {
    let app = TestApp::spawn().await;
    // A `kid` naming a file or smuggling SQL does not make the server look a
    // key up: tokens signed with an empty or guessable key stay refused.
    for kid in ["../../../../dev/null", "/etc/passwd", "' OR '1'='1", "x'; DROP TABLE patients; --"]
    {
        for secret in [&b""[..], b"0", b"\n"] {
            let token =
                forge(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), &claims(), secret);
            assert_refused(&app, &token).await;
        }
    }
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn tokens_without_expiry_or_with_a_far_past_not_before_are_handled() {
    let app = TestApp::spawn().await;
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let body = assert_refused(&app, &sign(&no_exp, Algorithm::HS256, SECRET)).await;
    assert_eq!(body["code"], "unauthorized");
    // A token that is not valid yet (`nbf` in the future) is refused too.
    let future = with_claim("nbf", json!(Utc::now().timestamp() + 3600));
    assert_refused(&app, &sign(&future, Algorithm::HS256, SECRET)).await;
}
