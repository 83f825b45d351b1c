//! `Idempotency-Key` through the API (IETF draft-ietf-httpapi-idempotency-key-header):
//! a retried write is answered with the first answer and changes nothing;
//! a key is the caller's own; a reused key, a key in flight and a malformed
//! key are refused; the stored answer commits with the change or not at all.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{clinic_now, patient_body, with, TestApp, TestResponse};

const KEY: &str = "idempotency-key";

fn course(patient: &str) -> Value {
    json!({"patient_id": patient, "protocol": "pain-5-day", "session": "morning",
           "earliest_start": "2026-12-02"})
}

/// A clinician's registration of [`patient_body`] with the key `key`.
async fn create_keyed(app: &TestApp, key: &str) -> TestResponse {
    app.post("/v1/patients")
        .role(Role::Clinician)
        .header(KEY, key)
        .json(&patient_body())
        .send()
        .await
}

#[track_caller]
fn assert_replay_of(replay: &TestResponse, first: &TestResponse) {
    assert_eq!(replay.status, first.status, "{}", replay.text);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(replay.header("etag"), first.header("etag"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn a_retried_booking_is_answered_with_the_first_answer_and_books_once() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let send = || app.booking(&patient, "2026-12-03", "morning").header(KEY, "book-17").send();
    let first = send().await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = send().await;
    assert_replay_of(&again, &first);
    assert_eq!(app.count("appointments"), 1);
    // The draft's form, a quoted string, names the same key.
    let quoted =
        app.booking(&patient, "2026-12-03", "morning").header(KEY, "\"book-17\"").send().await;
    assert_replay_of(&quoted, &first);
    // Without a key, the same request is a second booking: refused for the day.
    let unkeyed = app.book(&patient, "2026-12-03", "morning").await;
    unkeyed.assert_problem(409, "patient_already_booked_that_day");
}

#[actix_web::test]
async fn an_action_retried_with_its_key_is_not_refused_as_a_second_action() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let id = app.booked(&patient, "2026-12-03", "morning").await["id"].as_str().unwrap().to_owned();
    let cancel = || {
        app.post(&format!("/v1/appointments/{id}/cancel"))
            .role(Role::Scheduler)
            .header(KEY, "cancel-1")
            .json(&json!({"reason": "Patient has a fever"}))
            .send()
    };
    let first = cancel().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "cancelled");
    // Without the key this would be 409 invalid_transition: the network
    // lost the first answer, not the cancellation.
    assert_replay_of(&cancel().await, &first);
    // No-show has no body: the key covers it too.
    let other =
        app.booked(&patient, "2026-12-04", "morning").await["id"].as_str().unwrap().to_owned();
    app.travel_to(clinic_now() + Duration::days(2));
    let no_show = || {
        app.post(&format!("/v1/appointments/{other}/no-show"))
            .role(Role::Scheduler)
            .header(KEY, "no-show-1")
            .send()
    };
    let first = no_show().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_replay_of(&no_show().await, &first);
}

#[actix_web::test]
async fn a_key_sent_with_another_request_is_422_and_changes_nothing() {
    let app = TestApp::at_clinic_now().await;
    let first = create_keyed(&app, "k-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let renamed = with(patient_body(), json!({"given_name": "Grace"}));
    let other_body = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .header(KEY, "k-1")
        .json(&renamed)
        .send()
        .await;
    other_body.assert_problem(422, "idempotency_key_reused");
    let other_path = app
        .post("/v1/rooms")
        .role(Role::Admin)
        .header(KEY, "k-1")
        .json(&json!({"name": "Room 9"}))
        .send()
        .await;
    // Another caller (an admin token): its own key space, so this one runs.
    assert_eq!(other_path.status, 201, "{}", other_path.text);
    let rooms = app.count("rooms");
    let other_path = app
        .post(&format!("/v1/patients/{}/referrals", first.body["id"].as_str().unwrap()))
        .role(Role::Clinician)
        .header(KEY, "k-1")
        .json(&crate::helpers::referral("pain_management"))
        .send()
        .await;
    other_path.assert_problem(422, "idempotency_key_reused");
    assert_eq!((app.count("patients"), app.count("referrals"), app.count("rooms")), (1, 0, rooms));
}

#[actix_web::test]
async fn keys_are_each_callers_own() {
    let app = TestApp::at_clinic_now().await;
    let send = |sub: &str| {
        let token = app.token_for(Role::Clinician, sub);
        app.post("/v1/patients").bearer(&token).header(KEY, "same-key").json(&patient_body()).send()
    };
    let a = send("desk-a").await;
    let b = send("desk-b").await;
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text, b.text);
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(b.header("idempotent-replayed"), None);
    assert_replay_of(&send("desk-a").await, &a);
    assert_eq!(app.count("patients"), 2);
}

