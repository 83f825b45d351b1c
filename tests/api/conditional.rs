//! Conditional requests (RFC 9110 §13) through the API: every resource read
//! and every write answer carries an `ETag` that changes with the resource;
//! `If-None-Match` answers 304; `If-Match` on a write that names a version
//! the resource no longer has is 412 `precondition_failed` and changes nothing.

use chrono::Duration;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{clinic_now, patient_body, referral, TestApp, TestResponse};

#[track_caller]
fn etag(res: &TestResponse) -> String {
    let tag = res.header("etag").unwrap_or_else(|| panic!("no ETag: {}", res.text));
    assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"), "{tag}");
    tag.to_owned()
}

#[actix_web::test]
async fn every_resource_read_carries_an_etag_that_its_writes_answer_and_change() {
    let app = TestApp::at_clinic_now().await;
    let created = app.post("/v1/patients").role(Role::Clinician).json(&patient_body()).send().await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    let read = app.get(&path).role(Role::Clinician).send().await;
    // The answer to the write is the resource as a read shows it: same tag.
    assert_eq!(etag(&read), etag(&created));
    let changed = app.patch(&path).role(Role::Clinician).json(&json!({"phone": null})).send().await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_ne!(etag(&changed), etag(&read));
    assert_eq!(etag(&app.get(&path).role(Role::Clinician).send().await), etag(&changed));

    // Every single-resource read of the contract, found, carries one.
    let patient = app.ready_patient().await;
    let appointment =
        app.booked(&patient, "2026-12-03", "morning").await["id"].as_str().unwrap().to_owned();
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let mut read = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        if item.get("get").is_none() || !template.ends_with('}') {
            continue;
        }
        let path = if template.starts_with("/v1/appointments/") {
            template.replace("{id}", &appointment)
        } else {
            template.replace("{id}", &patient).replace("{code}", "pain-5-day")
        };
        let res = app.get(&path).role(Role::Admin).send().await;
        if res.status == 200 {
            etag(&res);
            read += 1;
        }
    }
    assert!(read >= 3, "{read}");
}

#[actix_web::test]
async fn a_read_whose_if_none_match_names_the_current_tag_is_304_without_a_body() {
    let app = TestApp::at_clinic_now().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    let tag = etag(&app.get(&path).role(Role::Scheduler).send().await);
    for field in [tag.clone(), format!("W/{tag}"), "\"other\", ".to_owned() + &tag, "*".into()] {
        let res = app.get(&path).role(Role::Scheduler).header("if-none-match", &field).send().await;
        assert_eq!(res.status, 304, "{field}: {}", res.text);
        assert_eq!(res.text, "");
        assert_eq!(res.header("etag"), Some(tag.as_str()));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert_eq!(res.header("content-type"), None);
    }
    let stale =
        app.get(&path).role(Role::Scheduler).header("if-none-match", "\"old\"").send().await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body["id"], id.as_str());
    // Authorization still comes first: a stranger's tag guess is answered 401/404.
    let res = app.get(&path).header("if-none-match", &tag).send().await;
    res.assert_problem(401, "unauthorized");
    let other = app.get(&path).role(Role::Patient).header("if-none-match", &tag).send().await;
    other.assert_problem(404, "not_found");
}

/// The scenario: two staff read a patient and both PATCH with the
/// tag they read; the second gets 412 and nothing of it is stored.
#[actix_web::test]
async fn the_second_of_two_edits_from_the_same_version_is_412_and_stores_nothing() {
    let app = TestApp::at_clinic_now().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    let read_a = app.get(&path).role(Role::Scheduler).send().await;
    let read_b = app.get(&path).role(Role::Scheduler).send().await;
    let first = app
        .patch(&path)
        .role(Role::Scheduler)
        .header("if-match", &etag(&read_a))
        .json(&json!({"phone": "+1 555 010 1111"}))
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = app
        .patch(&path)
        .role(Role::Scheduler)
        .header("if-match", &etag(&read_b))
        .json(&json!({"email": "second@example.org"}))
        .send()
        .await;
    second.assert_problem(412, "precondition_failed");
    let now = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(now.body["phone"], "+1 555 010 1111");
    assert_eq!(now.body["email"], read_a.body["email"]);
    assert_eq!(etag(&now), etag(&first));
    // With the tag of what is there now, the edit goes through.
    let retried = app
        .patch(&path)
        .role(Role::Scheduler)
        .header("if-match", &etag(&now))
        .json(&json!({"email": "second@example.org"}))
        .send()
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    // A weak tag never matches (strong comparison), `*` matches any version.
    let weak = format!("W/{}", etag(&retried));
    clear_phone(&app, &path, "if-match", &weak).await.assert_problem(412, "precondition_failed");
    let res = clear_phone(&app, &path, "if-match", "*").await;
    assert_eq!(res.status, 200, "{}", res.text);
    // An unknown patient is 404 before any condition.
    let res = app
        .patch("/v1/patients/019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b")
        .role(Role::Scheduler)
        .header("if-match", "\"x\"")
        .json(&json!({"phone": null}))
        .send()
        .await;
    res.assert_problem(404, "not_found");
}

