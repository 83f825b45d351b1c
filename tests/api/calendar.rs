//! Rooms, closures and availability.

use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::TestApp;

const ROOM_1: &str = "019ac5a0-0000-7000-8000-000000000001";

async fn slots(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app.get(&format!("/v1/availability?{query}")).role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body.as_array().unwrap().clone()
}

#[actix_web::test]
async fn four_rooms_are_seeded_and_staff_read_them() {
    let app = TestApp::at_clinic_now().await;
    for role in [Role::Admin, Role::Clinician, Role::Scheduler] {
        let res = app.get("/v1/rooms").role(role).send().await;
        assert_eq!(res.status, 200);
        let names: Vec<&str> = res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Room 1", "Room 2", "Room 3", "Room 4"]);
    }
    for role in [Role::Integration, Role::Patient] {
        app.get("/v1/rooms").role(role).send().await.assert_problem(403, "forbidden");
    }
}

#[actix_web::test]
async fn admins_add_and_rename_rooms_with_unique_names() {
    let app = TestApp::at_clinic_now().await;
    let res =
        app.post("/v1/rooms").role(Role::Admin).json(&json!({"name": " Room 5 "})).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["name"], "Room 5");
    assert_eq!(res.body["active"], true);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/v1/rooms/{id}").as_str()));

    app.post("/v1/rooms")
        .role(Role::Admin)
        .json(&json!({"name": "Room 1"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.post("/v1/rooms")
        .role(Role::Admin)
        .json(&json!({"name": ""}))
        .send()
        .await
        .assert_invalid_fields(&["name"]);
    app.post("/v1/rooms")
        .role(Role::Scheduler)
        .json(&json!({"name": "Room 6"}))
        .send()
        .await
        .assert_problem(403, "forbidden");

    let res = app
        .patch(&format!("/v1/rooms/{id}"))
        .role(Role::Admin)
        .json(&json!({"name": "Garden room"}))
        .send()
        .await;
    assert_eq!(res.body["name"], "Garden room");
    let res = app
        .patch(&format!("/v1/rooms/{id}"))
        .role(Role::Admin)
        .json(&json!({"name": "Room 2"}))
        .send()
        .await;
    res.assert_problem(409, "conflict");
    let missing = uuid::Uuid::now_v7();
    app.patch(&format!("/v1/rooms/{missing}"))
        .role(Role::Admin)
        .json(&json!({"active": false}))
        .send()
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.count("rooms"), 5);
}

#[actix_web::test]
async fn a_room_with_scheduled_appointments_cannot_be_deactivated() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let appt = app.booked(&patient, "2026-12-03", "morning").await;
    assert_eq!(appt["room_id"], ROOM_1);
    let path = format!("/v1/rooms/{ROOM_1}");

    let res = app.patch(&path).role(Role::Admin).json(&json!({"active": false})).send().await;
    res.assert_problem(409, "conflict");
    assert_eq!(res.body["appointment_ids"], json!([appt["id"]]));
    assert_eq!(
        slots(&app, "from=2026-12-07&to=2026-12-07&session=morning").await[0]["capacity"],
        4
    );

    app.act(appt["id"].as_str().unwrap(), "cancel", json!({"reason": "Room maintenance"})).await;
    let res = app.patch(&path).role(Role::Admin).json(&json!({"active": false})).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["active"], false);
    assert_eq!(
        slots(&app, "from=2026-12-07&to=2026-12-07&session=morning").await[0]["capacity"],
        3
    );
    // Bookings now go to the other rooms.
    assert_ne!(app.booked(&patient, "2026-12-07", "morning").await["room_id"], ROOM_1);
    let res = app.patch(&path).role(Role::Admin).json(&json!({"active": true})).send().await;
    assert_eq!(res.body["active"], true);
}