#[actix_web::test]
async fn a_malformed_key_is_400_once_the_role_is_admitted() {
    let app = TestApp::at_clinic_now().await;
    let too_long = "k".repeat(256);
    for bad in ["", "has space", "caf\u{e9}", "\"a\\\"b\"", too_long.as_str()] {
        let res = create_keyed(&app, bad).await;
        res.assert_problem(400, "invalid_idempotency_key");
    }
    // Two key lines: which one would be the key?
    let mut request = actix_web::test::TestRequest::post()
        .uri("/v1/patients")
        .insert_header(("authorization", format!("Bearer {}", app.token_for(Role::Clinician, "c"))))
        .set_json(patient_body())
        .to_request();
    request.headers_mut().append(KEY.parse().unwrap(), "a".parse().unwrap());
    request.headers_mut().append(KEY.parse().unwrap(), "b".parse().unwrap());
    app.send_raw(request).await.assert_problem(400, "invalid_idempotency_key");
    // Authorization first: a patient may not add rooms, whatever its key.
    let res = app
        .post("/v1/rooms")
        .role(Role::Patient)
        .header(KEY, &too_long)
        .json(&json!({"name": "Room 9"}))
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    // Without a token: 401, key or not.
    let res = app.post("/v1/rooms").header(KEY, "k").json(&json!({"name": "Room 9"})).send().await;
    res.assert_problem(401, "unauthorized");
    // No operation there: 404 or 405 as without a key.
    let res =
        app.post("/v1/nowhere").role(Role::Admin).header(KEY, "k").json(&json!({})).send().await;
    res.assert_problem(404, "not_found");
    let res = app
        .post("/v1/protocols/pain-5-day")
        .role(Role::Admin)
        .header(KEY, "k")
        .json(&json!({}))
        .send()
        .await;
    res.assert_problem(405, "method_not_allowed");
    assert_eq!(app.count("patients"), 0);
    assert_eq!(app.count("idempotency_keys"), 0);
}

#[actix_web::test]
async fn an_error_is_not_kept_and_a_retry_is_answered_afresh() {
    let app = TestApp::at_clinic_now().await;
    let ready_once_screened = with(
        patient_body(),
        json!({"in_mental_health_treatment": true, "pain_referral_required": false}),
    );
    let patient = app.create_patient(ready_once_screened).await["id"].as_str().unwrap().to_owned();
    let send = || app.booking(&patient, "2026-12-03", "morning").header(KEY, "book-1").send();
    // Not screened yet: refused, and nothing kept.
    send().await.assert_problem(409, "not_ready");
    assert_eq!(app.count("idempotency_keys"), 0);
    app.screen(&patient, &[], &[]).await;
    let retried = send().await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), None);
    assert_eq!(app.count("idempotency_keys"), 1);
}

#[actix_web::test]
async fn an_answer_is_kept_for_the_ttl_and_then_the_key_is_new() {
    let app = TestApp::at_clinic_now().await;
    let send = || create_keyed(&app, "k");
    let first = send().await;
    app.travel_to(clinic_now() + Duration::hours(23));
    assert_replay_of(&send().await, &first);
    app.travel_to(clinic_now() + Duration::hours(24) + Duration::seconds(1));
    let later = send().await;
    assert_eq!(later.status, 201, "{}", later.text);
    assert_eq!(later.header("idempotent-replayed"), None);
    assert_ne!(later.body["id"], first.body["id"]);
    assert_eq!(app.count("patients"), 2);
    assert_eq!(app.count("idempotency_keys"), 1);
    // What `serve` runs every hour: the expired answers go, the kept stay.
    let prune = |hours: i64| {
        let mut conn = app.pool.get().unwrap();
        let at = clinic_now() + Duration::hours(hours);
        conn.run(|c| infusion_api::store::idempotency::prune(c, at)).unwrap()
    };
    assert_eq!(prune(24), 0);
    assert_eq!(prune(49), 1);
    assert_eq!(app.count("idempotency_keys"), 0);
}