/// Sends `action` twice: with a stale `If-Match` (412, nothing changes), then
/// with the tag of `current` (it goes through).
async fn stale_then_current(
    app: &TestApp,
    role: Role,
    path: &str,
    body: Option<Value>,
    current: &str,
    read: &str,
) {
    let send = |tag: &str| {
        let request = app.post(path).role(role).header("if-match", tag);
        match &body {
            Some(body) => request.json(body),
            None => request,
        }
        .send()
    };
    let before = app.get(read).role(Role::Admin).send().await;
    send("\"0000\"").await.assert_problem(412, "precondition_failed");
    let after = app.get(read).role(Role::Admin).send().await;
    assert_eq!(after.text, before.text, "{path} changed under a failed condition");
    let res = send(current).await;
    assert!(res.status == 200, "{path}: {}", res.text);
}

#[actix_web::test]
async fn every_action_honours_if_match() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let tag_of = |res: TestResponse| etag(&res);

    // Appointments: cancel, reschedule, check-in, complete, no-show.
    for (action, body) in [
        ("cancel", Some(json!({"reason": "Patient has a fever"}))),
        ("reschedule", Some(json!({"date": "2026-12-04", "session": "afternoon"}))),
    ] {
        let booked = app.book(&patient, "2026-12-03", "morning").await;
        let id = booked.body["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/appointments/{id}");
        let current = tag_of(app.get(&path).role(Role::Scheduler).send().await);
        stale_then_current(
            &app,
            Role::Scheduler,
            &format!("{path}/{action}"),
            body,
            &current,
            &path,
        )
        .await;
        if action == "reschedule" {
            app.act(&id, "cancel", json!({"reason": "done"})).await;
        }
    }
    let today =
        app.booked(&patient, "2026-12-02", "afternoon").await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/appointments/{today}");
    let current = tag_of(app.get(&path).role(Role::Clinician).send().await);
    let check_in = Some(json!({"pain_before": 7}));
    stale_then_current(
        &app,
        Role::Clinician,
        &format!("{path}/check-in"),
        check_in,
        &current,
        &path,
    )
    .await;
    let clinician = app.billing_ready().await;
    let current = tag_of(app.get(&path).role(Role::Clinician).send().await);
    let complete =
        Some(json!({"pain_after": 3, "clinician_id": clinician, "infusion_minutes": 60}));
    stale_then_current(
        &app,
        Role::Clinician,
        &format!("{path}/complete"),
        complete,
        &current,
        &path,
    )
    .await;
    let missed =
        app.booked(&patient, "2026-12-03", "morning").await["id"].as_str().unwrap().to_owned();
    app.travel_to(clinic_now() + Duration::days(1));
    let path = format!("/v1/appointments/{missed}");
    let current = tag_of(app.get(&path).role(Role::Scheduler).send().await);
    stale_then_current(&app, Role::Scheduler, &format!("{path}/no-show"), None, &current, &path)
        .await;

    // Referrals: verify, reject.
    for (action, body) in
        [("verify", None), ("reject", Some(json!({"reason": "Illegible letter"})))]
    {
        let letter = app
            .post(&format!("/v1/patients/{patient}/referrals"))
            .role(Role::Scheduler)
            .json(&referral("pain_management"))
            .send()
            .await;
        let path = letter.header("location").unwrap().to_owned();
        let current = tag_of(app.get(&path).role(Role::Clinician).send().await);
        stale_then_current(
            &app,
            Role::Clinician,
            &format!("{path}/{action}"),
            body,
            &current,
            &path,
        )
        .await;
    }
}