#[actix_web::test]
async fn closures_remove_slots_and_refuse_booked_dates() {
    let app = TestApp::at_clinic_now().await;
    let res = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-24", "reason": "Christmas Eve"}))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/v1/closures/{id}").as_str()));
    assert_eq!(res.body["date"], "2026-12-24");

    app.post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-24", "reason": "Twice"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    let patient = app.ready_patient().await;
    app.book(&patient, "2026-12-24", "morning").await.assert_problem(422, "clinic_closed");
    assert!(slots(&app, "from=2026-12-24&to=2026-12-24").await.is_empty());

    // A date with appointments is not closed behind their backs.
    let appt = app.booked(&patient, "2026-12-23", "afternoon").await;
    let res = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-23", "reason": "Flood"}))
        .send()
        .await;
    res.assert_problem(409, "conflict");
    assert_eq!(res.body["appointment_ids"], json!([appt["id"]]));

    for (body, field) in [
        (json!({"date": "2026-12-01", "reason": "Past"}), "date"),
        (json!({"date": "2026-12-28", "reason": ""}), "reason"),
        (json!({"date": "2026-12-28"}), "reason"),
    ] {
        app.post("/v1/closures")
            .role(Role::Admin)
            .json(&body)
            .send()
            .await
            .assert_invalid_fields(&[field]);
    }
    app.post("/v1/closures")
        .role(Role::Scheduler)
        .json(&json!({"date": "2026-12-28", "reason": "x"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(app.count("closures"), 1);

    let listed =
        app.get("/v1/closures?from=2026-12-01&to=2026-12-31").role(Role::Clinician).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let none = app.get("/v1/closures?from=2027-01-01").role(Role::Clinician).send().await;
    assert!(none.body["items"].as_array().unwrap().is_empty());

    app.request(actix_web::http::Method::DELETE, &format!("/v1/closures/{id}"))
        .role(Role::Scheduler)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let res = app
        .request(actix_web::http::Method::DELETE, &format!("/v1/closures/{id}"))
        .role(Role::Admin)
        .send()
        .await;
    assert_eq!(res.status, 204);
    let res = app
        .request(actix_web::http::Method::DELETE, &format!("/v1/closures/{id}"))
        .role(Role::Admin)
        .send()
        .await;
    res.assert_problem(404, "not_found");
    app.booked(&app.ready_patient().await, "2026-12-24", "morning").await;
}

#[actix_web::test]
async fn availability_lists_clinic_sessions_with_capacity_and_bookings() {
    let app = TestApp::at_clinic_now().await;
    app.post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-09", "reason": "Training"}))
        .send()
        .await;
    for _ in 0..3 {
        let p = app.ready_patient().await;
        app.booked(&p, "2026-12-08", "morning").await;
    }
    let p = app.ready_patient().await;
    let cancelled = app.booked(&p, "2026-12-08", "afternoon").await;
    app.act(cancelled["id"].as_str().unwrap(), "cancel", json!({"reason": "x"})).await;

    // Saturday 5 to Sunday 13 December: weekends and the closure have no slots.
    let all = slots(&app, "from=2026-12-05&to=2026-12-13").await;
    let days: Vec<(&str, &str)> =
        all.iter().map(|s| (s["date"].as_str().unwrap(), s["session"].as_str().unwrap())).collect();
    assert_eq!(
        days,
        [
            ("2026-12-07", "morning"),
            ("2026-12-07", "afternoon"),
            ("2026-12-08", "morning"),
            ("2026-12-08", "afternoon"),
            ("2026-12-10", "morning"),
            ("2026-12-10", "afternoon"),
            ("2026-12-11", "morning"),
            ("2026-12-11", "afternoon"),
        ]
    );
    assert_eq!(
        all[2],
        json!({"date": "2026-12-08", "session": "morning", "starts_at": "2026-12-08T08:00:00-05:00",
               "ends_at": "2026-12-08T12:00:00-05:00", "capacity": 4, "booked": 3, "free": 1})
    );
    assert_eq!(all[3]["booked"], 0, "a cancelled appointment frees its room");
    let mornings = slots(&app, "from=2026-12-07&to=2026-12-11&session=morning").await;
    assert_eq!(mornings.len(), 4);
    assert!(mornings.iter().all(|s| s["session"] == "morning"));

    // Default range: today and the next 27 days.
    let default = slots(&app, "").await;
    assert_eq!(default.first().unwrap()["date"], "2026-12-02");
    assert!(default.last().unwrap()["date"].as_str().unwrap() <= "2026-12-30");

    // Integrations read availability; patients do not.
    assert_eq!(app.get("/v1/availability").role(Role::Integration).send().await.status, 200);
    app.get("/v1/availability").role(Role::Patient).send().await.assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn availability_ranges_are_bounded() {
    let app = TestApp::at_clinic_now().await;
    assert!(!slots(&app, "from=2026-12-01&to=2027-03-04").await.is_empty()); // 93 days
    for (query, field) in [
        ("from=2026-12-01&to=2027-03-05", "to"),
        ("from=2026-12-10&to=2026-12-01", "to"),
        ("from=someday", "from"),
        ("session=evening", "session"),
    ] {
        let res = app.get(&format!("/v1/availability?{query}")).role(Role::Scheduler).send().await;
        res.assert_invalid_fields(&[field]);
    }
}

#[actix_web::test]
async fn availability_starts_at_crosses_dst() {
    let app = TestApp::at_clinic_now().await;
    let week = slots(&app, "from=2027-03-12&to=2027-03-15&session=afternoon").await;
    let starts: Vec<&str> = week.iter().map(|s| s["starts_at"].as_str().unwrap()).collect();
    assert_eq!(starts, ["2027-03-12T13:00:00-05:00", "2027-03-15T13:00:00-04:00"]);
    let ends: Vec<&str> = week.iter().map(|s| s["ends_at"].as_str().unwrap()).collect();
    assert_eq!(ends, ["2027-03-12T17:00:00-05:00", "2027-03-15T17:00:00-04:00"]);
}

#[actix_web::test]
async fn availability_lists_only_what_can_still_be_booked() {
    let app = TestApp::at_clinic_now().await;
    // It is Wednesday 10:00: this morning has begun, this afternoon has not.
    let today = slots(&app, "from=2026-12-01&to=2026-12-02").await;
    let days: Vec<(&str, &str)> = today
        .iter()
        .map(|s| (s["date"].as_str().unwrap(), s["session"].as_str().unwrap()))
        .collect();
    assert_eq!(days, [("2026-12-02", "afternoon")]);
    // The horizon ends on Wednesday 2 June 2027.
    let edge = slots(&app, "from=2027-06-01&to=2027-06-04").await;
    let dates: Vec<&str> = edge.iter().map(|s| s["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2027-06-01", "2027-06-01", "2027-06-02", "2027-06-02"]);
}
