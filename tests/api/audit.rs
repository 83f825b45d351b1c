//! The audit trail: who read or changed a patient's data, and who was
//! refused, read back by admins and in each patient's access log.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, TestApp};

/// The trail as an admin reads it, filtered by `query`.
async fn trail(app: &TestApp, query: &str) -> Vec<Value> {
    let res =
        app.get(&format!("/v1/audit-events?limit=200&{query}")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["items"].as_array().unwrap().clone()
}

fn find<'a>(events: &'a [Value], operation: &str, status: u16) -> &'a Value {
    events
        .iter()
        .find(|e| e["operation"] == operation && e["status"] == status)
        .unwrap_or_else(|| panic!("no {operation} {status} in {events:#?}"))
}

#[actix_web::test]
async fn a_write_a_read_and_each_denial_are_recorded() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(patient_body()).await;
    let id = patient["id"].as_str().unwrap();
    let path = format!("/v1/patients/{id}");
    assert_eq!(app.get(&path).role(Role::Scheduler).send().await.status, 200);
    let head = app.request(actix_web::http::Method::HEAD, &path).role(Role::Clinician).send().await;
    assert_eq!(head.status, 200);
    let stranger = "019ac5a0-0000-7000-8000-0000000000ff";
    app.get(&path).patient(stranger).send().await.assert_problem(404, "not_found");
    app.post("/v1/rooms")
        .patient(id)
        .json(&json!({"nme": 1}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.get(&path).send().await.assert_problem(401, "unauthorized");
    app.get(&path).bearer("not.a.token").send().await.assert_problem(401, "unauthorized");

    let events = trail(&app, &format!("patient_id={id}")).await;
    let created = find(&events, "create_patient", 201);
    assert_eq!(created["actor"], "test-clinician");
    assert_eq!(created["actor_role"], "clinician");
    assert_eq!(created["method"], "POST");
    assert_eq!(created["path"], "/v1/patients");
    assert_eq!(created["patient_ids"], json!([id]));
    assert_eq!(created["records"], json!([format!("patient/{id}")]));
    assert_eq!(created["request_id"], created["id"], "one record a request, by its id");
    assert!(created["occurred_at"].as_str().unwrap().ends_with("-05:00"));
    let read = find(&events, "get_patient", 200);
    assert_eq!(
        (read["actor"].clone(), read["actor_role"].clone()),
        (json!("test-scheduler"), json!("scheduler"))
    );
    assert_eq!(read["path"], path.as_str());
    let head = events.iter().find(|e| e["method"] == "HEAD").expect("the HEAD read");
    assert_eq!(
        (head["operation"].clone(), head["actor"].clone()),
        (json!("get_patient"), json!("test-clinician"))
    );

    let everything = trail(&app, "").await;
    let missing = find(&everything, "get_patient", 404);
    assert_eq!(
        (missing["actor"].clone(), missing["actor_role"].clone()),
        (json!(stranger), json!("patient"))
    );
    assert_eq!(missing["patient_ids"], json!([]), "nothing of the patient was reached");
    let forbidden = find(&everything, "create_room", 403);
    assert_eq!(forbidden["actor_role"], "patient");
    let unauthorized: Vec<&Value> = everything
        .iter()
        .filter(|e| e["status"] == 401 && e["operation"] == "get_patient")
        .collect();
    assert_eq!(unauthorized.len(), 2, "{everything:#?}");
    assert!(unauthorized.iter().all(|e| e["actor"].is_null() && e["actor_role"].is_null()));
    // Filters: by actor and by operation.
    let by_actor = trail(&app, "actor=test-scheduler").await;
    assert!(!by_actor.is_empty() && by_actor.iter().all(|e| e["actor"] == "test-scheduler"));
    let by_operation = trail(&app, "operation=create_room").await;
    assert_eq!(by_operation.len(), 1);
}

/// A read's record is queued and stored by the flusher; a reader of the
/// trail sees it even while the flusher's batch holding it has not
/// committed yet: the reader waits for that batch instead of reading past it.
#[actix_web::test]
async fn the_trail_shows_a_read_whose_batch_is_still_being_stored() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(patient_body()).await;
    let id = patient["id"].as_str().unwrap();
    // Held by the test: the flusher's insert waits for it.
    let mut holder = app.own_connection();
    let hold = if app.is_postgres() {
        "BEGIN; LOCK TABLE audit_events IN EXCLUSIVE MODE"
    } else {
        "BEGIN IMMEDIATE"
    };
    holder.batch_execute(hold).unwrap();
    let res = app.get(&format!("/v1/patients/{id}")).role(Role::Clinician).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    // The flusher wakes every quarter second: by now it has taken the read's
    // record off the queue and waits on the lock to insert it.
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let release = async {
        actix_web::rt::time::sleep(Duration::from_millis(400)).await;
        holder.batch_execute("COMMIT").unwrap();
    };
    let query = format!("operation=get_patient&patient_id={id}");
    let read = trail(&app, &query);
    let (read, ()) = futures_util::future::join(read, release).await;
    assert_eq!(read.len(), 1, "{read:#?}");
    assert_eq!(read[0]["status"], 200);
}