#[actix_web::test]
async fn course_cancel_protocol_and_room_changes_honour_if_match() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let course = app
        .post("/v1/courses")
        .role(Role::Scheduler)
        .json(&json!({"patient_id": patient, "protocol": "pain-5-day", "session": "morning", "earliest_start": "2026-12-02"}))
        .send()
        .await;
    assert_eq!(course.status, 201, "{}", course.text);
    let path = course.header("location").unwrap().to_owned();
    let read = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(etag(&read), etag(&course));
    let body = Some(json!({"reason": "Patient moved away"}));
    stale_then_current(&app, Role::Scheduler, &format!("{path}/cancel"), body, &etag(&read), &path)
        .await;

    // A protocol: PUT under a stale tag is 412 and the protocol is as it was.
    let path = "/v1/protocols/pain-5-day";
    let read = app.get(path).role(Role::Admin).send().await;
    let mut change = read.body.clone();
    change.as_object_mut().unwrap().remove("code");
    let put = |tag: &str| {
        app.request(actix_web::http::Method::PUT, path)
            .role(Role::Admin)
            .header("if-match", tag)
            .json(&change)
            .send()
    };
    put("\"0000\"").await.assert_problem(412, "precondition_failed");
    let res = put(&etag(&read)).await;
    assert_eq!(res.status, 200, "{}", res.text);

    // A room: the tag of its last answer.
    let room =
        app.post("/v1/rooms").role(Role::Admin).json(&json!({"name": "Room 9"})).send().await;
    let path = room.header("location").unwrap().to_owned();
    let rename = |tag: &str, name: &str| {
        app.patch(&path)
            .role(Role::Admin)
            .header("if-match", tag)
            .json(&json!({"name": name}))
            .send()
    };
    rename("\"0000\"", "Room 10").await.assert_problem(412, "precondition_failed");
    let renamed = rename(&etag(&room), "Room 10").await;
    assert_eq!(renamed.body["name"], "Room 10");
    rename(&etag(&room), "Room 11").await.assert_problem(412, "precondition_failed");
}

/// A tag is of the representation: an integration, which reads an
/// appointment without its scores, gets another tag than a clinician.
#[actix_web::test]
async fn each_representation_has_its_own_tag() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, "2026-12-03", "morning").await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/appointments/{id}");
    let clinician = app.get(&path).role(Role::Clinician).send().await;
    let integration = app.get(&path).role(Role::Integration).send().await;
    assert_ne!(etag(&clinician), etag(&integration));
    // And each is stable while nothing changes.
    assert_eq!(etag(&app.get(&path).role(Role::Integration).send().await), etag(&integration));
}

/// The contract says what the layers do: every `/v1` read takes
/// `If-None-Match` and may answer 304; every write takes `Idempotency-Key`
/// and documents its 400, 409 and 422; the writes that honour `If-Match`
/// say so, with 412; success answers carry `ETag`.
#[actix_web::test]
async fn the_contract_documents_keys_tags_and_conditions() {
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let names = |op: &Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    let codes = |response: &Value| -> Vec<String> {
        let content = &response["content"]["application/problem+json"];
        match content.get("example") {
            Some(example) => vec![example["code"].as_str().unwrap().to_owned()],
            None => content["examples"].as_object().unwrap().keys().cloned().collect(),
        }
    };
    let mut conditional = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let responses = &op["responses"];
            if method == "get" {
                assert!(names(op).contains(&"If-None-Match".to_owned()), "{id}");
                assert!(responses["304"]["headers"]["ETag"].is_object(), "{id}");
                assert!(responses["200"]["headers"]["ETag"].is_object(), "{id}");
                continue;
            }
            if id == "plan_course" {
                assert!(!names(op).contains(&"Idempotency-Key".to_owned()));
                continue;
            }
            assert!(names(op).contains(&"Idempotency-Key".to_owned()), "{id}");
            assert!(
                codes(&responses["400"]).contains(&"invalid_idempotency_key".to_owned()),
                "{id}"
            );
            assert!(
                codes(&responses["409"]).contains(&"idempotency_key_in_flight".to_owned()),
                "{id}"
            );
            assert!(
                codes(&responses["422"]).contains(&"idempotency_key_reused".to_owned()),
                "{id}"
            );
            if names(op).contains(&"If-Match".to_owned()) {
                assert_eq!(codes(&responses["412"]), ["precondition_failed"], "{id}");
                conditional.push(id.to_owned());
            }
        }
    }
    conditional.sort();
    assert_eq!(
        conditional,
        [
            "cancel_appointment",
            "cancel_course",
            "check_in_appointment",
            "complete_appointment",
            "delete_closure",
            "no_show_appointment",
            "reject_referral",
            "reschedule_appointment",
            "update_clinician",
            "update_patient",
            "update_protocol",
            "update_room",
            "verify_referral",
        ]
    );
}

