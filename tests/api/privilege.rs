//! Least privilege: what each role may change and see, as an attacker with
//! each role's token tried it.

use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, with, without, TestApp, TestResponse};

const TODAY: &str = "2026-12-02";

fn patient_path(id: &str) -> String {
    format!("/v1/patients/{id}")
}

/// A scheduler moved a depression patient to chronic pain (which needs no
/// mental health referral), booked, and moved them back. Indications are
/// clinical now; and whatever path led to a booking, check-in asks for
/// every referral the current indications require.
#[actix_web::test]
async fn the_intake_gate_cannot_be_walked_around() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    app.screen(&patient, &[], &[]).await;
    let to_pain = json!({"indications": [{"code": "chronic_pain", "subtype": "neuropathic"}]});

    let res = app.patch(&patient_path(&patient)).role(Role::Scheduler).json(&to_pain).send().await;
    let problem = res.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("indications"), "{}", res.text);
    let res = app
        .patch(&patient_path(&patient))
        .role(Role::Scheduler)
        .json(&json!({"in_mental_health_treatment": false}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let stored = app.get(&patient_path(&patient)).role(Role::Scheduler).send().await;
    assert_eq!(
        stored.body["indications"][0]["code"], "depression",
        "a refused change stores nothing"
    );
    app.book(&patient, TODAY, "afternoon").await.assert_problem(409, "not_ready");

    // A clinician may change them; what was booked under a pain indication
    // is not checked in once the indications need a referral never verified.
    let res = app.patch(&patient_path(&patient)).role(Role::Clinician).json(&to_pain).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let back = json!({"indications": [{"code": "depression"}]});
    let res = app.patch(&patient_path(&patient)).role(Role::Admin).json(&back).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.act_as(Role::Scheduler, &id, "check-in", json!({})).await;
    let problem = res.assert_problem(409, "not_ready");
    let items: Vec<&str> =
        problem["items"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(items, ["mental_health_provider_referral"], "{}", res.text);

    // Once the referral is verified (its expiry matters only for new
    // courses), the patient is checked in.
    let referral = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    app.verify(referral["id"].as_str().unwrap()).await;
    let res = app.act_as(Role::Scheduler, &id, "check-in", json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// Registering a patient names its indications, whoever registers.
#[actix_web::test]
async fn a_scheduler_registers_a_patient_with_indications() {
    let app = TestApp::spawn().await;
    let body =
        without(without(patient_body(), "in_mental_health_treatment"), "pain_referral_required");
    let res = app.post("/v1/patients").role(Role::Scheduler).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let with_flag = with(body, json!({"pain_referral_required": true}));
    let res = app.post("/v1/patients").role(Role::Integration).json(&with_flag).send().await;
    res.assert_problem(403, "forbidden");
}

async fn checked_in_by_scheduler(app: &TestApp) -> String {
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let res = app.act_as(Role::Scheduler, &id, "check-in", json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["pain_before"], Value::Null);
    id
}

#[actix_web::test]
async fn pain_and_phq9_are_recorded_by_clinicians() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    for body in
        [json!({"pain_before": 8}), json!({"phq9": 12}), json!({"route": "iv", "pain_before": 1})]
    {
        let res = app.act_as(Role::Scheduler, &id, "check-in", body.clone()).await;
        let problem = res.assert_problem(403, "forbidden");
        let field = body.as_object().unwrap().keys().find(|k| *k != "route").unwrap().clone();
        assert!(problem["detail"].as_str().unwrap().contains(&field), "{}", res.text);
    }
    let stored = app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(stored.body["status"], "scheduled", "a refused check-in stores nothing");

    let id = checked_in_by_scheduler(&app).await;
    let clinician = app.billing_ready().await;
    let by = json!({"clinician_id": clinician, "infusion_minutes": 100});
    let complete =
        |role: Role, body: Value| app.act_as(role, &id, "complete", with(by.clone(), body));
    complete(Role::Scheduler, json!({"pain_after": 3})).await.assert_problem(403, "forbidden");
    complete(Role::Clinician, json!({"pain_after": 3}))
        .await
        .assert_invalid_fields(&["pain_before"]);
    let res = complete(Role::Clinician, json!({"pain_after": 3, "pain_before": 7})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (res.body["pain_before"].clone(), res.body["pain_after"].clone()),
        (json!(7), json!(3))
    );
}

#[actix_web::test]
async fn a_score_recorded_at_check_in_is_not_recorded_again() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let res = app.act(&id, "check-in", json!({"pain_before": 8, "phq9": 15})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    app.complete(&id, json!({"pain_after": 3, "pain_before": 2, "phq9": 3}))
        .await
        .assert_invalid_fields(&["pain_before", "phq9"]);
    let res = app.complete(&id, json!({"pain_after": 3})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!((res.body["pain_before"].clone(), res.body["phq9"].clone()), (json!(8), json!(15)));
}

fn without_outcomes(appointment: &Value) {
    for field in ["pain_before", "pain_after", "phq9", "cancel_reason"] {
        assert!(appointment.get(field).is_none(), "{field} in {appointment}");
    }
    assert!(appointment.get("status").is_some() && appointment.get("date").is_some());
}

#[actix_web::test]
async fn integrations_read_the_schedule_without_outcomes() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let done = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.act(&done, "check-in", json!({"pain_before": 8, "phq9": 15})).await.status, 200);
    assert_eq!(app.complete(&done, json!({"pain_after": 2})).await.status, 200);
    let later =
        app.booked(&patient, "2026-12-04", "morning").await["id"].as_str().unwrap().to_owned();
    let res = app.act(&later, "cancel", json!({"reason": "Flu"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    for id in [&done, &later] {
        let path = format!("/v1/appointments/{id}");
        let res = app.get(&path).role(Role::Integration).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        without_outcomes(&res.body);
        let staff = app.get(&path).role(Role::Scheduler).send().await;
        assert!(staff.body.get("pain_before").is_some());
    }
    let list = app
        .get(&format!("/v1/appointments?patient_id={patient}"))
        .role(Role::Integration)
        .send()
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2, "{}", list.text);
    list.body["items"].as_array().unwrap().iter().for_each(without_outcomes);
    let staff = app.get(&format!("/v1/appointments/{done}")).role(Role::Clinician).send().await;
    assert_eq!(
        (staff.body["pain_before"].clone(), staff.body["phq9"].clone()),
        (json!(8), json!(15))
    );
}

#[actix_web::test]
async fn patients_see_roles_not_staff_identities() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let booked = app
        .post("/v1/courses")
        .role(Role::Scheduler)
        .json(&json!({"patient_id": patient, "protocol": "pain-5-day", "session": "morning", "earliest_start": TODAY}))
        .send()
        .await;
    assert_eq!(booked.status, 201, "{}", booked.text);
    let course = booked.body["id"].as_str().unwrap().to_owned();
    let first = booked.body["appointments"][0]["id"].as_str().unwrap().to_owned();
    let res = app.act_as(Role::Scheduler, &first, "cancel", json!({"reason": "Snow"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let own = app.get(&format!("/v1/courses/{course}")).patient(&patient).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.body["created_by"], "scheduler");
    assert_eq!(own.body["appointments"][0]["cancelled_by"], "scheduler");
    let own = app.get(&format!("/v1/appointments/{first}")).patient(&patient).send().await;
    assert_eq!(own.body["cancelled_by"], "scheduler");
    assert!(!own.text.contains("test-scheduler"), "{}", own.text);
    let list = app.get(&format!("/v1/patients/{patient}/courses")).patient(&patient).send().await;
    assert!(!list.text.contains("test-scheduler"), "{}", list.text);

    let staff = app.get(&format!("/v1/courses/{course}")).role(Role::Clinician).send().await;
    assert_eq!(staff.body["created_by"], "scheduler:test-scheduler");
}

fn course_for(patient: &str) -> Value {
    json!({"patient_id": patient, "protocol": "pain-5-day", "session": "morning", "earliest_start": TODAY})
}

#[actix_web::test]
async fn a_patient_holds_one_course_at_a_time() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let book = || app.post("/v1/courses").role(Role::Scheduler).json(&course_for(&patient)).send();
    let first = book().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.body["id"].as_str().unwrap().to_owned();
    let res = book().await;
    let problem = res.assert_problem(409, "course_already_active");
    assert_eq!(problem["course_id"], id.as_str());
    assert!(problem["detail"].as_str().unwrap().contains(&id));
    assert_eq!(app.count("courses"), 1, "a refused course stores nothing");

    let res = app
        .post(&format!("/v1/courses/{id}/cancel"))
        .role(Role::Scheduler)
        .json(&json!({"reason": "Moved to afternoons"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(book().await.status, 201, "a cancelled course is not active");
}

/// 32 bookings racing for one patient made 6 overlapping courses. Now one
/// wins and every other names it, on both backends.
#[actix_web::test]
async fn courses_racing_for_one_patient_make_one() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let requests = (0..16)
        .map(|_| app.post("/v1/courses").role(Role::Scheduler).json(&course_for(&patient)))
        .collect();
    let responses: Vec<TestResponse> = app.send_all(requests).await;
    let won: Vec<&TestResponse> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{:?}", responses.iter().map(|r| &r.text).collect::<Vec<_>>());
    let id = won[0].body["id"].as_str().unwrap();
    for lost in responses.iter().filter(|r| r.status != 201) {
        let problem = lost.assert_problem(409, "course_already_active");
        assert_eq!(problem["course_id"], id);
    }
    assert_eq!(app.count("courses"), 1);
    assert_eq!(app.count(&format!("appointments WHERE patient_id = '{patient}'")), 5);
}

/// Every log line of this test process, as the `log` facade saw it.
static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        LOGGED.lock().unwrap().push(record.args().to_string());
    }

    fn flush(&self) {}
}

/// Logs carry ids, never a clinical outcome next to a patient id: no line
/// that names the patient says how a screening, a pain score or a PHQ-9
/// came out, whatever happened to the patient.
#[actix_web::test]
async fn no_log_line_puts_an_outcome_next_to_a_patient() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if log::set_boxed_logger(Box::new(Capture)).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    app.screen(&patient, &["uncontrolled_hypertension"], &[]).await;
    app.screen(&patient, &[], &["Lamictal"]).await;
    let consult = json!({"prescriber": crate::helpers::provider(), "consulted_on": TODAY, "agreed_plan": "Hold the evening dose"});
    let res = app
        .post(&format!("/v1/patients/{patient}/prescriber-consults"))
        .role(Role::Clinician)
        .json(&consult)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.act(&id, "check-in", json!({"pain_before": 9, "phq9": 21})).await.status, 200);
    assert_eq!(app.complete(&id, json!({"pain_after": 2})).await.status, 200);
    assert_eq!(
        app.get(&format!("/v1/patients/{patient}/readiness"))
            .role(Role::Clinician)
            .send()
            .await
            .status,
        200
    );

    let logged = LOGGED.lock().unwrap().clone();
    assert!(!logged.is_empty(), "the capture saw the requests");
    let outcomes = [
        "eligible",
        "contraindicat",
        "hypertension",
        "lamotrigine",
        "lamictal",
        "pain",
        "phq",
        "ready",
        "score",
    ];
    let leaks: Vec<&String> = logged
        .iter()
        .filter(|line| line.contains(&patient))
        .filter(|line| outcomes.iter().any(|o| line.to_lowercase().contains(o)))
        .collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
}
