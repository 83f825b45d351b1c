//! Every bad request is a problem document with a stable code, never a 500,
//! and a refused request stores nothing.

use actix_web::http::Method;
use infusion_api::domain::access::Role;
use serde_json::json;

use crate::helpers::{patient_body, with, TestApp};

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let trailing = format!("{} trailing", patient_body());
    for body in ["{", "{\"given_name\": }", "not json", "", trailing.as_str()] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .raw("application/json", body)
            .send()
            .await;
        res.assert_problem(400, "malformed_request");
    }
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let body = patient_body().to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .raw(content_type, body.clone())
            .send()
            .await;
        res.assert_problem(415, "unsupported_media_type");
    }
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .header("content-length", &body.len().to_string())
        .send()
        .await;
    res.assert_problem(415, "unsupported_media_type");
    // A charset parameter is fine.
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .raw("application/json; charset=utf-8", body)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn unknown_fields_are_422_naming_them() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"ssn": "123-45-6789"})))
        .send()
        .await;
    res.assert_invalid_fields(&["ssn"]);
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"indications": [{"code": "migraine", "severity": 9}]})))
        .send()
        .await;
    res.assert_invalid_fields(&["indications[0].severity"]);
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn wrong_types_and_unknown_codes_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"given_name": 42}), "given_name"),
        (json!({"date_of_birth": "10/12/1985"}), "date_of_birth"),
        (json!({"date_of_birth": "1985-02-30"}), "date_of_birth"),
        (json!({"in_mental_health_treatment": "yes"}), "in_mental_health_treatment"),
        (json!({"indications": [{"code": "insomnia"}]}), "indications[0].code"),
        (
            json!({"indications": [{"code": "chronic_pain", "subtype": "back"}]}),
            "indications[0].subtype",
        ),
        (json!({"indications": "migraine"}), "indications"),
    ];
    for (change, field) in cases {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .json(&with(patient_body(), change))
            .send()
            .await;
        res.assert_invalid_fields(&[field]);
    }
    let res = app.post("/v1/patients").role(Role::Clinician).json(&json!([])).send().await;
    res.assert_invalid_fields(&["body"]);
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::builder().setting("MAX_BODY_BYTES", "2048").build().await;
    let huge = with(patient_body(), json!({"given_name": "x".repeat(4096)}));
    let res = app.post("/v1/patients").role(Role::Clinician).json(&huge).send().await;
    res.assert_problem(413, "payload_too_large");
    // A body longer than its declared length is still cut at the limit.
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .raw("application/json", huge.to_string())
        .header("content-length", "10")
        .send()
        .await;
    res.assert_problem(413, "payload_too_large");
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    let res = app.get("/v1/nothing-here").role(Role::Admin).send().await;
    res.assert_problem(404, "not_found");
    let res = app.get("/v2/patients").send().await;
    res.assert_problem(404, "not_found");

    let res =
        app.request(actix_web::http::Method::DELETE, "/v1/patients").role(Role::Admin).send().await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET, HEAD, POST"));
    let res = app
        .request(actix_web::http::Method::PUT, "/v1/patients/abc")
        .role(Role::Admin)
        .send()
        .await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET, HEAD, PATCH"));
    let res = app.post("/healthz").send().await;
    res.assert_problem(405, "method_not_allowed");
}

#[actix_web::test]
async fn bad_query_parameters_are_422_naming_them() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v1/patients?limit=0", "limit"),
        ("/v1/patients?limit=201", "limit"),
        ("/v1/patients?limit=ten", "limit"),
        ("/v1/patients?limit=-1", "limit"),
        ("/v1/patients?cursor=%%%", "cursor"),
        ("/v1/patients?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/v1/patients?lmit=5", "lmit"),
    ];
    for (path, field) in cases {
        let res = app.get(path).role(Role::Scheduler).send().await;
        res.assert_invalid_fields(&[field]);
    }
    let res =
        app.get(&format!("/v1/patients?q={}", "a".repeat(201))).role(Role::Scheduler).send().await;
    res.assert_invalid_fields(&["q"]);
}