/// A clinician changed with a stale `If-Match` is left as it was (412); with
/// the current tag the change is made.
#[actix_web::test]
async fn a_clinician_is_changed_only_in_the_version_named() {
    let app = TestApp::at_clinic_now().await;
    let id = app.billing_ready().await;
    let path = format!("/v1/clinicians/{id}");
    let read = app.get(&path).role(Role::Admin).send().await;
    let current = etag(&read);
    let change = |tag: &str| {
        app.patch(&path).role(Role::Admin).header("if-match", tag).json(&json!({"active": false}))
    };
    change("\"0000\"").send().await.assert_problem(412, "precondition_failed");
    let after = app.get(&path).role(Role::Admin).send().await;
    assert_eq!(after.body["active"], true, "a failed condition changes nothing");
    let res = change(&current).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["active"], false);
}

/// `If-None-Match` on a write: a match is 412 (RFC 9110 §13.1.2), so
/// `If-None-Match: *` changes nothing that exists.
#[actix_web::test]
async fn if_none_match_on_a_write_refuses_the_versions_it_names() {
    let app = TestApp::at_clinic_now().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    let tag = etag(&app.get(&path).role(Role::Scheduler).send().await);
    for field in ["*", tag.as_str()] {
        let res = clear_phone(&app, &path, "if-none-match", field).await;
        res.assert_problem(412, "precondition_failed");
    }
    let res = clear_phone(&app, &path, "if-none-match", "\"other\"").await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A scheduler's `PATCH` of the patient at `path` clearing its phone, under
/// the condition `field: value`.
async fn clear_phone(app: &TestApp, path: &str, field: &str, value: &str) -> TestResponse {
    let request = app.patch(path).role(Role::Scheduler).header(field, value);
    request.json(&json!({"phone": null})).send().await
}

/// Deleting a closure under a stale tag is 412 and the date stays closed.
#[actix_web::test]
async fn a_closure_is_deleted_only_in_the_version_named() {
    let app = TestApp::at_clinic_now().await;
    let created = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-24", "reason": "Holiday"}))
        .send()
        .await;
    let path = created.header("location").unwrap().to_owned();
    let delete = |tag: &str| {
        app.request(actix_web::http::Method::DELETE, &path)
            .role(Role::Admin)
            .header("if-match", tag)
            .send()
    };
    delete("\"0000\"").await.assert_problem(412, "precondition_failed");
    assert_eq!(app.count("closures"), 1);
    assert_eq!(delete(&etag(&created)).await.status, 204);
    assert_eq!(app.count("closures"), 0);
}

/// Two admins change one room from the same version at once: one wins, the
/// other is 412 (the row is held while the tag is compared, on both backends).
#[actix_web::test]
async fn concurrent_changes_from_one_version_let_one_through() {
    let app = TestApp::at_clinic_now().await;
    let room =
        app.post("/v1/rooms").role(Role::Admin).json(&json!({"name": "Room 9"})).send().await;
    let path = room.header("location").unwrap().to_owned();
    let tag = etag(&room);
    let requests = (0..20)
        .map(|i| {
            app.patch(&path)
                .role(Role::Admin)
                .header("if-match", &tag)
                .json(&json!({"name": format!("Room {}", 10 + i)}))
        })
        .collect();
    let answers = app.send_all(requests).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 19, "{statuses:?}");

    let read = app.get("/v1/protocols/pain-5-day").role(Role::Admin).send().await;
    let mut change = read.body.clone();
    change.as_object_mut().unwrap().remove("code");
    let requests = (0..12)
        .map(|i| {
            let mut change = change.clone();
            change["name"] = json!(format!("Chronic pain, 5 days ({i})"));
            app.request(actix_web::http::Method::PUT, "/v1/protocols/pain-5-day")
                .role(Role::Admin)
                .header("if-match", &etag(&read))
                .json(&change)
        })
        .collect();
    let statuses: Vec<u16> = app.send_all(requests).await.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 11, "{statuses:?}");
}
