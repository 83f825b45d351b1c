//! Probes, Swagger UI and the committed contract.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{test as actix_test, web};
use serde_json::{json, Value};

use infusion_api::config::{DatabaseTarget, Settings};
use infusion_api::domain::clock::SystemClock;
use infusion_api::http::{app, AppState};
use infusion_api::store::connection::ConnectionManager;

use infusion_api::domain::access::Role;

use crate::helpers::{TestApp, SECRET};

#[actix_web::test]
async fn liveness_and_readiness_need_no_token() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz").send().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["status"], "ok");
    let res = app.get("/readyz").send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "ready");
}

#[actix_web::test]
async fn readiness_fails_with_503_when_the_database_is_gone() {
    let target = DatabaseTarget::parse("postgres://nobody@127.0.0.1:1/nothing").unwrap();
    // Unchecked: the pool would refuse to start against a database that is down.
    let pool = diesel::r2d2::Pool::builder()
        .connection_timeout(Duration::from_millis(500))
        .build_unchecked(ConnectionManager::new(target));
    let settings =
        Settings::from_lookup(|key| (key == "JWT_SECRET").then(|| SECRET.to_owned())).unwrap();
    let state = web::Data::new(
        AppState::new(pool, Arc::new(settings), Arc::new(SystemClock)).expect("app state"),
    );
    let service = actix_test::init_service(app(state)).await;
    let res = actix_test::call_service(
        &service,
        actix_test::TestRequest::get().uri("/readyz").to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = actix_test::read_body_json(res).await;
    assert_eq!(body["code"], "unavailable");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    assert_eq!(TestApp::spawn().await.get("/healthz").send().await.status, 200);
}

#[actix_web::test]
async fn swagger_ui_is_served_and_the_bare_path_redirects() {
    let app = TestApp::spawn().await;
    let res = app.get("/swagger-ui").send().await;
    assert_eq!(res.status, 308);
    assert_eq!(res.header("location"), Some("/swagger-ui/"));
    let res = app.get("/swagger-ui/").send().await;
    assert_eq!(res.status, 200);
    assert!(res.text.contains("<html"), "{}", res.text);
    let res = app.get("/swagger-ui/swagger-initializer.js").send().await;
    assert_eq!(res.status, 200);
    assert!(res.text.contains("/openapi.json"), "{}", res.text);
}

#[actix_web::test]
async fn the_served_spec_is_the_generated_one() {
    let app = TestApp::spawn().await;
    let res = app.get("/openapi.json").send().await;
    assert_eq!(res.status, 200);
    // As generated, with the request examples dated from the server's today.
    let generated = infusion_api::http::openapi::dated(
        infusion_api::http::openapi(),
        app.state.today(),
        &app.state.calendar,
    );
    assert_eq!(res.body, serde_json::to_value(generated).unwrap());
}

fn committed() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let text = std::fs::read_to_string(path).expect("openapi/openapi.json is committed");
    serde_json::from_str(&text).expect("openapi/openapi.json is JSON")
}

#[test]
fn the_committed_spec_matches_the_code() {
    let generated = infusion_api::http::openapi().to_pretty_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let on_disk = std::fs::read_to_string(path).expect("openapi/openapi.json is committed");
    assert!(
        on_disk.trim_end() == generated.trim_end(),
        "openapi/openapi.json differs from what the code generates: run `make openapi` and commit it"
    );
}

