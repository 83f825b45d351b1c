//! Booking and the appointment state machine, through the API.

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use infusion_api::domain::access::Role;

use crate::helpers::{clinic_now, TestApp};

// Thursday and Friday after clinic_now(), and the weekend.
const THU: &str = "2026-12-03";
const FRI: &str = "2026-12-04";
const SAT: &str = "2026-12-05";
const SUN: &str = "2026-12-06";
const TODAY: &str = "2026-12-02";

#[actix_web::test]
async fn booking_assigns_a_room_and_answers_201_with_location() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let res = app.book(&patient, THU, "morning").await;
    assert_eq!(res.status, 201, "{}", res.text);
    let a = &res.body;
    let id = a["id"].as_str().unwrap();
    assert_eq!(res.header("location"), Some(format!("/v1/appointments/{id}").as_str()));
    assert_eq!(a["patient_id"], patient.as_str());
    assert_eq!(a["date"], THU);
    assert_eq!(a["session"], "morning");
    assert_eq!(a["starts_at"], "2026-12-03T08:00:00-05:00");
    assert_eq!(a["ends_at"], "2026-12-03T12:00:00-05:00");
    assert_eq!(a["status"], "scheduled");
    assert_eq!(a["route"], "iv");
    assert_eq!(a["room_id"], "019ac5a0-0000-7000-8000-000000000001");
    let fetched = app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body, res.body);

    let oral = app
        .post("/v1/appointments")
        .role(Role::Clinician)
        .json(&json!({"patient_id": app.ready_patient().await, "date": THU, "session": "afternoon", "route": "intranasal"}))
        .send()
        .await;
    assert_eq!(oral.status, 201, "{}", oral.text);
    assert_eq!(oral.body["route"], "intranasal");
    assert_eq!(oral.body["starts_at"], "2026-12-03T13:00:00-05:00");
    assert_eq!(oral.body["ends_at"], "2026-12-03T17:00:00-05:00");
}

#[actix_web::test]
async fn starts_at_and_ends_at_follow_daylight_saving_time() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    // DST begins Sunday 14 March 2027.
    for (date, session, starts, ends) in [
        ("2027-03-12", "morning", "2027-03-12T08:00:00-05:00", "2027-03-12T12:00:00-05:00"),
        ("2027-03-15", "morning", "2027-03-15T08:00:00-04:00", "2027-03-15T12:00:00-04:00"),
        ("2027-03-16", "afternoon", "2027-03-16T13:00:00-04:00", "2027-03-16T17:00:00-04:00"),
    ] {
        let a = app.booked(&patient, date, session).await;
        assert_eq!((a["starts_at"].as_str(), a["ends_at"].as_str()), (Some(starts), Some(ends)));
    }
}