/// The answer is stored in the transaction of the change: a failure while
/// storing it (a crash, here a trigger) leaves no patient behind either.
#[actix_web::test]
async fn the_answer_and_the_change_commit_together_or_not_at_all() {
    let app = TestApp::at_clinic_now().await;
    let fail = if app.is_postgres() {
        vec![
            "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'crash'; END $$",
            "CREATE TRIGGER crash BEFORE INSERT ON idempotency_keys \
             FOR EACH ROW EXECUTE FUNCTION crash()",
        ]
    } else {
        vec![
            "CREATE TRIGGER crash BEFORE INSERT ON idempotency_keys \
             BEGIN SELECT RAISE(ABORT, 'crash'); END",
        ]
    };
    for sql in fail {
        assert!(app.execute(sql), "{sql}");
    }
    let res = create_keyed(&app, "k").await;
    res.assert_problem(500, "internal_error");
    assert_eq!((app.count("patients"), app.count("idempotency_keys")), (0, 0));
    assert!(
        app.execute("DROP TRIGGER crash ON idempotency_keys") || app.execute("DROP TRIGGER crash")
    );
    let res = create_keyed(&app, "k").await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!((app.count("patients"), app.count("idempotency_keys")), (1, 1));
}

/// 20 identical course bookings with one key, sent at once to two processes
/// on one database: one course, and every answer is that course (first or
/// replayed) or 409 `idempotency_key_in_flight` with `Retry-After`.
#[actix_web::test]
async fn twenty_racing_course_bookings_with_one_key_make_one_course() {
    let app = TestApp::at_clinic_now().await;
    let twin = app.twin().await;
    let patient = app.ready_patient().await;
    let token = app.token_for(Role::Scheduler, "desk");
    let requests = (0..20)
        .map(|i| {
            let on = if i % 2 == 0 { &app } else { &twin };
            on.post("/v1/courses").bearer(&token).header(KEY, "course-1").json(&course(&patient))
        })
        .collect();
    let answers = app.send_all(requests).await;
    let mut courses = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    for answer in &answers {
        statuses.insert(answer.status);
        match answer.status {
            201 => {
                courses.insert(answer.body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                answer.assert_problem(409, "idempotency_key_in_flight");
                assert_eq!(answer.header("retry-after"), Some("1"));
            }
            other => panic!("{other}: {}", answer.text),
        }
    }
    assert_eq!(courses.len(), 1, "{statuses:?}");
    assert_eq!(app.count("courses"), 1);
    assert_eq!(app.count("appointments"), 5);
    // Once the first has answered, every retry is its answer.
    let retry = twin
        .post("/v1/courses")
        .bearer(&token)
        .header(KEY, "course-1")
        .json(&course(&patient))
        .send()
        .await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert!(courses.contains(retry.body["id"].as_str().unwrap()));
}

/// The key's answers come after the role: a caller refused the operation
/// hears 403, whatever its key answered elsewhere.
#[actix_web::test]
async fn a_refused_role_hears_403_before_anything_about_its_key() {
    let app = TestApp::at_clinic_now().await;
    let token = app.token_for(Role::Scheduler, "desk");
    let first = app
        .post("/v1/patients")
        .bearer(&token)
        .header(KEY, "k")
        .json(&with(patient_body(), json!({"in_mental_health_treatment": null})))
        .send()
        .await;
    // A scheduler may not send the clinical flags: 403 naming the field.
    first.assert_problem(403, "forbidden");
    let body = json!({"given_name": "Ada", "family_name": "Lovelace", "date_of_birth": "1985-12-10",
                      "indications": [{"code": "migraine"}]});
    let first = app.post("/v1/patients").bearer(&token).header(KEY, "k").json(&body).send().await;
    assert_eq!(first.status, 201, "{}", first.text);
    // The same key on an operation the role may not call: 403, not 422.
    let closure = json!({"date": "2026-12-24", "reason": "Holiday"});
    let res = app.post("/v1/closures").bearer(&token).header(KEY, "k").json(&closure).send().await;
    res.assert_problem(403, "forbidden");
}

/// A keyed body that cannot be read whole is refused, never written
/// without an answer kept for the retry.
#[actix_web::test]
async fn a_keyed_body_too_large_or_too_slow_is_refused_and_nothing_is_written() {
    let app = TestApp::builder().now(clinic_now()).setting("BODY_TIMEOUT_MS", "50").build().await;
    let large = json!({"name": "x".repeat(70 * 1024)});
    let res = app.post("/v1/rooms").role(Role::Admin).header(KEY, "k").json(&large).send().await;
    res.assert_problem(413, "payload_too_large");
    let res = app.post("/v1/rooms").role(Role::Patient).header(KEY, "k").json(&large).send().await;
    res.assert_problem(403, "forbidden");
    let stalled = app
        .post("/v1/rooms")
        .role(Role::Admin)
        .header(KEY, "k")
        .send_stalled(b"{\"name\": \"Ro")
        .await;
    stalled.assert_problem(408, "request_timeout");
    assert_eq!(app.count("idempotency_keys"), 0);
}

/// The course dry run changes nothing and keeps nothing: a key is ignored.
#[actix_web::test]
async fn a_key_on_the_dry_run_is_ignored() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    for key in ["plan-1", "plan-1", "not a key"] {
        let res = app
            .post("/v1/courses/plan")
            .role(Role::Scheduler)
            .header(KEY, key)
            .json(&course(&patient))
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.header("idempotent-replayed"), None);
    }
    assert_eq!(app.count("idempotency_keys"), 0);
}

