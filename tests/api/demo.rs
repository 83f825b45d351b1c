//! The demo clinic `serve` seeds in development mode: what it holds, as a
//! client reads it through the API, and when it is not seeded.

use std::collections::HashMap;

use infusion_api::demo::{self, DemoClinic, Seeding};
use infusion_api::domain::access::Role;
use serde_json::{json, Value};

use crate::helpers::{clinic_now, patient_body, TestApp};

/// A development server's app at the clinic's fixed "now".
async fn development() -> TestApp {
    TestApp::builder().setting("APP_ENV", "development").now(clinic_now()).build().await
}

#[track_caller]
fn seeded(seeding: Seeding) -> DemoClinic {
    match seeding {
        Seeding::Seeded(clinic) => clinic,
        other => panic!("not seeded: {other:?}"),
    }
}

impl TestApp {
    /// The id of the one patient whose name matches `q`.
    async fn demo_patient(&self, q: &str) -> String {
        let res = self.get(&format!("/v1/patients?q={q}")).role(Role::Scheduler).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        let items = res.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{q}: {}", res.text);
        items[0]["id"].as_str().unwrap().to_owned()
    }

    /// The patient's readiness as a clinician sees it: ready, and each
    /// item's (status, detail) by code.
    async fn checklist(&self, patient: &str) -> (bool, HashMap<String, (String, String)>) {
        let res = self
            .get(&format!("/v1/patients/{patient}/readiness"))
            .role(Role::Clinician)
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        let items = res.body["items"].as_array().unwrap().iter().map(|item| {
            let text = |field: &str| item[field].as_str().unwrap().to_owned();
            (text("code"), (text("status"), text("detail")))
        });
        (res.body["ready"].as_bool().unwrap(), items.collect())
    }
}

#[actix_web::test]
async fn an_empty_database_gets_a_demo_clinic_a_client_can_book_in() {
    let app = development().await;
    let clinic = seeded(demo::seed(&app.state).unwrap());
    assert_eq!(clinic.patients, 15);
    assert_eq!(app.count("patients"), 15);
    assert_eq!(clinic.ready_patient_name, "Ada Ready");

    // The patient printed is ready, has nothing booked, and books.
    let ready = &clinic.ready_patient_id;
    let (is_ready, _) = app.checklist(ready).await;
    assert!(is_ready);
    let res =
        app.get(&format!("/v1/appointments?patient_id={ready}")).role(Role::Scheduler).send().await;
    assert_eq!(res.body["items"], json!([]), "{}", res.text);
    let (date, session) = clinic.bookable;
    // Thursday 3 December: the first clinic day after Wednesday's "now".
    assert_eq!(date.to_string(), "2026-12-03");
    let booked = app.booked(ready, &date.to_string(), session.as_str()).await;
    assert_eq!(booked["status"], "scheduled");

    // A course of five, from the next Monday, and a single booking.
    let res =
        app.get(&format!("/v1/courses/{}", clinic.course_id)).role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "scheduled");
    assert_eq!(res.body["protocol"], "pain-5-day");
    let dates: Vec<&str> = res.body["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10", "2026-12-11"]);
    let booked_patient = app.demo_patient("cara").await;
    let res = app
        .get(&format!("/v1/appointments?patient_id={booked_patient}"))
        .role(Role::Scheduler)
        .send()
        .await;
    let appointments = res.body["items"].as_array().unwrap();
    assert_eq!(appointments.len(), 1, "{}", res.text);
    assert_eq!(appointments[0]["date"], "2026-12-03");
    assert_eq!(app.count("appointments"), 8);

    // A patient treated four weeks ago: one infusion, completed, scored.
    let treated = app.demo_patient("olga").await;
    let res = app
        .get(&format!("/v1/appointments?patient_id={treated}"))
        .role(Role::Clinician)
        .send()
        .await;
    let done = &res.body["items"][0];
    assert_eq!(
        (&done["status"], &done["pain_before"], &done["pain_after"], &done["phq9"]),
        (&json!("completed"), &json!(7), &json!(3), &json!(14)),
        "{}",
        res.text
    );
    assert_eq!(done["date"], "2026-11-04");

    // A closure within the horizon, on a clinic day.
    let res = app.get("/v1/closures").role(Role::Scheduler).send().await;
    let closures = res.body["items"].as_array().unwrap();
    assert_eq!(closures.len(), 1, "{}", res.text);
    let closed_on = clinic.closed_on.unwrap().to_string();
    assert_eq!(closures[0]["date"], closed_on.as_str());
    app.book(ready, &closed_on, "afternoon").await.assert_problem(422, "clinic_closed");
}