/// A change's record commits in the change's own transaction: it is in the
/// database when the answer arrives, before any queued record is stored.
/// A refused change leaves its attempt, and nothing else.
#[actix_web::test]
async fn a_change_and_its_record_commit_together() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let booked = app.booked(&patient, "2026-12-03", "morning").await;
    let id = booked["id"].as_str().unwrap();
    let stored = format!(
        "audit_events WHERE operation = 'book_appointment' AND status = 201 AND records = 'appointment/{id}'"
    );
    assert_eq!(app.count(&stored), 1);
    // The patient's registration, screening and booking.
    assert_eq!(app.count(&format!("audit_events WHERE patient_id = '{patient}'")), 3);

    let before = app.count("appointments");
    app.book(&patient, "2026-12-03", "afternoon")
        .await
        .assert_problem(409, "patient_already_booked_that_day");
    assert_eq!(app.count("appointments"), before);
    let events = trail(&app, "operation=book_appointment").await;
    assert_eq!(events.len(), 2);
    assert_eq!(find(&events, "book_appointment", 409)["records"], json!([]));

    // A course: the course and each infusion.
    let course = app
        .post("/v1/courses")
        .role(Role::Scheduler)
        .json(&json!({"patient_id": patient, "protocol": "pain-5-day", "session": "afternoon", "earliest_start": "2026-12-07"}))
        .send()
        .await;
    assert_eq!(course.status, 201, "{}", course.text);
    let events = trail(&app, "operation=book_course").await;
    let records = events[0]["records"].as_array().unwrap();
    assert_eq!(records.len(), 6, "{records:?}");
    assert_eq!(records[0], format!("course/{}", course.body["id"].as_str().unwrap()));
}

/// A list across patients names each of them, and each one's access log
/// shows it.
#[actix_web::test]
async fn a_read_across_patients_is_in_each_ones_log() {
    let app = TestApp::at_clinic_now().await;
    let (one, two) = (app.ready_patient().await, app.ready_patient().await);
    app.booked(&one, "2026-12-03", "morning").await;
    app.booked(&two, "2026-12-03", "morning").await;
    let res = app
        .get("/v1/appointments?from=2026-12-03&to=2026-12-03")
        .role(Role::Scheduler)
        .send()
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 2, "{}", res.text);
    for patient in [&one, &two] {
        let events =
            trail(&app, &format!("patient_id={patient}&operation=list_appointments")).await;
        assert_eq!(events.len(), 1, "{events:#?}");
        let mut named: Vec<&str> = events[0]["patient_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        named.sort();
        let mut both = vec![one.as_str(), two.as_str()];
        both.sort();
        assert_eq!(named, both);
        assert_eq!(events[0]["records"].as_array().unwrap().len(), 2);
    }
}