#[actix_web::test]
async fn ends_at_is_the_session_end_setting_on_every_appointment_shown() {
    let app = TestApp::builder()
        .now(clinic_now())
        .setting("MORNING_START", "07:30")
        .setting("MORNING_END", "11:15")
        .setting("AFTERNOON_START", "12:45")
        .setting("AFTERNOON_END", "16:50")
        .build()
        .await;
    let patient = app.ready_patient().await;
    let morning = app.booked(&patient, THU, "morning").await;
    assert_eq!(morning["starts_at"], "2026-12-03T07:30:00-05:00");
    assert_eq!(morning["ends_at"], "2026-12-03T11:15:00-05:00");
    let id = morning["id"].as_str().unwrap();
    let afternoon = app.booked(&patient, FRI, "afternoon").await;
    assert_eq!(afternoon["ends_at"], "2026-12-04T16:50:00-05:00");

    // Read, listed, by each role that sees appointments, the patient too.
    let path = format!("/v1/appointments/{id}");
    for role in [Role::Admin, Role::Clinician, Role::Scheduler, Role::Integration] {
        let read = app.get(&path).role(role).send().await;
        assert_eq!(read.body["ends_at"], "2026-12-03T11:15:00-05:00", "{role:?}");
        let list = app.get("/v1/appointments").role(role).send().await;
        let ends: Vec<&str> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ends_at"].as_str().unwrap())
            .collect();
        assert_eq!(ends, ["2026-12-03T11:15:00-05:00", "2026-12-04T16:50:00-05:00"], "{role:?}");
    }
    let own = app.get(&path).patient(&patient).send().await;
    assert_eq!(own.body["ends_at"], "2026-12-03T11:15:00-05:00", "{}", own.text);
    // An action answers the appointment with it too.
    let moved = app
        .post(&format!("{path}/reschedule"))
        .role(Role::Scheduler)
        .json(&json!({"date": "2026-12-08", "session": "afternoon"}))
        .send()
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["starts_at"], "2026-12-08T12:45:00-05:00");
    assert_eq!(moved.body["ends_at"], "2026-12-08T16:50:00-05:00");

    // A course's plan and its appointments.
    let other = app.ready_patient().await;
    let course = json!({"patient_id": other, "protocol": "pain-5-day", "session": "morning",
                        "earliest_start": TODAY});
    let plan = app.post("/v1/courses/plan").role(Role::Scheduler).json(&course).send().await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    assert_eq!(plan.body["appointments"][0]["ends_at"], "2026-12-07T11:15:00-05:00");
    let booked = app.post("/v1/courses").role(Role::Scheduler).json(&course).send().await;
    assert_eq!(booked.status, 201, "{}", booked.text);
    for (shown, planned) in booked.body["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .zip(plan.body["appointments"].as_array().unwrap())
    {
        assert_eq!(shown["ends_at"], planned["ends_at"]);
        assert!(shown["ends_at"].as_str().unwrap().ends_with("T11:15:00-05:00"), "{shown}");
    }
    let course_path = booked.header("location").unwrap().to_owned();
    let read = app.get(&course_path).role(Role::Scheduler).send().await;
    assert_eq!(read.body["appointments"], booked.body["appointments"]);

    // Availability shows each session's end beside its start.
    let slots = app
        .get("/v1/availability?from=2026-12-07&to=2026-12-07")
        .role(Role::Scheduler)
        .send()
        .await;
    let hours: Vec<(&str, &str)> = slots
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["starts_at"].as_str().unwrap(), s["ends_at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        hours,
        [
            ("2026-12-07T07:30:00-05:00", "2026-12-07T11:15:00-05:00"),
            ("2026-12-07T12:45:00-05:00", "2026-12-07T16:50:00-05:00")
        ]
    );
}

#[actix_web::test]
async fn each_calendar_rule_has_its_code_and_stores_nothing() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let closure = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": FRI, "reason": "Staff training"}))
        .send()
        .await;
    assert_eq!(closure.status, 201, "{}", closure.text);

    let cases = [
        (SAT, "morning", 422, "not_a_clinic_day"),
        (SUN, "afternoon", 422, "not_a_clinic_day"),
        (FRI, "morning", 422, "clinic_closed"),
        ("2026-12-01", "afternoon", 422, "in_the_past"),
        // This morning began at 08:00; it is 10:00.
        (TODAY, "morning", 422, "in_the_past"),
        // 26 weeks from today is 2 June 2027.
        ("2027-06-03", "morning", 422, "outside_horizon"),
    ];
    for (date, session, status, code) in cases {
        let res = app.book(&patient, date, session).await;
        res.assert_problem(status, code);
    }
    assert_eq!(app.count("appointments"), 0);
    // The edges: this afternoon, and the last day of the horizon.
    app.booked(&patient, TODAY, "afternoon").await;
    app.booked(&patient, "2027-06-02", "morning").await;
}

#[actix_web::test]
async fn clinic_days_are_a_setting() {
    let app = TestApp::builder()
        .now(clinic_now())
        .setting("CLINIC_DAYS", "mon,tue,wed,thu,fri,sat")
        .build()
        .await;
    let patient = app.ready_patient().await;
    app.booked(&patient, SAT, "morning").await;
    app.book(&patient, SUN, "morning").await.assert_problem(422, "not_a_clinic_day");
}

#[actix_web::test]
async fn a_full_session_is_slot_full() {
    let app = TestApp::at_clinic_now().await;
    let mut rooms = Vec::new();
    for _ in 0..4 {
        let patient = app.ready_patient().await;
        rooms.push(app.booked(&patient, THU, "morning").await["room_id"].clone());
    }
    rooms.sort_by_key(|r| r.to_string());
    rooms.dedup();
    assert_eq!(rooms.len(), 4, "each booking took its own room");
    let late = app.ready_patient().await;
    app.book(&late, THU, "morning").await.assert_problem(409, "slot_full");
    // The afternoon is still open.
    app.booked(&late, THU, "afternoon").await;
    assert_eq!(app.count("appointments"), 5);
}

