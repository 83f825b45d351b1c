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