#[actix_web::test]
async fn a_partial_update_records_the_fields_it_changed() {
    let app = TestApp::spawn().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let change = json!({"date_of_birth": "1985-12-11", "phone": null});
    let res =
        app.patch(&format!("/v1/patients/{id}")).role(Role::Scheduler).json(&change).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let events = trail(&app, "operation=update_patient").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["changed"], json!(["date_of_birth", "phone"]));
    assert_eq!(events[0]["actor"], "test-scheduler");
    assert!(!events[0].to_string().contains("1985-12-11"), "values stay out of the trail");
}

#[actix_web::test]
async fn a_patient_reads_who_reached_its_record() {
    let app = TestApp::spawn().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let other = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/v1/patients/{id}")).role(Role::Scheduler).send().await.status,
        200
    );
    let log = format!("/v1/patients/{id}/access-log");

    let res = app.get(&log).role(Role::Clinician).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    assert_eq!(
        items.iter().map(|e| e["operation"].as_str().unwrap()).collect::<Vec<_>>(),
        ["create_patient", "get_patient"]
    );
    assert_eq!(items[1]["actor"], "test-scheduler");

    let own = app.get(&log).patient(&id).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    let items = own.body["items"].as_array().unwrap();
    // Its own log: the clinician's read above is in it now; people are roles.
    assert!(items.len() >= 3, "{}", own.text);
    assert!(items.iter().all(|e| e["actor"].is_null() && e["source"].is_null()), "{}", own.text);
    assert_eq!(items[1]["actor_role"], "scheduler");
    assert!(!own.text.contains("test-scheduler"));

    app.get(&log).patient(&other).send().await.assert_problem(404, "not_found");
    app.get(&log).role(Role::Scheduler).send().await.assert_problem(403, "forbidden");
    app.get(&log).role(Role::Integration).send().await.assert_problem(403, "forbidden");
    app.get("/v1/audit-events").role(Role::Clinician).send().await.assert_problem(403, "forbidden");
    app.get("/v1/audit-events").patient(&id).send().await.assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn the_trail_is_append_only() {
    let app = TestApp::spawn().await;
    app.create_patient(patient_body()).await;
    app.create_patient(patient_body()).await;
    // A list across both patients: its patients are rows of their own.
    assert_eq!(app.get("/v1/patients").role(Role::Scheduler).send().await.status, 200);
    trail(&app, "").await;
    assert_eq!(app.count("audit_event_patients"), 2);
    assert!(!app.execute("UPDATE audit_events SET status = 200"));
    assert!(!app.execute("DELETE FROM audit_events"));
    assert!(!app.execute("UPDATE audit_event_patients SET patient_id = 'x'"));
    assert!(!app.execute("DELETE FROM audit_event_patients"));
    assert_eq!(app.count("audit_events WHERE status = 201"), 2);
    assert_eq!(app.count("audit_event_patients"), 2);
}

#[actix_web::test]
async fn bad_filters_are_named() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("from=yesterday", "from"),
        ("from=2026-12-02T10:00:00Z&to=2026-12-01T10:00:00Z", "to"),
        ("patient_id=42", "patient_id"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ] {
        let res = app.get(&format!("/v1/audit-events?{query}")).role(Role::Admin).send().await;
        res.assert_invalid_fields(&[field]);
    }
    let res = app
        .get("/v1/audit-events?from=2026-01-01T00:00:00-05:00&to=2099-01-01T00:00:00Z")
        .role(Role::Admin)
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // The refused requests above are in range; none is in the past or the future.
    assert!(res.body["items"].as_array().unwrap().len() >= 5, "{}", res.text);
    assert!(trail(&app, "to=2000-01-01T00:00:00Z").await.is_empty());
    assert!(trail(&app, "from=2099-01-01T00:00:00%2B01:00").await.is_empty());
}