#[actix_web::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let ok = app.get("/healthz").send().await;
    let refused = app.get("/v1/patients").send().await;
    let a = ok.header("x-request-id").expect("request id");
    let b = refused.header("x-request-id").expect("request id");
    assert_ne!(a, b);
    assert!(uuid::Uuid::parse_str(a).is_ok());
}

/// Every table a request could write to.
const TABLES: [&str; 12] = [
    "patients",
    "patient_indications",
    "appointments",
    "rooms",
    "closures",
    "referrals",
    "treatment_attestations",
    "screenings",
    "screening_medications",
    "prescriber_consults",
    "courses",
    "protocols",
];

/// Every documented operation answers junk without a 500, every error is a
/// problem document, and nothing is stored.
#[actix_web::test]
async fn no_operation_answers_junk_with_a_500() {
    let app = TestApp::at_clinic_now().await;
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let patient = app.ready_patient().await;
    let before: Vec<i64> = TABLES.iter().map(|t| app.count(t)).collect();
    let ids = [uuid::Uuid::now_v7().to_string(), patient.clone(), "%00".into(), "x".repeat(300)];
    let bodies: [(&str, &[u8]); 6] = [
        ("application/json", b"{"),
        ("application/json", b"[]"),
        ("application/json", b"{\"x\": 1}"),
        ("application/json", b"null"),
        ("application/json", b"{\"date\": \"2026-02-30\", \"session\": 7, \"reason\": null}"),
        ("text/plain", b"hello"),
    ];
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method =
                actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for id in &ids {
                let uri = format!(
                    "{}?limit=abc&from=-5000-01-01",
                    path.replace("{id}", id).replace("{code}", id)
                );
                for (content_type, body) in bodies {
                    let res = app
                        .request(method.clone(), &uri)
                        .role(Role::Admin)
                        .raw(content_type, body.to_vec())
                        .send()
                        .await;
                    assert!(
                        res.status < 500,
                        "{method} {uri} {}: {} {}",
                        String::from_utf8_lossy(body),
                        res.status,
                        res.text
                    );
                    if res.status >= 400 {
                        // FHIR's errors are OperationOutcomes.
                        let expected = if path.starts_with("/fhir/") {
                            "application/fhir+json"
                        } else {
                            "application/problem+json"
                        };
                        assert_eq!(res.header("content-type"), Some(expected), "{method} {uri}");
                    }
                }
            }
        }
    }
    let after: Vec<i64> = TABLES.iter().map(|t| app.count(t)).collect();
    assert_eq!(before, after);
}

/// Dates that chrono parses but no database column holds are refused as
/// fields, on every path that takes a date.
#[actix_web::test]
async fn out_of_range_dates_are_422() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    for path in [
        "/v1/appointments?from=-5000-01-01",
        "/v1/closures?to=+100000-01-01",
        "/v1/availability?from=-5000-01-01&to=-5000-01-02",
    ] {
        let res = app.get(path).role(Role::Admin).send().await;
        assert_eq!(res.status, 422, "{path}: {}", res.text);
        res.assert_problem(422, "validation_failed");
    }
    let res = app
        .post("/v1/appointments")
        .role(Role::Scheduler)
        .json(&json!({"patient_id": patient, "date": "+100000-01-01", "session": "morning"}))
        .send()
        .await;
    res.assert_invalid_fields(&["date"]);
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"date_of_birth": "1899-12-31"})))
        .send()
        .await;
    res.assert_invalid_fields(&["date_of_birth"]);
    let res = app
        .post(&format!("/v1/patients/{patient}/referrals"))
        .role(Role::Scheduler)
        .json(&json!({"kind": "pain_management", "provider": {"name": "A", "practice": "B", "phone": "5550102030"},
                      "received_on": "-0001-01-01", "document_reference": "x"}))
        .send()
        .await;
    res.assert_invalid_fields(&["received_on"]);
}