#[actix_web::test]
async fn one_active_appointment_per_patient_per_day() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    app.booked(&patient, THU, "morning").await;
    let res = app.book(&patient, THU, "afternoon").await;
    res.assert_problem(409, "patient_already_booked_that_day");
    assert_eq!(app.count("appointments"), 1);
}

#[actix_web::test]
async fn bad_bookings_are_422_naming_the_field() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let cases = [
        (json!({"patient_id": patient, "date": THU, "session": "evening"}), "session"),
        (json!({"patient_id": patient, "date": "2026-13-01", "session": "morning"}), "date"),
        (
            json!({"patient_id": patient, "date": THU, "session": "morning", "route": "iv-drip"}),
            "route",
        ),
        (
            json!({"patient_id": uuid::Uuid::now_v7().to_string(), "date": THU, "session": "morning"}),
            "patient_id",
        ),
        (json!({"date": THU, "session": "morning"}), "patient_id"),
        (
            json!({"patient_id": "robert'); DROP TABLE patients;--", "date": THU, "session": "morning"}),
            "patient_id",
        ),
        (
            json!({"patient_id": patient, "date": THU, "session": "morning", "room_id": "x"}),
            "room_id",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/appointments").role(Role::Scheduler).json(&body).send().await;
        res.assert_invalid_fields(&[field]);
    }
    assert_eq!(app.count("appointments"), 0);
}

#[actix_web::test]
async fn who_may_book_and_read() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let body = json!({"patient_id": patient, "date": THU, "session": "morning"});
    for role in [Role::Integration, Role::Patient] {
        let res = app.post("/v1/appointments").role(role).json(&body).send().await;
        res.assert_problem(403, "forbidden");
    }
    app.post("/v1/appointments")
        .patient(&patient)
        .json(&body)
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(app.count("appointments"), 0);
    for role in [Role::Admin, Role::Clinician] {
        let p = app.ready_patient().await;
        let res = app
            .post("/v1/appointments")
            .role(role)
            .json(&json!({"patient_id": p, "date": THU, "session": "morning"}))
            .send()
            .await;
        assert_eq!(res.status, 201, "{role:?} {}", res.text);
    }
}

#[actix_web::test]
async fn check_in_then_complete_records_pain_scores() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();

    let res = app.act(&id, "check-in", json!({"pain_before": 8})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "checked_in");
    assert_eq!(res.body["pain_before"], 8);
    assert_eq!(res.body["checked_in_at"], "2026-12-02T10:00:00-05:00");

    let res = app.complete(&id, json!({"pain_after": 3})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "completed");
    assert_eq!(res.body["pain_before"], 8);
    assert_eq!(res.body["pain_after"], 3);

    // Completed is final.
    let clinician = app.billing_ready().await;
    for (action, body) in [
        ("check-in", json!({"pain_before": 5})),
        ("complete", json!({"pain_after": 2, "clinician_id": clinician, "infusion_minutes": 60})),
        ("cancel", json!({"reason": "oops"})),
        ("no-show", json!({})),
        ("reschedule", json!({"date": THU, "session": "morning"})),
    ] {
        app.act(&id, action, body).await.assert_problem(409, "invalid_transition");
    }
    let after = app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(after.body["status"], "completed");
    assert_eq!(after.body["pain_after"], 3);
}

