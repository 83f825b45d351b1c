//! Security headers per kind of answer, Swagger UI's content security
//! policy, HSTS behind TLS, and request bodies that arrive too slowly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use actix_web::HttpServer;
use infusion_api::domain::access::Role;
use infusion_api::http::security::{API_POLICY, HSTS, SWAGGER_UI_POLICY};
use serde_json::json;

use crate::helpers::{TestApp, TestResponse};

/// Asserts the headers every answer carries, and whether it may be stored.
#[track_caller]
fn assert_hardened(res: &TestResponse, policy: &str, stored: bool) {
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"), "{:?}", res.headers);
    assert_eq!(res.header("x-frame-options"), Some("DENY"), "{:?}", res.headers);
    assert_eq!(res.header("content-security-policy"), Some(policy), "{:?}", res.headers);
    assert!(policy.contains("frame-ancestors 'none'"));
    let cache = res.header("cache-control");
    if stored {
        assert_eq!(cache, None, "{:?}", res.headers);
    } else {
        assert_eq!(cache, Some("no-store"), "{:?}", res.headers);
    }
    assert_eq!(res.header("strict-transport-security"), None, "HSTS only behind TLS");
}

#[actix_web::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;

    let json = app.get("/v1/rooms").role(Role::Admin).send().await;
    assert_eq!(json.status, 200, "{}", json.text);
    assert_hardened(&json, API_POLICY, false);

    let created =
        app.post("/v1/rooms").role(Role::Admin).json(&json!({"name": "Room 9"})).send().await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_hardened(&created, API_POLICY, false);

    let unauthorized = app.get("/v1/rooms").send().await;
    unauthorized.assert_problem(401, "unauthorized");
    assert_hardened(&unauthorized, API_POLICY, false);
    let invalid = app.post("/v1/rooms").role(Role::Admin).json(&json!({})).send().await;
    invalid.assert_problem(422, "validation_failed");
    assert_hardened(&invalid, API_POLICY, false);
    let unknown = app.get("/v1/nothing-here").role(Role::Admin).send().await;
    unknown.assert_problem(404, "not_found");
    assert_hardened(&unknown, API_POLICY, false);

    let health = app.get("/healthz").send().await;
    assert_eq!(health.status, 200);
    assert_hardened(&health, API_POLICY, false);

    let ui = app.get("/swagger-ui/").send().await;
    assert_eq!(ui.status, 200);
    assert_hardened(&ui, SWAGGER_UI_POLICY, true);
    let script = app.get("/swagger-ui/swagger-ui-bundle.js").send().await;
    assert_eq!(script.status, 200);
    assert_hardened(&script, SWAGGER_UI_POLICY, true);
    let document = app.get("/openapi.json").send().await;
    assert_eq!(document.status, 200);
    assert_hardened(&document, API_POLICY, true);
}

/// What Swagger UI's policy allows, checked against the files it serves:
/// scripts and styles from files only, the one inline `<style>` by its
/// hash, and no validator badge (an image from swagger.io).
#[actix_web::test]
async fn swagger_ui_needs_nothing_its_policy_refuses() {
    let app = TestApp::spawn().await;
    let index = app.get("/swagger-ui/").send().await.text;
    let scripts: Vec<&str> = index.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "{index}");
    for script in scripts {
        assert!(script.trim_start().starts_with("src=\"./"), "an inline script: {script}");
    }
    assert!(!index.contains("<style") && !index.contains("style="), "inline styles: {index}");

    // The standalone preset renders its logo with this one `<style>`: its
    // SHA-256 is the hash in the policy (a newer swagger-ui must be checked
    // again, in a browser).
    let preset = app.get("/swagger-ui/swagger-ui-standalone-preset.js").send().await.text;
    assert_eq!(preset.matches("createElement(\"style\"").count(), 1);
    assert!(preset.contains(
        "createElement(\"style\",null,\".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}\")"
    ));
    assert!(SWAGGER_UI_POLICY.contains("'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"));
    for directive in ["script-src 'self';", "img-src 'self' data:;", "connect-src 'self';"] {
        assert!(SWAGGER_UI_POLICY.contains(directive), "{directive}");
    }

    let initializer = app.get("/swagger-ui/swagger-initializer.js").send().await.text;
    assert!(initializer.contains("\"validatorUrl\": \"none\""), "{initializer}");
}

#[actix_web::test]
async fn behind_tls_every_answer_asks_for_https() {
    let app = TestApp::builder().setting("TLS_TERMINATED", "true").build().await;
    for res in [
        app.get("/v1/rooms").role(Role::Admin).send().await,
        app.get("/v1/rooms").send().await,
        app.get("/healthz").send().await,
        app.get("/swagger-ui/").send().await,
    ] {
        assert_eq!(res.header("strict-transport-security"), Some(HSTS), "{:?}", res.headers);
        assert_eq!(HSTS, "max-age=31536000");
    }
}

#[actix_web::test]
async fn a_body_that_stops_arriving_is_cut_off_with_408() {
    let app = TestApp::builder().setting("BODY_TIMEOUT_MS", "200").build().await;
    let started = Instant::now();
    let stalled = app.post("/v1/rooms").role(Role::Admin).send_stalled(b"{\"name\": \"Ro");
    let res = actix_web::rt::time::timeout(Duration::from_secs(5), stalled)
        .await
        .expect("a stalled body is answered, not waited for");
    let body = res.assert_problem(408, "request_timeout");
    assert_eq!(body["detail"], "the whole body must arrive within 200 ms");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(app.count("rooms"), 4, "nothing stored");

    // A body that arrives in time is read as before.
    let res = app.post("/v1/rooms").role(Role::Admin).json(&json!({"name": "Room 9"})).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
}

/// Over a real connection: a body trickled a byte at a time, with a
/// declared length or chunked, is answered 408 once `BODY_TIMEOUT_MS` has
/// passed, and the server closes the connection (actix would otherwise
/// drain a chunked body for as long as the client sends it).
#[actix_web::test]
async fn a_trickled_body_is_answered_408_and_its_connection_closed() {
    let app = TestApp::builder().setting("BODY_TIMEOUT_MS", "300").build().await;
    let state = app.state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || infusion_api::http::app(state.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let token = app.token_for(Role::Admin, "trickler");

    for framing in ["content-length: 4096", "transfer-encoding: chunked"] {
        let (token, framing) = (token.clone(), framing.to_owned());
        let outcome = actix_web::rt::task::spawn_blocking(move || trickle(port, &token, &framing))
            .await
            .unwrap();
        let (head, closed_after) = outcome;
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(head.contains("request_timeout"), "{head}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
        let closed_after = closed_after.expect("the server closes the connection");
        assert!(closed_after < Duration::from_secs(4), "closed after {closed_after:?}");
    }
    handle.stop(false).await;
}

/// Sends a POST head with `framing`, then one byte of body every 50 ms for
/// up to 6 s; what the server answered, and when it closed the connection.
fn trickle(port: u16, token: &str, framing: &str) -> (String, Option<Duration>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunked = framing.contains("chunked");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(6) {
        let byte: &[u8] = if chunked { b"1\r\n{\r\n" } else { b"{" };
        if stream.write_all(byte).is_err() {
            return (String::from_utf8_lossy(&answer).into_owned(), Some(started.elapsed()));
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                return (String::from_utf8_lossy(&answer).into_owned(), Some(started.elapsed()))
            }
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return (String::from_utf8_lossy(&answer).into_owned(), Some(started.elapsed()))
            }
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), None)
}