/// A replayed answer is a disclosure like the first: the audit trail names
/// the patient it shows.
#[actix_web::test]
async fn a_replay_is_on_the_patients_access_log() {
    let app = TestApp::at_clinic_now().await;
    let send = || create_keyed(&app, "k");
    let first = send().await;
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(send().await.header("idempotent-replayed"), Some("true"));
    let res = app.get(&format!("/v1/audit-events?patient_id={id}")).role(Role::Admin).send().await;
    let creates: Vec<&Value> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "create_patient" && e["status"] == 201)
        .collect();
    assert_eq!(creates.len(), 2, "{}", res.text);
    for event in creates {
        assert_eq!(event["patient_ids"], json!([id]));
        assert_eq!(event["records"], json!([format!("patient/{id}")]));
    }
}

/// A delete answers 204 with no body: its replay too, without a content type.
#[actix_web::test]
async fn a_replayed_delete_is_an_empty_204() {
    let app = TestApp::at_clinic_now().await;
    let closure = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-24", "reason": "Holiday"}))
        .send()
        .await;
    let path = closure.header("location").unwrap().to_owned();
    let delete = || {
        app.request(actix_web::http::Method::DELETE, &path)
            .role(Role::Admin)
            .header(KEY, "d")
            .send()
    };
    let first = delete().await;
    assert_eq!(first.status, 204, "{}", first.text);
    let again = delete().await;
    assert_eq!(again.status, 204, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!((again.header("content-type"), again.text.as_str()), (None, ""));
}

/// A retry whose change would be made again (a second patient) makes it in
/// its transaction, finds the key answered there, and is rolled back: one
/// patient, no second event on the change feed, and the first answer sent
/// again.
#[actix_web::test]
async fn a_retry_that_would_change_again_is_rolled_back_and_replayed() {
    let app = TestApp::at_clinic_now().await;
    let first = create_keyed(&app, "k").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let events = app.count("events");
    assert_replay_of(&create_keyed(&app, "k").await, &first);
    assert_replay_of(&create_keyed(&app, "\"k\"").await, &first);
    assert_eq!(
        (app.count("patients"), app.count("events"), app.count("idempotency_keys")),
        (1, events, 1)
    );
}

/// A retry refused where the first request succeeded (its `If-Match` names
/// the version the first replaced; the body it sends is refused now) is
/// answered with the first answer; a key sent with another request is 422
/// `idempotency_key_reused`, whatever the operation makes of its body.
#[actix_web::test]
async fn a_retry_refused_as_the_change_is_made_already_is_the_first_answer() {
    let app = TestApp::at_clinic_now().await;
    let id = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/patients/{id}");
    let read = app.get(&path).role(Role::Scheduler).send().await;
    let tag = read.header("etag").unwrap().to_owned();
    let edit = |body: Value| {
        app.patch(&path)
            .role(Role::Scheduler)
            .header(KEY, "edit-1")
            .header("if-match", &tag)
            .json(&body)
            .send()
    };
    let first = edit(json!({"phone": "+1 555 010 1111"})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Without the key, this is 412: the tag names the version it replaced.
    let again = edit(json!({"phone": "+1 555 010 1111"})).await;
    assert_replay_of(&again, &first);
    for other in
        [json!({"phone": "+1 555 010 2222"}), json!({"phone": 17}), json!({"no_such_field": true})]
    {
        edit(other).await.assert_problem(422, "idempotency_key_reused");
    }
    let now = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(now.body["phone"], "+1 555 010 1111");
    assert_eq!(now.header("etag"), first.header("etag"));
    assert_eq!(app.count("idempotency_keys"), 1);
}