#[actix_web::test]
async fn check_in_records_the_route_given() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let res = app.act(&id, "check-in", json!({"pain_before": 6, "route": "intramuscular"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["route"], "intramuscular");
}

#[actix_web::test]
async fn refused_transitions_are_invalid_transition() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let future = app.booked(&patient, THU, "morning").await["id"].as_str().unwrap().to_owned();
    // Check-in only on the appointment's date; no-show only after it began.
    let res = app.act(&future, "check-in", json!({"pain_before": 5})).await;
    res.assert_problem(409, "invalid_transition");
    assert!(res.body["detail"].as_str().unwrap().contains(THU), "{}", res.text);
    app.act(&future, "no-show", json!({})).await.assert_problem(409, "invalid_transition");
    // Complete needs a check-in first.
    app.complete(&future, json!({"pain_after": 2})).await.assert_problem(409, "invalid_transition");

    let res = app.act(&future, "cancel", json!({"reason": "Feeling unwell"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "cancelled");
    assert_eq!(res.body["cancel_reason"], "Feeling unwell");
    assert_eq!(res.body["cancelled_by"], "clinician:test-clinician");
    // Every other action on every status is the domain's table
    // (`appointment::tests`); here, that a refusal leaves the record as it is.
    app.act(&future, "reschedule", json!({"date": FRI, "session": "morning"}))
        .await
        .assert_problem(409, "invalid_transition");
    let stored = app.get(&format!("/v1/appointments/{future}")).role(Role::Scheduler).send().await;
    assert_eq!((&stored.body["status"], &stored.body["date"]), (&json!("cancelled"), &json!(THU)));
}

#[actix_web::test]
async fn no_show_after_the_session_began_and_then_nothing_else() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, THU, "morning").await["id"].as_str().unwrap().to_owned();
    // Thursday 08:00 in New York is 13:00 UTC.
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 3, 12, 59, 59).unwrap());
    app.act(&id, "no-show", json!({})).await.assert_problem(409, "invalid_transition");
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap());
    let res = app.act(&id, "no-show", json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "no_show");
    app.act(&id, "check-in", json!({"pain_before": 5}))
        .await
        .assert_problem(409, "invalid_transition");
    app.act(&id, "cancel", json!({"reason": "late"}))
        .await
        .assert_problem(409, "invalid_transition");
}

#[actix_web::test]
async fn a_checked_in_appointment_cannot_be_cancelled_or_marked_no_show() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    app.travel_to(clinic_now() + Duration::hours(4));
    assert_eq!(app.act(&id, "check-in", json!({"pain_before": 7})).await.status, 200);
    for (action, body) in [
        ("check-in", json!({"pain_before": 5})),
        ("cancel", json!({"reason": "x"})),
        ("no-show", json!({})),
        ("reschedule", json!({"date": FRI, "session": "morning"})),
    ] {
        app.act(&id, action, body).await.assert_problem(409, "invalid_transition");
    }
}

#[actix_web::test]
async fn pain_scores_are_0_to_10() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    for bad in [json!(11), json!(-1), json!(7.5), json!("7")] {
        let res = app.act(&id, "check-in", json!({"pain_before": bad})).await;
        res.assert_invalid_fields(&["pain_before"]);
    }
    assert_eq!(app.act(&id, "check-in", json!({"pain_before": 0})).await.status, 200);
    app.complete(&id, json!({"pain_after": 12})).await.assert_invalid_fields(&["pain_after"]);
    let res = app.complete(&id, json!({"pain_after": 10})).await;
    assert_eq!(res.body["pain_after"], 10);
}

#[actix_web::test]
async fn cancelling_needs_a_reason_and_frees_the_slot() {
    let app = TestApp::at_clinic_now().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let p = app.ready_patient().await;
        ids.push(app.booked(&p, THU, "morning").await["id"].as_str().unwrap().to_owned());
    }
    let waiting = app.ready_patient().await;
    app.book(&waiting, THU, "morning").await.assert_problem(409, "slot_full");
    for reason in [json!(""), json!("   "), json!("x".repeat(501))] {
        app.act(&ids[0], "cancel", json!({"reason": reason}))
            .await
            .assert_invalid_fields(&["reason"]);
    }
    app.act(&ids[0], "cancel", json!({})).await.assert_invalid_fields(&["reason"]);
    assert_eq!(app.act(&ids[0], "cancel", json!({"reason": "Travel"})).await.status, 200);
    app.booked(&waiting, THU, "morning").await;
}