#[test]
fn the_spec_is_openapi_3_1_with_bearer_auth_and_documented_errors() {
    let spec = committed();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let scheme = &spec["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
    let paths = spec["paths"].as_object().unwrap();
    for expected in [
        "/healthz",
        "/readyz",
        "/v1/patients",
        "/v1/patients/{id}",
        "/v1/rooms",
        "/v1/rooms/{id}",
        "/v1/closures",
        "/v1/closures/{id}",
        "/v1/availability",
        "/v1/appointments",
        "/v1/appointments/{id}",
        "/v1/appointments/{id}/cancel",
        "/v1/appointments/{id}/reschedule",
        "/v1/appointments/{id}/check-in",
        "/v1/appointments/{id}/complete",
        "/v1/appointments/{id}/no-show",
        "/v1/patients/{id}/referrals",
        "/v1/referrals/{id}",
        "/v1/referrals/{id}/verify",
        "/v1/referrals/{id}/reject",
        "/v1/patients/{id}/treatment-attestations",
        "/v1/patients/{id}/screenings",
        "/v1/screenings/{id}",
        "/v1/patients/{id}/prescriber-consults",
        "/v1/patients/{id}/readiness",
        "/v1/protocols",
        "/v1/protocols/{code}",
        "/v1/courses/plan",
        "/v1/courses",
        "/v1/courses/{id}",
        "/v1/patients/{id}/courses",
        "/v1/courses/{id}/cancel",
    ] {
        assert!(paths.contains_key(expected), "{expected} is missing");
    }
    // Bearer security is declared once, for the whole document; the public
    // operations opt out with an empty list.
    assert_eq!(spec["security"], json!([{"bearer": []}]));
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            let responses = op["responses"].as_object().unwrap();
            let secured = op.get("security").is_none();
            let fhir = path.starts_with("/fhir/R4/");
            let public_fhir = path == "/fhir/R4/metadata";
            assert_eq!(
                secured,
                path.starts_with("/v1/") || (fhir && !public_fhir),
                "{method} {path} security"
            );
            if !secured {
                assert_eq!(op["security"], json!([]), "{method} {path} security");
            }
            if secured {
                // FHIR's errors are OperationOutcomes.
                let errors =
                    if fhir { "application/fhir+json" } else { "application/problem+json" };
                for status in ["401", "403", "500", "503"] {
                    let response = responses
                        .get(status)
                        .unwrap_or_else(|| panic!("{method} {path} lacks {status}"));
                    assert!(response["content"][errors].is_object(), "{method} {path} {status}");
                }
            }
            // The token endpoint answers OAuth's errors (RFC 6749 section
            // 5.2): 400 for every refusal, the body's size and speed aside.
            let body_statuses: &[&str] = if path.starts_with("/v1/") {
                &["400", "413", "415", "422"]
            } else {
                &["400", "408", "413"]
            };
            if op.get("requestBody").is_some() {
                for status in body_statuses {
                    assert!(responses.contains_key(*status), "{method} {path} lacks {status}");
                }
            }
        }
    }
    for schema in [
        "CreatePatient",
        "BookAppointment",
        "AppointmentResponse",
        "SessionAvailability",
        "CreateClosure",
        "RoomResponse",
    ] {
        assert!(
            spec["components"]["schemas"][schema]["example"].is_object(),
            "{schema} has no example"
        );
    }
    let course_request = &spec["components"]["schemas"]["CourseRequest"];
    assert!(course_request["examples"][0].is_object(), "CourseRequest has no example");
    for schema in [
        "CoursePlan",
        "CourseResponse",
        "ScreeningRequest",
        "NewReferral",
        "Attestation",
        "Consult",
        "Readiness",
    ] {
        assert!(
            spec["components"]["schemas"][schema]["example"].is_object(),
            "{schema} has no example"
        );
    }
    let screening = &spec["paths"]["/v1/patients/{id}/screenings"]["post"]["responses"]["201"];
    let examples = screening["content"]["application/json"]["examples"].as_object().unwrap();
    assert!(examples.contains_key("eligible") && examples.contains_key("ineligible"));
    let booking = &spec["paths"]["/v1/appointments"]["post"]["responses"];
    let examples =
        booking["409"]["content"]["application/problem+json"]["examples"].as_object().unwrap();
    assert!(
        examples.contains_key("slot_full")
            && examples.contains_key("patient_already_booked_that_day")
    );
    let examples =
        booking["422"]["content"]["application/problem+json"]["examples"].as_object().unwrap();
    for code in
        ["validation_failed", "not_a_clinic_day", "clinic_closed", "in_the_past", "outside_horizon"]
    {
        assert!(examples.contains_key(code), "booking 422 lacks {code}");
    }
    assert!(spec["components"]["schemas"]["Problem"]["example"].is_object());
}

/// A database restart or failover drops the API's connections. The pool no
/// longer pings on every check-out, so a dropped connection shows once, as a
/// 503 to retry (never a 500), and is replaced: at most one failure per
/// pooled connection, then the API answers again without being restarted.
#[actix_web::test]
async fn connections_the_server_dropped_are_replaced() {
    use diesel::prelude::*;

    let app = TestApp::spawn().await;
    let DatabaseTarget::Postgres(url) = &app.state.settings.database else {
        // SQLite has no server to drop connections: the PostgreSQL pass runs this.
        return;
    };
    let id =
        app.create_patient(crate::helpers::patient_body()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    assert_eq!(app.get(&path).role(Role::Scheduler).send().await.status, 200);

    let mut admin = PgConnection::establish(url.expose()).unwrap();
    let dropped = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .unwrap();
    assert!(dropped >= 1, "the pool's connections were open");

    let pool_size = app.pool.max_size() as usize;
    let mut statuses = Vec::new();
    for _ in 0..pool_size + 4 {
        let res = app.get(&path).role(Role::Scheduler).send().await;
        if res.status == 503 {
            res.assert_problem(503, "unavailable");
        }
        statuses.push(res.status);
    }
    let failures = statuses.iter().filter(|s| **s != 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(failures <= pool_size, "{statuses:?}");
    assert!(statuses[pool_size..].iter().all(|s| *s == 200), "{statuses:?}");
}
