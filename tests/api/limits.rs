//! Rate limits: requests per caller per minute, with the IETF `RateLimit`
//! fields, and failed authentications per client address.

use infusion_api::domain::access::Role;
use serde_json::Value;

use crate::helpers::{TestApp, TestResponse};

/// `Retry-After` as a number of seconds, asserted to be within a minute.
#[track_caller]
fn retry_after(res: &TestResponse) -> u64 {
    let seconds: u64 = res.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&seconds), "{seconds}");
    seconds
}

#[actix_web::test]
async fn a_caller_past_its_requests_per_minute_is_refused_with_429_and_the_ratelimit_fields() {
    let app = TestApp::builder().setting("RATE_LIMIT_PER_MINUTE", "3").build().await;
    let scheduler = app.token_for(Role::Scheduler, "s-1");
    for remaining in [2, 1, 0] {
        let res = app.get("/v1/rooms").bearer(&scheduler).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.header("ratelimit-policy"), Some("\"caller\";q=3;w=60"));
        let current = res.header("ratelimit").unwrap();
        assert!(current.starts_with(&format!("\"caller\";r={remaining};t=")), "{current}");
    }

    let res = app.get("/v1/rooms").bearer(&scheduler).send().await;
    let body = res.assert_problem(429, "too_many_requests");
    let wait = retry_after(&res);
    assert_eq!(
        body["detail"],
        format!("this caller's requests per minute are used up; retry in {wait} s")
    );
    assert_eq!(res.header("ratelimit-policy"), Some("\"caller\";q=3;w=60"));
    assert_eq!(res.header("ratelimit"), Some(format!("\"caller\";r=0;t={wait}").as_str()));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.header("x-request-id").is_some());
    // A write is refused before its body is read, and stores nothing.
    let res = app
        .post("/v1/rooms")
        .bearer(&scheduler)
        .json(&serde_json::json!({"name": "X"}))
        .send()
        .await;
    res.assert_problem(429, "too_many_requests");
    assert_eq!(app.count("rooms"), 4);

    // Each caller (role and subject) has its own quota; probes have none.
    let other = app.get("/v1/rooms").bearer(&app.token_for(Role::Scheduler, "s-2")).send().await;
    assert_eq!(other.status, 200);
    let same_subject = app.get("/v1/rooms").bearer(&app.token_for(Role::Admin, "s-1")).send().await;
    assert_eq!(same_subject.status, 200);
    let health = app.get("/healthz").send().await;
    assert_eq!((health.status, health.header("ratelimit")), (200, None));
    // A request without a valid token is no caller's: it is not counted.
    let res = app.get("/v1/rooms").bearer("not-a-token").send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(res.header("ratelimit"), None);
}

#[actix_web::test]
async fn repeated_failed_authentication_from_one_address_is_throttled() {
    let app = TestApp::builder()
        .setting("AUTH_FAILURE_LIMIT", "3")
        .setting("AUTH_FAILURE_WINDOW_SECONDS", "60")
        .build()
        .await;
    let admin = app.token_for(Role::Admin, "a-1");
    let attacker = "203.0.113.5:40000";
    for _ in 0..3 {
        let res = app.get("/v1/rooms").bearer("guessed.token.value").from(attacker).send().await;
        res.assert_problem(401, "unauthorized");
    }
    // From then on every /v1 request from that address is refused, a valid
    // token's too, from any port, until the window ends.
    for res in [
        app.get("/v1/rooms").bearer("guessed.token.value").from(attacker).send().await,
        app.get("/v1/rooms").bearer(&admin).from("203.0.113.5:40001").send().await,
    ] {
        let body = res.assert_problem(429, "too_many_failed_authentications");
        let wait = retry_after(&res);
        assert_eq!(
            body["detail"],
            format!("too many failed authentications from this address; retry in {wait} s")
        );
        assert_eq!(res.header("ratelimit"), None);
    }
    // Other addresses are not affected; the probes are not limited.
    let res = app.get("/v1/rooms").bearer(&admin).from("198.51.100.1:5000").send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.get("/healthz").from(attacker).send().await.status, 200);

    // Requests without credentials are not guesses: they are not counted.
    let open = "198.51.100.2:5000";
    for _ in 0..5 {
        app.get("/v1/rooms").from(open).send().await.assert_problem(401, "unauthorized");
    }
    assert_eq!(app.get("/v1/rooms").bearer(&admin).from(open).send().await.status, 200);
}