#[actix_web::test]
async fn the_demo_patients_are_in_the_intake_states_they_are_named_for() {
    let app = development().await;
    seeded(demo::seed(&app.state).unwrap());
    // (name, ready, code of the item that says why, its status, part of its detail)
    for (name, ready, code, status, detail) in [
        (
            "missing-referral",
            false,
            "mental_health_provider_referral",
            "open",
            "no referral received",
        ),
        (
            "unverified-referral",
            false,
            "mental_health_provider_referral",
            "open",
            "awaits a clinician's verification",
        ),
        ("rejected-referral", false, "mental_health_provider_referral", "open", "was rejected"),
        ("expired-referral", false, "mental_health_provider_referral", "open", "has expired"),
        ("no-attestation", false, "ongoing_treatment_attestation", "open", "no attestation"),
        ("needs-evaluation", false, "mental_health_evaluation", "open", "no referral received"),
        ("unscreened", false, "screening", "open", "no screening recorded"),
        ("ineligible", false, "screening", "open", "ineligible: uncontrolled_hypertension"),
        // The consult stops the first check-in, not the booking.
        ("consult-open", true, "lamotrigine_prescriber_consult", "open", "consult the prescriber"),
        ("consult-done", true, "lamotrigine_prescriber_consult", "done", "was consulted"),
        ("course", true, "pain_management_referral", "done", "verified referral"),
        ("pain-and-depression", true, "ongoing_treatment_attestation", "done", "attested"),
    ] {
        let patient = app.demo_patient(name).await;
        let (is_ready, items) = app.checklist(&patient).await;
        assert_eq!(is_ready, ready, "{name}: {items:?}");
        let (found, why) = &items[code];
        assert_eq!(found, status, "{name}: {items:?}");
        assert!(why.contains(detail), "{name}: {why}");
    }

    // Not ready is refused a booking, naming the item.
    let missing = app.demo_patient("missing-referral").await;
    let res = app.book(&missing, "2026-12-03", "morning").await;
    let body = res.assert_problem(409, "not_ready");
    assert_eq!(body["items"][0]["code"], "mental_health_provider_referral");
    let ineligible = app.demo_patient("ineligible").await;
    app.book(&ineligible, "2026-12-03", "morning").await.assert_problem(409, "not_ready");
}

#[actix_web::test]
async fn a_second_start_seeds_nothing_more() {
    let app = development().await;
    seeded(demo::seed(&app.state).unwrap());
    let counts = |app: &TestApp| {
        ["patients", "referrals", "screenings", "appointments", "courses", "closures"]
            .map(|table| app.count(table))
    };
    let before = counts(&app);
    assert!(matches!(demo::seed(&app.state).unwrap(), Seeding::NotEmpty));
    assert_eq!(counts(&app), before);
}

#[actix_web::test]
async fn a_database_with_patients_is_not_seeded() {
    let app = development().await;
    app.create_patient(patient_body()).await;
    assert!(matches!(demo::seed(&app.state).unwrap(), Seeding::NotEmpty));
    assert_eq!(app.count("patients"), 1);
    assert_eq!(app.count("closures"), 0);
}

#[actix_web::test]
async fn production_never_seeds_and_the_setting_skips_it() {
    let production = TestApp::builder().now(clinic_now()).build().await;
    assert!(matches!(demo::seed(&production.state).unwrap(), Seeding::Production));
    let skipped = TestApp::builder()
        .setting("APP_ENV", "development")
        .setting("DEMO_CLINIC", "false")
        .now(clinic_now())
        .build()
        .await;
    assert!(matches!(demo::seed(&skipped.state).unwrap(), Seeding::Skipped));
    for app in [&production, &skipped] {
        assert_eq!(app.count("patients"), 0);
        assert_eq!(app.count("closures"), 0);
        let res = app.get("/v1/patients").role(Role::Scheduler).send().await;
        assert_eq!(res.body["items"], Value::Array(Vec::new()));
    }
}

#[test]
fn production_refuses_to_start_when_asked_for_a_demo_clinic() {
    let database =
        std::env::temp_dir().join(format!("demo-refused-{}.sqlite3", uuid::Uuid::now_v7()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infusion-api"))
        .env_clear()
        .env("JWT_SECRET", crate::helpers::SECRET)
        .env("DEMO_CLINIC", "true")
        .env("DATABASE_URL", &database)
        .env("BIND_ADDR", "127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEMO_CLINIC=true is for development only"), "{stderr}");
    assert!(!database.exists(), "nothing was opened");
}
