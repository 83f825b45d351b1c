//! CORS: preflights answered before authentication and the rate limits,
//! and the headers a browser needs on every answer to an allowed origin.

use actix_web::http::Method;
use infusion_api::domain::access::Role;
use serde_json::json;

use crate::helpers::{patient_body, TestApp, TestResponse};

const FRONT_END: &str = "https://front.clinic.example";
const OTHER: &str = "https://elsewhere.example";

const EXPOSED: [&str; 7] = [
    "Location",
    "ETag",
    "x-request-id",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "Idempotent-Replayed",
];

async fn app_allowing(origins: &str) -> TestApp {
    TestApp::builder().setting("CORS_ALLOWED_ORIGINS", origins).build().await
}

/// A browser's preflight for a `method` request to `path` from `origin`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> TestResponse {
    app.request(Method::OPTIONS, path)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization,content-type,idempotency-key")
        .send()
        .await
}

/// The names a comma-separated header lists.
fn listed(res: &TestResponse, header: &str) -> Vec<String> {
    res.header(header)
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// What a script on `origin` needs to read this answer.
#[track_caller]
fn assert_readable_by(res: &TestResponse, origin: &str) {
    assert_eq!(res.header("access-control-allow-origin"), Some(origin), "{res:?}");
    let exposed = listed(res, "access-control-expose-headers");
    for name in EXPOSED {
        assert!(exposed.contains(&name.to_ascii_lowercase()), "{name} not exposed: {res:?}");
    }
    assert_eq!(res.header("access-control-allow-credentials"), None, "{res:?}");
    assert!(listed(res, "vary").contains(&"origin".to_owned()), "{res:?}");
}

/// No script on another origin may read this answer.
#[track_caller]
fn assert_not_readable(res: &TestResponse) {
    assert_eq!(res.header("access-control-allow-origin"), None, "{res:?}");
    assert_eq!(res.header("access-control-expose-headers"), None, "{res:?}");
    assert_eq!(res.header("access-control-allow-credentials"), None, "{res:?}");
}

#[actix_web::test]
async fn a_preflight_from_an_allowed_origin_is_answered_without_a_token() {
    let app = app_allowing(&format!("{FRONT_END}, http://10.0.0.7:3000")).await;
    for (path, method) in [
        ("/v1/patients", "POST"),
        ("/v1/patients/019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "PATCH"),
        ("/v1/appointments/019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b/cancel", "POST"),
        ("/v1/closures/019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "DELETE"),
    ] {
        let res = preflight(&app, path, FRONT_END, method).await;
        assert_eq!(res.status, 204, "{path}: {}", res.text);
        assert!(res.text.is_empty());
        assert_eq!(res.header("access-control-allow-origin"), Some(FRONT_END));
        assert_eq!(
            listed(&res, "access-control-allow-methods"),
            ["get", "head", "post", "put", "patch", "delete"]
        );
        assert_eq!(
            listed(&res, "access-control-allow-headers"),
            ["authorization", "content-type", "idempotency-key", "if-match", "if-none-match"]
        );
        assert_eq!(res.header("access-control-max-age"), Some("600"));
        assert_eq!(res.header("access-control-allow-credentials"), None);
        assert_eq!(listed(&res, "vary"), ["origin"]);
    }
    let other = preflight(&app, "/v1/rooms", "http://10.0.0.7:3000", "GET").await;
    assert_eq!(other.status, 204);
    assert_eq!(other.header("access-control-allow-origin"), Some("http://10.0.0.7:3000"));
    // A preflight is no request of the API's: nothing is audited.
    assert_eq!(app.count("audit_events"), 0);
}

#[actix_web::test]
async fn the_max_age_is_a_setting() {
    let app = TestApp::builder()
        .setting("CORS_ALLOWED_ORIGINS", FRONT_END)
        .setting("CORS_MAX_AGE_SECONDS", "60")
        .build()
        .await;
    let res = preflight(&app, "/v1/rooms", FRONT_END, "GET").await;
    assert_eq!((res.status, res.header("access-control-max-age")), (204, Some("60")));
}

#[actix_web::test]
async fn a_preflight_is_answered_before_the_rate_limits() {
    let app = TestApp::builder()
        .setting("CORS_ALLOWED_ORIGINS", FRONT_END)
        .setting("AUTH_FAILURE_LIMIT", "1")
        .build()
        .await;
    let client = "203.0.113.9:40000";
    let res = app.get("/v1/rooms").bearer("guessed.token").from(client).send().await;
    res.assert_problem(401, "unauthorized");
    let blocked = app.get("/v1/rooms").header("origin", FRONT_END).from(client).send().await;
    blocked.assert_problem(429, "too_many_failed_authentications");
    assert_readable_by(&blocked, FRONT_END);

    let res = app
        .request(Method::OPTIONS, "/v1/rooms")
        .header("origin", FRONT_END)
        .header("access-control-request-method", "GET")
        .from(client)
        .send()
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(res.header("access-control-allow-origin"), Some(FRONT_END));
}

#[actix_web::test]
async fn a_preflight_from_another_origin_is_refused() {
    let app = app_allowing(FRONT_END).await;
    for origin in
        [OTHER, "http://front.clinic.example", "https://front.clinic.example:8443", "null"]
    {
        let res = preflight(&app, "/v1/patients", origin, "POST").await;
        let body = res.assert_problem(403, "forbidden");
        assert!(body["detail"].as_str().unwrap().contains("CORS_ALLOWED_ORIGINS"), "{body}");
        assert_not_readable(&res);
        assert_eq!(res.header("access-control-allow-methods"), None);
        assert_eq!(listed(&res, "vary"), ["origin"]);
    }
}

#[actix_web::test]
async fn answers_to_an_allowed_origin_can_be_read_by_its_scripts() {
    let app = app_allowing(FRONT_END).await;
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .header("origin", FRONT_END)
        .json(&patient_body())
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_readable_by(&res, FRONT_END);
    let location = res.header("location").unwrap();

    let res = app.get(location).role(Role::Scheduler).header("origin", FRONT_END).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_readable_by(&res, FRONT_END);
    assert!(res.header("x-request-id").is_some());
    // HEAD, the probes and the document too.
    for path in ["/healthz", "/openapi.json"] {
        let res = app.get(path).header("origin", FRONT_END).send().await;
        assert_eq!(res.status, 200, "{path}");
        assert_readable_by(&res, FRONT_END);
    }
    let head = app
        .request(Method::HEAD, "/v1/rooms")
        .role(Role::Scheduler)
        .header("origin", FRONT_END)
        .send()
        .await;
    assert_eq!(head.status, 200);
    assert_readable_by(&head, FRONT_END);
}

#[actix_web::test]
async fn error_answers_to_an_allowed_origin_carry_the_headers_too() {
    let app = TestApp::builder()
        .setting("CORS_ALLOWED_ORIGINS", FRONT_END)
        .setting("RATE_LIMIT_PER_MINUTE", "2")
        .build()
        .await;
    let from_front_end =
        |method: Method, path: &str| app.request(method, path).header("origin", FRONT_END);
    // 401 without a token, 404 without a route, 405 (without a preflight,
    // an OPTIONS is a request like any other), 403 for the role, 422.
    let res = from_front_end(Method::GET, "/v1/patients").send().await;
    res.assert_problem(401, "unauthorized");
    assert_readable_by(&res, FRONT_END);
    let res = from_front_end(Method::GET, "/v1/nothing-here").send().await;
    res.assert_problem(404, "not_found");
    assert_readable_by(&res, FRONT_END);
    let res = from_front_end(Method::OPTIONS, "/v1/patients").send().await;
    res.assert_problem(405, "method_not_allowed");
    assert!(res.header("allow").is_some());
    assert_readable_by(&res, FRONT_END);
    let res = from_front_end(Method::POST, "/v1/rooms")
        .role(Role::Scheduler)
        .json(&json!({"name": "Room 9"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    assert_readable_by(&res, FRONT_END);

    // 429 once the caller's two requests of the minute are used up, with
    // the fields a client waits by.
    let admin = app.token_for(Role::Admin, "cors-admin");
    let res = from_front_end(Method::POST, "/v1/closures")
        .bearer(&admin)
        .json(&json!({"date": "2020-01-01", "reason": "Past"}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_readable_by(&res, FRONT_END);
    let res = from_front_end(Method::GET, "/v1/rooms").bearer(&admin).send().await;
    assert_eq!(res.status, 200);
    let res = from_front_end(Method::GET, "/v1/rooms").bearer(&admin).send().await;
    res.assert_problem(429, "too_many_requests");
    assert!(res.header("retry-after").is_some() && res.header("ratelimit").is_some());
    assert_readable_by(&res, FRONT_END);
}

#[actix_web::test]
async fn a_body_cut_off_by_the_timeout_is_answered_with_the_headers_too() {
    let app = TestApp::builder()
        .setting("CORS_ALLOWED_ORIGINS", FRONT_END)
        .setting("BODY_TIMEOUT_MS", "50")
        .build()
        .await;
    let res = app
        .post("/v1/patients")
        .role(Role::Scheduler)
        .header("origin", FRONT_END)
        .send_stalled(b"{\"given_name\": ")
        .await;
    res.assert_problem(408, "request_timeout");
    assert_readable_by(&res, FRONT_END);
}

#[actix_web::test]
async fn a_server_error_carries_the_headers_too() {
    let app = app_allowing(FRONT_END).await;
    assert!(app.execute("DROP TABLE closures"));
    let res = app.get("/v1/closures").role(Role::Admin).header("origin", FRONT_END).send().await;
    res.assert_problem(500, "internal_error");
    assert_readable_by(&res, FRONT_END);
}

#[actix_web::test]
async fn answers_to_other_origins_cannot_be_read_and_say_they_vary() {
    let app = app_allowing(FRONT_END).await;
    let res = app.get("/v1/rooms").role(Role::Scheduler).header("origin", OTHER).send().await;
    // The server answers as ever: the browser keeps the answer from the page.
    assert_eq!(res.status, 200, "{}", res.text);
    assert_not_readable(&res);
    assert_eq!(listed(&res, "vary"), ["origin"]);
    let res = app.get("/v1/patients").header("origin", OTHER).send().await;
    res.assert_problem(401, "unauthorized");
    assert_not_readable(&res);

    // Without an Origin (not a browser's cross-origin request), nothing
    // changes but Vary, which tells caches the answer depends on it.
    let res = app.get("/v1/rooms").role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200);
    assert_not_readable(&res);
    assert_eq!(listed(&res, "vary"), ["origin"]);
}

#[actix_web::test]
async fn without_allowed_origins_cors_is_off() {
    let app = TestApp::spawn().await;
    let res = preflight(&app, "/v1/patients", FRONT_END, "POST").await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET, HEAD, POST"));
    assert_not_readable(&res);
    assert_eq!(res.header("access-control-allow-methods"), None);
    let res = app.get("/v1/rooms").role(Role::Scheduler).header("origin", FRONT_END).send().await;
    assert_eq!(res.status, 200);
    assert_not_readable(&res);
    assert_eq!(res.header("vary"), None);
}

#[actix_web::test]
async fn development_allows_loopback_on_any_port_and_may_allow_any_origin() {
    let app = TestApp::builder().setting("APP_ENV", "development").build().await;
    for origin in ["http://localhost:5173", "http://127.0.0.1:8000", "http://localhost"] {
        let res = preflight(&app, "/v1/patients", origin, "POST").await;
        assert_eq!(res.status, 204, "{origin}: {}", res.text);
        assert_eq!(res.header("access-control-allow-origin"), Some(origin));
        let res = app.get("/v1/rooms").role(Role::Scheduler).header("origin", origin).send().await;
        assert_readable_by(&res, origin);
    }
    for origin in [FRONT_END, "https://localhost:5173", "http://localhost.example"] {
        let res = preflight(&app, "/v1/patients", origin, "POST").await;
        res.assert_problem(403, "forbidden");
    }

    let app = TestApp::builder()
        .setting("APP_ENV", "development")
        .setting("CORS_ALLOWED_ORIGINS", "*")
        .build()
        .await;
    let res = preflight(&app, "/v1/patients", OTHER, "POST").await;
    assert_eq!((res.status, res.header("access-control-allow-origin")), (204, Some(OTHER)));
    preflight(&app, "/v1/patients", "null", "POST").await.assert_problem(403, "forbidden");
}