#[actix_web::test]
async fn an_ipv6_client_is_counted_by_its_64_network() {
    let app = TestApp::builder().setting("AUTH_FAILURE_LIMIT", "2").build().await;
    for host in ["[2001:db8:1:2::a]:1", "[2001:db8:1:2::b]:1"] {
        app.get("/v1/rooms")
            .bearer("bad")
            .from(host)
            .send()
            .await
            .assert_problem(401, "unauthorized");
    }
    let res = app.get("/v1/rooms").bearer("bad").from("[2001:db8:1:2:ffff::1]:1").send().await;
    res.assert_problem(429, "too_many_failed_authentications");
    let res = app.get("/v1/rooms").bearer("bad").from("[2001:db8:1:3::a]:1").send().await;
    res.assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    let app = TestApp::builder()
        .setting("AUTH_FAILURE_LIMIT", "2")
        .setting("TRUSTED_PROXIES", "10.0.0.1")
        .build()
        .await;
    let admin = app.token_for(Role::Admin, "a-1");
    let proxy = "10.0.0.1:443";
    for _ in 0..2 {
        let res = app
            .get("/v1/rooms")
            .bearer("bad")
            .from(proxy)
            .header("x-forwarded-for", "192.0.2.99, 198.51.100.7")
            .send()
            .await;
        res.assert_problem(401, "unauthorized");
    }
    // The client the proxy named is blocked; others behind it are not.
    let through = |client: &'static str| {
        app.get("/v1/rooms").bearer(&admin).from(proxy).header("x-forwarded-for", client)
    };
    through("198.51.100.7").send().await.assert_problem(429, "too_many_failed_authentications");
    assert_eq!(through("198.51.100.8").send().await.status, 200);

    // From an untrusted peer the header is ignored: changing it dodges nothing.
    let peer = "192.0.2.50:1234";
    for client in ["198.51.100.20", "198.51.100.21"] {
        let res = app
            .get("/v1/rooms")
            .bearer("bad")
            .from(peer)
            .header("x-forwarded-for", client)
            .send()
            .await;
        res.assert_problem(401, "unauthorized");
    }
    let res = app
        .get("/v1/rooms")
        .bearer(&admin)
        .from(peer)
        .header("x-forwarded-for", "198.51.100.22")
        .send()
        .await;
    res.assert_problem(429, "too_many_failed_authentications");
}

#[actix_web::test]
async fn limits_of_zero_are_off() {
    let app = TestApp::builder()
        .setting("RATE_LIMIT_PER_MINUTE", "0")
        .setting("AUTH_FAILURE_LIMIT", "0")
        .build()
        .await;
    let admin = app.token_for(Role::Admin, "a-1");
    for _ in 0..30 {
        let res = app.get("/v1/rooms").bearer("bad").from("203.0.113.9:1").send().await;
        res.assert_problem(401, "unauthorized");
    }
    let res = app.get("/v1/rooms").bearer(&admin).from("203.0.113.9:1").send().await;
    assert_eq!(res.status, 200);
    assert_eq!((res.header("ratelimit"), res.header("ratelimit-policy")), (None, None));
}

/// Every `/v1` operation, and the token endpoint (its failed client
/// authentications count), documents 429 with the headers a client paces
/// itself by; every operation with a body documents 408.
#[actix_web::test]
async fn the_contract_documents_429_and_408() {
    let document: Value = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            if path.starts_with("/fhir/") {
                // FHIR's: an OperationOutcome, with the same fields.
                let headers = &responses["429"]["headers"];
                for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
                    assert!(headers[name].is_object(), "{method} {path}: {name}");
                }
                assert!(responses["429"]["content"]["application/fhir+json"].is_object());
            } else if path.starts_with("/v1/") || path == "/oauth/token" {
                operations += 1;
                let headers = &responses["429"]["headers"];
                for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
                    assert!(headers[name].is_object(), "{method} {path}: {name}");
                }
                let examples = responses["429"]["content"]["application/problem+json"]["examples"]
                    .as_object()
                    .unwrap();
                assert!(examples.contains_key("too_many_requests"), "{method} {path}");
                assert!(
                    examples.contains_key("too_many_failed_authentications"),
                    "{method} {path}"
                );
            } else {
                assert!(responses.get("429").is_none(), "{method} {path}");
            }
            if operation.get("requestBody").is_some() {
                assert!(responses["408"].is_object(), "{method} {path}");
            }
        }
    }
    assert!(operations > 30);
}