/// OWASP API4 (unrestricted resource consumption): every list caps its page
/// size, every body its length, and date ranges their span, with a 4xx.
#[actix_web::test]
async fn every_list_page_and_body_is_bounded() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(70 * 1024));
    let mut lists = 0;
    let mut bodies = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", &patient).replace("{code}", "pain-5-day");
        for (method, op) in item.as_object().unwrap() {
            let takes_limit = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "limit"));
            if takes_limit {
                lists += 1;
                let res =
                    app.get(&format!("{concrete}?limit=100000")).role(Role::Admin).send().await;
                res.assert_invalid_fields(&["limit"]);
            }
            // The token endpoint reads a form, and answers a JSON body as
            // OAuth's `invalid_request` (its own tests cover its limits).
            if op.get("requestBody").is_some() && path.starts_with("/v1/") {
                bodies += 1;
                let method =
                    actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let res = app
                    .request(method, &concrete)
                    .role(Role::Admin)
                    .raw("application/json", huge.clone())
                    .send()
                    .await;
                res.assert_problem(413, "payload_too_large");
            }
        }
    }
    assert!(lists >= 9 && bodies >= 15, "{lists} lists, {bodies} bodies");
    let res =
        app.get("/v1/availability?from=2026-12-02&to=2027-12-02").role(Role::Admin).send().await;
    res.assert_invalid_fields(&["to"]);
}

/// The headers a test compares between two answers: all but the request id
/// and `RateLimit`, whose remaining count falls with each request.
fn comparable(headers: &std::collections::HashMap<String, String>) -> Vec<(String, String)> {
    let mut kept: Vec<_> = headers
        .iter()
        .filter(|(k, _)| *k != "x-request-id" && *k != "ratelimit")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kept.sort();
    kept
}

/// HEAD is GET without the body (RFC 9110 §9.3.2): on every GET route of
/// the contract, with GET's status and headers.
#[actix_web::test]
async fn head_is_answered_on_every_get_route() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    // The billing profile set: the superbill answers 200, not 409.
    app.billing_ready().await;
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let mut paths = vec!["/openapi.json".to_owned(), "/swagger-ui/".to_owned()];
    for (path, item) in spec["paths"].as_object().unwrap() {
        if item.get("get").is_some() {
            paths.push(path.replace("{id}", &patient).replace("{code}", "pain-5-day"));
        }
    }
    assert!(paths.len() > 20, "{paths:?}");
    let mut statuses = std::collections::BTreeSet::new();
    for path in &paths {
        let get = app.get(path).role(Role::Admin).send().await;
        let head = app.request(Method::HEAD, path).role(Role::Admin).send().await;
        assert_eq!(head.status, get.status, "HEAD {path}: {}", head.text);
        let (mut head_headers, mut get_headers) =
            (comparable(&head.headers), comparable(&get.headers));
        if path.ends_with("/access-log") || path.ends_with("/audit-events") {
            // Each request adds to the trail it reads: the second answer's
            // content, and so its `ETag`, differs from the first's.
            head_headers.retain(|(k, _)| k != "etag");
            get_headers.retain(|(k, _)| k != "etag");
        }
        assert_eq!(head_headers, get_headers, "HEAD {path}");
        statuses.insert(get.status);
    }
    // Found and not found (an unknown referral, screening, course) alike.
    assert_eq!(statuses, [200, 404].into(), "{paths:?}");

    // Without a token, 401 as for GET; an unknown route is 404.
    let res = app.request(Method::HEAD, "/v1/patients").send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    let res = app.request(Method::HEAD, "/v1/nothing-here").role(Role::Admin).send().await;
    res.assert_problem(404, "not_found");
    // A path without GET has no HEAD either.
    let cancel = format!("/v1/appointments/{patient}/cancel");
    let res = app.request(Method::HEAD, &cancel).role(Role::Admin).send().await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("POST"));
}

