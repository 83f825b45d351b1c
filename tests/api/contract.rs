//! The contract says what the server enforces, so that every request the
//! schema allows is one the server takes (CI fuzzes this with schemathesis,
//! `.ci/fuzz`). These tests hold the hand-written parts of the contract to
//! the checks, and the behaviour the fuzzing made precise.

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, TestApp};

#[actix_web::test]
async fn the_cursor_is_the_last_id_and_any_uuid_is_a_cursor() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_patient(patient_body()).await;
    }
    let page = app
        .get("/v1/patients?limit=2")
        .role(Role::Scheduler)
        .send()
        .await
        .body;
    assert_eq!(page["next_cursor"], page["items"][1]["id"]);
    for cursor in [
        "e3e70682-c209-4cac-a29f-6fbed82c07cd".to_owned(),
        uuid::Uuid::nil().to_string(),
        page["items"][0]["id"].as_str().unwrap().to_uppercase(),
    ] {
        let res = app
            .get(&format!("/v1/patients?cursor={cursor}"))
            .role(Role::Scheduler)
            .send()
            .await;
        assert_eq!(res.status, 200, "{cursor}: {}", res.text);
    }
    // The nil UUID sorts first: the page after it is the whole list.
    let all = app
        .get(&format!("/v1/patients?cursor={}", uuid::Uuid::nil()))
        .role(Role::Scheduler)
        .send()
        .await
        .body;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn a_whole_number_is_an_integer_however_it_is_written() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let plan = |infusions: &str| {
        format!(
            r#"{{"patient_id": "{patient}", "protocol": "pain-8-10-day", "session": "morning",
                "earliest_start": "2026-12-07", "infusions": {infusions}}}"#
        )
    };
    for infusions in ["9", "9.0", "9e0", "0.9E1", "900e-2"] {
        let res = app
            .post("/v1/courses/plan")
            .role(Role::Scheduler)
            .raw("application/json", plan(infusions))
            .send()
            .await;
        assert_eq!(res.status, 200, "{infusions}: {}", res.text);
        assert_eq!(res.body["infusions"], 9);
    }
    for infusions in ["9.5", "-9.0", "1e30"] {
        let res = app
            .post("/v1/courses/plan")
            .role(Role::Scheduler)
            .raw("application/json", plan(infusions))
            .send()
            .await;
        res.assert_invalid_fields(&["infusions"]);
    }
}

#[actix_web::test]
async fn a_repeated_key_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/rooms")
        .role(Role::Admin)
        .raw(
            "application/json",
            r#"{"name": "Room 5", "name": "Room 6"}"#,
        )
        .send()
        .await;
    let messages = res.assert_invalid_fields(&["body"]);
    assert_eq!(messages, ["duplicate field `name`"]);
    assert_eq!(app.count("rooms"), 4);
}
