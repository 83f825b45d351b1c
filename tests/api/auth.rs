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

/// `claims()` with `iat` and `exp` set, seconds from now.
fn issued(iat: i64, exp: i64) -> Value {
    let now = Utc::now().timestamp();
    let mut c = claims();
    c["iat"] = json!(now + iat);
    c["exp"] = json!(now + exp);
    c
}

async fn assert_refused_saying(app: &TestApp, token: &str, detail: &str) {
    let body = assert_refused(app, token).await;
    assert_eq!(body["detail"], detail, "{body}");
}

async fn assert_accepted(app: &TestApp, token: &str) {
    let res = app.get("/v1/patients").bearer(token).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
}

#[actix_web::test]
async fn a_token_without_iat_is_401() {
    let app = TestApp::spawn().await;
    let token = sign(&without_claim("iat"), Algorithm::HS256, SECRET);
    assert_refused_saying(&app, &token, "the token has no `iat` (issued at)").await;
    // Sent again, it is refused again: nothing refused is remembered.
    assert_refused(&app, &token).await;
}

#[actix_web::test]
async fn a_token_issued_in_the_future_is_401() {
    let app = TestApp::spawn().await;
    let token = sign(&issued(3600, 3600 + 600), Algorithm::HS256, SECRET);
    assert_refused_saying(&app, &token, "the token's `iat` is in the future").await;
    // Within the 30 seconds of clock skew, it is taken.
    assert_accepted(&app, &sign(&issued(20, 600), Algorithm::HS256, SECRET)).await;
}

#[actix_web::test]
async fn a_token_living_longer_than_the_maximum_is_401() {
    let app = TestApp::spawn().await;
    let detail = "the token lives longer (`exp` - `iat`) than JWT_MAX_LIFETIME_MINUTES allows";
    // The end of year 9999, as some issuers write "never".
    let mut forever = claims();
    forever["exp"] = json!(253_402_300_799_u64);
    assert_refused_saying(&app, &sign(&forever, Algorithm::HS256, SECRET), detail).await;
    // The default maximum is 12 hours: a second more is refused, 12 hours
    // exactly (the token `make run` prints) is taken.
    let twelve_hours = 12 * 3600;
    let over = sign(&issued(-60, twelve_hours - 59), Algorithm::HS256, SECRET);
    assert_refused_saying(&app, &over, detail).await;
    assert_accepted(&app, &sign(&issued(-60, twelve_hours - 60), Algorithm::HS256, SECRET)).await;
}

#[actix_web::test]
async fn the_maximum_lifetime_follows_its_setting() {
    let app = TestApp::builder().setting("JWT_MAX_LIFETIME_MINUTES", "30").build().await;
    assert_refused(&app, &sign(&issued(0, 31 * 60), Algorithm::HS256, SECRET)).await;
    assert_accepted(&app, &sign(&issued(0, 30 * 60), Algorithm::HS256, SECRET)).await;
}

#[actix_web::test]
async fn a_crit_header_is_401() {
    let app = TestApp::spawn().await;
    let detail = "the token's `crit` header names extensions this server does not understand";
    // RFC 7515 §4.1.11: a recipient that does not understand a listed
    // extension must refuse the token; this server understands none.
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "crit": ["urn:example:policy"], "urn:example:policy": "x"}),
        json!({"alg": "HS256", "typ": "JWT", "crit": ["b64"], "b64": false}),
        json!({"alg": "HS256", "typ": "JWT", "crit": []}),
    ] {
        let token = forge(&header, &claims(), SECRET.as_bytes());
        assert_refused_saying(&app, &token, detail).await;
    }
    let token = forge(&json!({"alg": "HS256", "crit": "exp"}), &claims(), SECRET.as_bytes());
    assert_refused(&app, &token).await;
}

#[actix_web::test]
async fn a_typ_other_than_a_jwt_is_401() {
    let app = TestApp::spawn().await;
    for typ in ["JOSE", "JOSE+JSON", "application/json", "dpop+jwt", "JWT ", ""] {
        let token = forge(&json!({"alg": "HS256", "typ": typ}), &claims(), SECRET.as_bytes());
        assert_refused_saying(&app, &token, "the token's `typ` must be `JWT` or `at+jwt`").await;
    }
    let token = forge(&json!({"alg": "HS256", "typ": 1}), &claims(), SECRET.as_bytes());
    assert_refused(&app, &token).await;
    // Media types are case-insensitive and may leave out `application/`;
    // a token without `typ` is taken as well.
    for typ in ["JWT", "jwt", "at+jwt", "AT+JWT", "application/jwt", "application/at+jwt"] {
        let token = forge(&json!({"alg": "HS256", "typ": typ}), &claims(), SECRET.as_bytes());
        assert_accepted(&app, &token).await;
    }
    assert_accepted(&app, &forge(&json!({"alg": "HS256"}), &claims(), SECRET.as_bytes())).await;
}

#[actix_web::test]
async fn an_iss_that_is_not_a_string_is_401() {
    let app = TestApp::spawn().await;
    for iss in [json!(5), json!([ISSUER]), json!({"x": 1}), json!(null), json!(true)] {
        let token = sign(&with_claim("iss", iss.clone()), Algorithm::HS256, SECRET);
        assert_refused(&app, &token).await;
    }
}

#[actix_web::test]
async fn an_aud_that_is_not_a_string_or_strings_is_401() {
    let app = TestApp::spawn().await;
    for aud in [json!({"x": 1}), json!(5), json!([5]), json!([AUDIENCE, 5]), json!(null), json!([])]
    {
        let token = sign(&with_claim("aud", aud.clone()), Algorithm::HS256, SECRET);
        assert_refused(&app, &token).await;
    }
    // An array of strings that names this API is an audience (RFC 7519 §4.1.3).
    let token =
        sign(&with_claim("aud", json!(["another-api", AUDIENCE])), Algorithm::HS256, SECRET);
    assert_accepted(&app, &token).await;
}

#[test]
fn the_contract_names_every_required_claim() {
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let scheme = spec["components"]["securitySchemes"]["bearer"]["description"].as_str().unwrap();
    let info = spec["info"]["description"].as_str().unwrap();
    for claim in ["sub", "role", "iss", "aud", "exp", "iat"] {
        let named = format!("`{claim}`");
        assert!(scheme.contains(&named), "the bearer scheme leaves out {named}: {scheme}");
        assert!(info.contains(&named), "the description leaves out {named}: {info}");
    }
    for rule in ["JWT_MAX_LIFETIME_MINUTES", "`crit`", "`typ`"] {
        assert!(scheme.contains(rule), "the bearer scheme does not state {rule}: {scheme}");
    }
}