/// One HTTP/1.1 exchange with the App served on a real socket, as bytes:
/// what a client sees, after actix's HTTP/1 layer.
async fn over_the_wire(app: &TestApp, request: String) -> Vec<u8> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let state = app.state.clone();
    let server = actix_web::HttpServer::new(move || infusion_api::http::app(state.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let answer = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    handle.stop(false).await;
    answer
}

/// The status line, the headers but `date` and `x-request-id`, and the body
/// of a raw HTTP/1.1 answer.
fn split_answer(answer: &[u8]) -> (String, Vec<String>, Vec<u8>) {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let mut headers: Vec<String> = lines
        .map(str::to_ascii_lowercase)
        .filter(|l| {
            !["date:", "x-request-id:", "ratelimit:"].iter().any(|name| l.starts_with(name))
        })
        .collect();
    headers.sort();
    (status, headers, answer[end + 4..].to_vec())
}

#[actix_web::test]
async fn head_sends_get_headers_without_the_body_over_the_wire() {
    let app = TestApp::spawn().await;
    app.create_patient(patient_body()).await;
    let token = app.token_for(Role::Admin, "test-admin");
    for (path, status) in [
        ("/v1/patients", "200"),
        ("/healthz", "200"),
        ("/v1/patients/019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", "404"),
    ] {
        let request = |method: &str| {
            format!("{method} {path} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n")
        };
        let (get_status, get_headers, get_body) =
            split_answer(&over_the_wire(&app, request("GET")).await);
        let (head_status, head_headers, head_body) =
            split_answer(&over_the_wire(&app, request("HEAD")).await);
        assert!(get_status.contains(status), "{get_status}");
        assert!(!get_body.is_empty());
        assert_eq!(head_status, get_status, "{path}");
        // Content-Length included: it is GET's.
        assert_eq!(head_headers, get_headers, "{path}");
        assert!(head_headers.iter().any(|h| h.starts_with("content-length: ")), "{head_headers:?}");
        assert!(head_body.is_empty(), "{path}: {}", String::from_utf8_lossy(&head_body));
    }
}

/// Only `application/json`, with at most a UTF-8 `charset`, is a JSON body
/// (RFC 8259 §8.1: JSON exchanged between systems is UTF-8).
#[actix_web::test]
async fn only_application_json_is_a_json_body() {
    let app = TestApp::spawn().await;
    let body = patient_body().to_string();
    for content_type in [
        "application/evil+json",
        "application/problem+json",
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json; foo=bar",
        "application/json; charset=utf-8; foo=bar",
        "application/json; charset",
        "application/json, text/plain",
    ] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .raw(content_type, body.clone())
            .send()
            .await;
        assert_eq!(res.status, 415, "{content_type}: {}", res.text);
        res.assert_problem(415, "unsupported_media_type");
    }
    assert_eq!(app.count("patients"), 0);
    for content_type in [
        "application/json",
        "Application/JSON",
        "application/json;charset=UTF-8",
        "application/json; charset=\"utf-8\"",
        "application/json ; charset=utf-8",
    ] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .raw(content_type, body.clone())
            .send()
            .await;
        assert_eq!(res.status, 201, "{content_type}: {}", res.text);
    }
}

/// Dates are RFC 3339 `full-date`s and nothing else, in bodies and in query
/// strings alike: a sign, a fifth year digit, a one-digit month or day, or
/// white space is a 422 naming the field, as the contract's pattern says.
#[actix_web::test]
async fn dates_are_full_dates_only() {
    let app = TestApp::at_clinic_now().await;
    for date in [
        "+001985-12-10",
        "+1985-12-10",
        "01985-12-10",
        "1985-12-1",
        "1985-1-10",
        " 1985-12-10",
        "1985-12-10 ",
        "1985-12-10T00:00:00",
        "19851210",
        "1985/12/10",
        "1985-12-10\n",
    ] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .json(&with(patient_body(), json!({"date_of_birth": date})))
            .send()
            .await;
        assert_eq!(res.status, 422, "{date:?}: {}", res.text);
        res.assert_invalid_fields(&["date_of_birth"]);
    }
    assert_eq!(app.count("patients"), 0);
    for query in [
        "from=%2B002026-12-01",
        "from=%2B2026-12-01",
        "from=02026-12-01",
        "from=2026-12-1",
        "from=%202026-12-01",
        "from=2026-12-01%20",
    ] {
        for list in ["/v1/closures", "/v1/appointments", "/v1/availability"] {
            let res = app.get(&format!("{list}?{query}")).role(Role::Admin).send().await;
            assert_eq!(res.status, 422, "{list}?{query}: {}", res.text);
            res.assert_invalid_fields(&["from"]);
        }
    }
    assert_eq!(app.get("/v1/closures?from=2026-12-01").role(Role::Admin).send().await.status, 200);
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"date_of_birth": "1985-12-10"})))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}