#[actix_web::test]
async fn a_patient_cancels_only_its_own() {
    let app = TestApp::at_clinic_now().await;
    let mine = app.ready_patient().await;
    let theirs = app.ready_patient().await;
    let my_appt = app.booked(&mine, THU, "morning").await["id"].as_str().unwrap().to_owned();
    let their_appt = app.booked(&theirs, THU, "morning").await["id"].as_str().unwrap().to_owned();

    let res = app
        .post(&format!("/v1/appointments/{their_appt}/cancel"))
        .patient(&mine)
        .json(&json!({"reason": "not mine"}))
        .send()
        .await;
    res.assert_problem(404, "not_found");
    let res = app
        .post(&format!("/v1/appointments/{their_appt}/cancel"))
        .role(Role::Integration)
        .json(&json!({"reason": "EHR"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .post(&format!("/v1/appointments/{my_appt}/check-in"))
        .patient(&mine)
        .json(&json!({"pain_before": 1}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");

    let res = app
        .post(&format!("/v1/appointments/{my_appt}/cancel"))
        .patient(&mine)
        .json(&json!({"reason": "Cannot make it"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // A patient sees roles, not people; staff see who.
    assert_eq!(res.body["cancelled_by"], "patient");
    let seen = app.get(&format!("/v1/appointments/{my_appt}")).role(Role::Scheduler).send().await;
    assert_eq!(seen.body["cancelled_by"], format!("patient:{mine}"));
    let still =
        app.get(&format!("/v1/appointments/{their_appt}")).role(Role::Scheduler).send().await;
    assert_eq!(still.body["status"], "scheduled");
}

#[actix_web::test]
async fn reschedule_moves_atomically_under_the_booking_rules() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let appt = app.booked(&patient, THU, "morning").await;
    let id = appt["id"].as_str().unwrap();

    let res =
        app.act(id, "reschedule", json!({"date": "2026-12-08", "session": "afternoon"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["id"], id);
    assert_eq!(res.body["date"], "2026-12-08");
    assert_eq!(res.body["session"], "afternoon");
    assert_eq!(res.body["starts_at"], "2026-12-08T13:00:00-05:00");
    assert_eq!(res.body["status"], "scheduled");
    assert_eq!(app.active_in(THU, "morning"), 0, "the old slot is free");

    // Same day, other session: the patient's own appointment is no obstacle.
    let res = app.act(id, "reschedule", json!({"date": "2026-12-08", "session": "morning"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    // Every refusal leaves the appointment where it was.
    app.booked(&patient, "2026-12-09", "morning").await;
    for _ in 0..4 {
        let p = app.ready_patient().await;
        app.booked(&p, "2026-12-10", "morning").await;
    }
    let cases = [
        (json!({"date": SAT, "session": "morning"}), 422, "not_a_clinic_day"),
        (json!({"date": "2026-12-01", "session": "morning"}), 422, "in_the_past"),
        (json!({"date": "2027-07-01", "session": "morning"}), 422, "outside_horizon"),
        (
            json!({"date": "2026-12-09", "session": "afternoon"}),
            409,
            "patient_already_booked_that_day",
        ),
        (json!({"date": "2026-12-10", "session": "morning"}), 409, "slot_full"),
    ];
    for (body, status, code) in cases {
        app.act(id, "reschedule", body).await.assert_problem(status, code);
    }
    let unchanged = app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(unchanged.body["date"], "2026-12-08");
    assert_eq!(unchanged.body["session"], "morning");
    assert_eq!(app.active_in("2026-12-08", "morning"), 1);
}

#[actix_web::test]
async fn unknown_appointments_are_404() {
    let app = TestApp::at_clinic_now().await;
    let id = uuid::Uuid::now_v7().to_string();
    app.get(&format!("/v1/appointments/{id}"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.act(&id, "cancel", json!({"reason": "x"})).await.assert_problem(404, "not_found");
    app.act(&id, "no-show", json!({})).await.assert_problem(404, "not_found");
    app.act(&id, "reschedule", json!({"date": THU, "session": "morning"}))
        .await
        .assert_problem(404, "not_found");
}

async fn listed(app: &TestApp, path: &str, role: Role) -> Vec<String> {
    let res = app.get(path).role(role).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn lists_filter_by_patient_date_and_status() {
    let app = TestApp::at_clinic_now().await;
    let ada = app.ready_patient().await;
    let bob = app.ready_patient().await;
    let a1 = app.booked(&ada, THU, "morning").await["id"].as_str().unwrap().to_owned();
    let a2 = app.booked(&ada, "2026-12-07", "morning").await["id"].as_str().unwrap().to_owned();
    let b1 = app.booked(&bob, THU, "afternoon").await["id"].as_str().unwrap().to_owned();
    app.act(&a2, "cancel", json!({"reason": "Moved away"})).await;

    assert_eq!(
        listed(&app, "/v1/appointments", Role::Scheduler).await,
        vec![a1.clone(), a2.clone(), b1.clone()]
    );
    assert_eq!(
        listed(&app, &format!("/v1/appointments?patient_id={ada}"), Role::Integration).await,
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(
        listed(&app, &format!("/v1/appointments?from={THU}&to={THU}"), Role::Clinician).await,
        vec![a1.clone(), b1.clone()]
    );
    assert_eq!(
        listed(&app, "/v1/appointments?status=cancelled", Role::Admin).await,
        vec![a2.clone()]
    );
    assert_eq!(
        listed(&app, "/v1/appointments?from=2026-12-05", Role::Admin).await,
        vec![a2.clone()]
    );
    let (first, cursor) = {
        let res = app.get("/v1/appointments?limit=2").role(Role::Scheduler).send().await;
        (
            res.body["items"].as_array().unwrap().len(),
            res.body["next_cursor"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(first, 2);
    assert_eq!(
        listed(&app, &format!("/v1/appointments?limit=2&cursor={cursor}"), Role::Scheduler).await,
        vec![b1.clone()]
    );

    // A patient lists only its own, and asking for another's is 404.
    let res = app.get("/v1/appointments").patient(&ada).send().await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 2);
    app.get(&format!("/v1/appointments?patient_id={bob}"))
        .patient(&ada)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/appointments/{b1}"))
        .patient(&ada)
        .send()
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.get(&format!("/v1/appointments/{a1}")).patient(&ada).send().await.status, 200);

    for (path, field) in [
        ("/v1/appointments?status=done", "status"),
        ("/v1/appointments?from=yesterday", "from"),
        (&format!("/v1/appointments?from={FRI}&to={THU}"), "to"),
    ] {
        app.get(path).role(Role::Scheduler).send().await.assert_invalid_fields(&[field]);
    }
}

#[actix_web::test]
async fn a_session_that_has_begun_cannot_be_cancelled() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, THU, "morning").await["id"].as_str().unwrap().to_owned();
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap());
    let res = app.act(&id, "cancel", json!({"reason": "too late"})).await;
    res.assert_problem(409, "invalid_transition");
    assert!(res.body["detail"].as_str().unwrap().contains("no-show"));
    let res = app
        .post(&format!("/v1/appointments/{id}/cancel"))
        .patient(&patient)
        .json(&json!({"reason": "overslept"}))
        .send()
        .await;
    res.assert_problem(409, "invalid_transition");
    assert_eq!(app.act(&id, "no-show", json!({})).await.status, 200);
}

#[actix_web::test]
async fn a_contraindication_found_after_booking_stops_check_in() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    app.screen(&patient, &["uncontrolled_hypertension"], &[]).await;
    // A scheduler checks the patient in, and learns only that a screening stops it.
    let res = app.act_as(Role::Scheduler, &id, "check-in", json!({})).await;
    let problem = res.assert_problem(409, "not_ready");
    assert_eq!(problem["items"][0]["code"], "screening");
    assert!(!res.text.contains("hypertension"), "{}", res.text);
    app.screen(&patient, &[], &[]).await;
    assert_eq!(app.act(&id, "check-in", json!({"pain_before": 6})).await.status, 200);
}

/// A move is not a new course: a screening that has gone stale since does
/// not stop it, but a contraindication found since booking does, as it
/// would stop the check-in.
#[actix_web::test]
async fn a_contraindication_found_after_booking_stops_rescheduling_too() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    // Friday 8 January 2027, booked while the screening is fresh.
    let id = app.booked(&patient, "2027-01-08", "morning").await["id"].as_str().unwrap().to_owned();
    // Tuesday 5 January: the screening of 2 December is past its 30 days.
    app.travel_to(Utc.with_ymd_and_hms(2027, 1, 5, 15, 0, 0).unwrap());
    app.book(&patient, "2027-01-06", "morning").await.assert_problem(409, "not_ready");
    let move_to = |date: &str| json!({"date": date, "session": "afternoon"});
    let moved = app.act(&id, "reschedule", move_to("2027-01-07")).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["date"], "2027-01-07");

    app.screen(&patient, &["uncontrolled_hypertension"], &[]).await;
    let res = app.act_as(Role::Scheduler, &id, "reschedule", move_to("2027-01-08")).await;
    let problem = res.assert_problem(409, "not_ready");
    assert_eq!(problem["items"][0]["code"], "screening");
    assert!(!res.text.contains("hypertension"), "{}", res.text);
    let stored = app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(stored.body["date"], "2027-01-07", "a refused move changes nothing");
}

#[actix_web::test]
async fn a_returning_patient_newly_on_lamotrigine_waits_for_the_consult() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let first = app.booked(&patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.act(&first, "check-in", json!({"pain_before": 8})).await.status, 200);
    assert_eq!(app.complete(&first, json!({"pain_after": 4})).await.status, 200);

    app.screen(&patient, &[], &["Subvenite 25 mg"]).await;
    let next = app.booked(&patient, THU, "morning").await["id"].as_str().unwrap().to_owned();
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 3, 12, 30, 0).unwrap());
    let res = app.act(&next, "check-in", json!({"pain_before": 7})).await;
    let problem = res.assert_problem(409, "not_ready");
    assert_eq!(problem["items"][0]["code"], "lamotrigine_prescriber_consult");
}

/// On PostgreSQL, the statements of a booking's cancel and of the locks a
/// booking takes stay prepared on their connection (pgbench's ceiling
/// prepares its own): a row's hold, returning the row, an appointment's
/// change, and the slots' locks, whose keys are bound, not written in. A
/// hold locks the row without writing a version of it.
#[actix_web::test]
async fn a_writes_statements_stay_prepared_on_postgres() {
    use diesel::RunQueryDsl;
    use infusion_api::domain::calendar::Session;
    use infusion_api::store::{appointments, locks, patients};

    #[derive(diesel::QueryableByName)]
    struct Statement {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        xmin: String,
    }
    let app = TestApp::spawn().await;
    if !app.is_postgres() {
        return; // SQLite's statements are not listed anywhere to check.
    }
    let patient = app.create_patient(crate::helpers::patient_body()).await;
    let patient_id = patient["id"].as_str().unwrap();
    let version = |conn: &mut infusion_api::store::DbConnection| {
        diesel::sql_query("SELECT xmin::text AS xmin FROM patients WHERE id = $1")
            .bind::<diesel::sql_types::Text, _>(patient_id)
            .get_result::<Version>(conn)
            .unwrap()
            .xmin
    };
    let mut conn = app.pool.get().unwrap();
    let before = version(&mut conn);
    diesel::sql_query("BEGIN").execute(&mut **conn).unwrap();
    for day in [3, 4] {
        let date = clinic_now().date_naive() + Duration::days(day);
        locks::lock_slots(&mut conn, [(date, Session::Morning), (date, Session::Afternoon)])
            .unwrap();
        patients::lock(&mut conn, patient_id).unwrap();
        assert!(appointments::hold(&mut conn, &uuid::Uuid::now_v7().to_string()).is_err());
    }
    assert_eq!(version(&mut conn), before, "a hold wrote a version of the patient's row");
    let prepared: Vec<Statement> = diesel::sql_query(
        "SELECT statement FROM pg_prepared_statements WHERE NOT from_sql ORDER BY statement",
    )
    .load(&mut **conn)
    .unwrap();
    diesel::sql_query("ROLLBACK").execute(&mut **conn).unwrap();

    for (start, end) in [
        (r#"SELECT count(CASE WHEN s = 1504"#, ""),
        (r#"SELECT "patients"."id" FROM "patients""#, "FOR NO KEY UPDATE"),
        (r#"SELECT "appointments"."id", "appointments"."patient_id""#, "FOR NO KEY UPDATE"),
    ] {
        let kept = prepared
            .iter()
            .filter(|p| p.statement.starts_with(start) && p.statement.ends_with(end))
            .count();
        assert_eq!(kept, 1, "{start} … {end}: {kept} prepared statements");
    }
}
