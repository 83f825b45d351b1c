//! The change feed, `GET /v1/events`: an event per change, written with it,
//! read in an order a follower never misses anything in, even when
//! transactions commit out of order (PostgreSQL).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;
use infusion_api::domain::events::Event;

use crate::helpers::{patient_body, TestApp};

/// How long a follower waits for the feed to catch up: on PostgreSQL it
/// holds back while any transaction of the cluster is in flight (other
/// tests' included).
const CATCH_UP: Duration = Duration::from_secs(20);

/// One page of the feed after `after`, as an admin.
async fn page(app: &TestApp, query: &str) -> Value {
    let res = app.get(&format!("/v1/events?{query}")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body
}

/// Follows the feed from its start until it holds `count` events (or
/// [`CATCH_UP`] passes); the events, in feed order.
pub(crate) async fn follow(app: &TestApp, count: usize) -> Vec<Value> {
    let (mut seen, mut after) = (Vec::new(), "0-0".to_owned());
    let started = Instant::now();
    while seen.len() < count && started.elapsed() < CATCH_UP {
        let body = page(app, &format!("after={after}&limit=1000")).await;
        seen.extend(body["events"].as_array().unwrap().iter().cloned());
        after = body["next_after"].as_str().unwrap().to_owned();
    }
    seen
}

pub(crate) fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn each_change_writes_its_event_with_ids_only() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await; // patient.created, screening.recorded
    let booked = app.booked(&patient, "2026-12-03", "morning").await;
    let appointment = booked["id"].as_str().unwrap();
    let res = app.act(appointment, "cancel", json!({"reason": "Flu"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let events = follow(&app, 4).await;
    assert_eq!(
        types(&events),
        ["patient.created", "screening.recorded", "appointment.booked", "appointment.cancelled"]
    );
    let cancelled = &events[3];
    assert_eq!(cancelled["resource_type"], "appointment");
    assert_eq!(cancelled["resource_id"], appointment);
    assert_eq!(cancelled["patient_id"], patient.as_str());
    assert_eq!(cancelled["occurred_at"], "2026-12-02T10:00:00-05:00");
    // Ids and the time only: the reason, the patient's name, nothing else.
    let mut fields: Vec<&str> = cancelled.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["id", "occurred_at", "patient_id", "position", "resource_id", "resource_type", "type"]
    );
    assert!(!events.iter().any(|e| e.to_string().contains("Flu") || e.to_string().contains("Ada")));
    // Positions increase, and each id is the event's own.
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(app.count("events"), 4);
}

#[actix_web::test]
async fn a_refused_write_and_an_answer_sent_again_write_no_event() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let before = app.count("events");
    // Refused: a Saturday.
    assert_eq!(app.book(&patient, "2026-12-05", "morning").await.status, 422);
    assert_eq!(app.count("events"), before);
    // Sent twice with one key: one booking, one event.
    let send =
        || app.booking(&patient, "2026-12-03", "morning").header("idempotency-key", "evt-1").send();
    assert_eq!(send().await.status, 201);
    let again = send().await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(app.count("events"), before + 1);
}

#[actix_web::test]
async fn a_course_tells_its_appointments_and_its_cancellation_only_those_it_cancelled() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let body = json!({"patient_id": patient, "protocol": "pain-5-day", "session": "morning",
                      "earliest_start": "2026-12-02"});
    let res = app.post("/v1/courses").role(Role::Scheduler).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let course = res.body["id"].as_str().unwrap().to_owned();
    let first = res.body["appointments"][0]["id"].as_str().unwrap().to_owned();
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap());
    assert_eq!(app.act(&first, "check-in", json!({"pain_before": 8})).await.status, 200);
    let res = app
        .post(&format!("/v1/courses/{course}/cancel"))
        .role(Role::Scheduler)
        .json(&json!({"reason": "Moving away"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let events = follow(&app, 2 + 6 + 1 + 5).await;
    let kinds = types(&events);
    assert_eq!(kinds[2], "course.booked");
    assert_eq!(kinds[3..8], ["appointment.booked"; 5]);
    assert_eq!(kinds[8], "appointment.checked_in");
    assert_eq!(kinds[9], "course.cancelled");
    // The four left, not the one checked in.
    assert_eq!(kinds[10..], ["appointment.cancelled"; 4]);
    assert!(!events[10..].iter().any(|e| e["resource_id"] == first.as_str()));
}

#[actix_web::test]
async fn the_feed_pages_filters_and_starts_again_where_it_was_left() {
    let app = TestApp::at_clinic_now().await;
    let ada = app.ready_patient().await;
    let other = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    app.booked(&ada, "2026-12-03", "morning").await;
    let all = follow(&app, 4).await;
    assert_eq!(all.len(), 4);

    // Pages of one, each from the last one's position, hold the same.
    let mut after = "0-0".to_owned();
    let mut paged = Vec::new();
    for _ in 0..4 {
        let body = page(&app, &format!("after={after}&limit=1")).await;
        paged.extend(body["events"].as_array().unwrap().iter().cloned());
        after = body["next_after"].as_str().unwrap().to_owned();
        assert_eq!(after, paged.last().unwrap()["position"]);
    }
    assert_eq!(paged, all);
    // At the end: nothing, and the same position to poll from.
    let end = page(&app, &format!("after={after}")).await;
    assert_eq!(
        (end["events"].as_array().unwrap().len(), end["next_after"].as_str()),
        (0, Some(after.as_str()))
    );

    let booked = page(&app, "types=appointment.booked,appointment.cancelled").await;
    assert_eq!(types(booked["events"].as_array().unwrap()), ["appointment.booked"]);
    let theirs = page(&app, &format!("patient_id={other}")).await;
    assert_eq!(types(theirs["events"].as_array().unwrap()), ["patient.created"]);
}

#[actix_web::test]
async fn only_admins_and_integrations_read_the_feed_and_bad_queries_are_named() {
    let app = TestApp::spawn().await;
    for role in [Role::Clinician, Role::Scheduler, Role::Patient] {
        app.get("/v1/events").role(role).send().await.assert_problem(403, "forbidden");
    }
    app.get("/v1/events").send().await.assert_problem(401, "unauthorized");
    let res = app.get("/v1/events").role(Role::Integration).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    for (query, field) in [
        ("after=12", "after"),
        ("after=-1-2", "after"),
        ("after=1-x", "after"),
        ("types=appointment.teleported", "types"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("patient_id=not-an-id", "patient_id"),
        ("since=0", "since"),
    ] {
        let res = app.get(&format!("/v1/events?{query}")).role(Role::Admin).send().await;
        assert_eq!(res.status, 422, "{query}: {}", res.text);
        assert!(res.text.contains(field), "{query}: {}", res.text);
    }
}

/// A backend client's access token sees the events of the resources its
/// scopes let it read.
#[actix_web::test]
async fn a_scoped_token_sees_the_events_its_scopes_can_read() {
    let app = TestApp::issuing_at_clinic_now().await;
    let patient = app.ready_patient().await;
    app.booked(&patient, "2026-12-03", "morning").await;
    follow(&app, 3).await;
    let res = app.get("/v1/events").bearer(&app.scoped_token("system/Appointment.rs")).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(types(res.body["events"].as_array().unwrap()), ["appointment.booked"]);
    let res = app.get("/v1/events").bearer(&app.scoped_token("system/Patient.r")).send().await;
    assert_eq!(types(res.body["events"].as_array().unwrap()), ["patient.created"]);
}

/// The hard part: on PostgreSQL a transaction that began writing first can
/// commit last. The feed hands out nothing of the transactions after it
/// until it has ended, so a follower at the later event's position cannot
/// have skipped the earlier one.
#[actix_web::test]
async fn an_event_that_commits_late_is_not_skipped() {
    let app = TestApp::spawn().await;
    if !app.is_postgres() {
        return; // SQLite: one writer at a time, commit order is seq order.
    }
    let mut held = app.pool.get().unwrap();
    diesel::sql_query("BEGIN").execute(&mut **held).unwrap();
    let late = Event {
        id: uuid::Uuid::now_v7().to_string(),
        kind: "room.created",
        occurred_at: Utc::now(),
        resource_type: "room",
        resource_id: uuid::Uuid::now_v7().to_string(),
        patient_id: None,
    };
    infusion_api::store::events::insert(&mut held, std::slice::from_ref(&late)).unwrap();

    // Committed while the first is in flight, at a greater seq.
    let created = app.create_patient(patient_body()).await;
    let res = page(&app, "").await;
    assert!(
        !res["events"].as_array().unwrap().iter().any(|e| e["resource_id"] == created["id"]),
        "an event after a transaction in flight was handed out: {res}"
    );

    diesel::sql_query("COMMIT").execute(&mut **held).unwrap();
    drop(held);
    let events = follow(&app, 2).await;
    let ids: Vec<&str> = events.iter().map(|e| e["resource_id"].as_str().unwrap()).collect();
    // The transaction that began writing first, first.
    assert_eq!(ids, [late.resource_id.as_str(), created["id"].as_str().unwrap()]);
}

/// Writers in two processes and a follower reading as fast as it can: the
/// follower sees every committed event exactly once, in feed order.
#[actix_web::test]
async fn a_follower_sees_every_event_of_two_processes_once_in_order() {
    let app = TestApp::spawn().await;
    let twin = app.twin().await;
    const ROUNDS: usize = 10;
    const AT_ONCE: usize = 6;
    let writers = async {
        for _ in 0..ROUNDS {
            let requests = (0..AT_ONCE)
                .map(|i| {
                    let on = if i % 2 == 0 { &app } else { &twin };
                    on.post("/v1/patients").role(Role::Clinician).json(&patient_body())
                })
                .collect();
            for res in app.send_all(requests).await {
                assert_eq!(res.status, 201, "{}", res.text);
            }
        }
    };
    let follower = async {
        let (mut seen, mut after) = (Vec::<Value>::new(), "0-0".to_owned());
        let started = Instant::now();
        while seen.len() < ROUNDS * AT_ONCE && started.elapsed() < CATCH_UP * 2 {
            let res = twin
                .get(&format!("/v1/events?after={after}&limit=7"))
                .role(Role::Integration)
                .send()
                .await;
            assert_eq!(res.status, 200, "{}", res.text);
            seen.extend(res.body["events"].as_array().unwrap().iter().cloned());
            after = res.body["next_after"].as_str().unwrap().to_owned();
        }
        seen
    };
    let ((), seen) = futures_util::future::join(writers, follower).await;

    let committed = usize::try_from(app.count("events")).unwrap();
    assert_eq!(committed, ROUNDS * AT_ONCE);
    let ids: HashSet<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!((seen.len(), ids.len()), (committed, committed), "every event once");
    let positions: Vec<(i64, i64)> = seen
        .iter()
        .map(|e| {
            let (tx, seq) = e["position"].as_str().unwrap().split_once('-').unwrap();
            (tx.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in feed order: {positions:?}");
}

/// A page of the feed reads from the reader's position on, not the history
/// before it: on PostgreSQL, the index entries and rows one read returns
/// (counted for its own transaction) stay those of its page however many
/// events precede it, under the plan made for the statement's values and
/// under the generic one a prepared statement switches to. The webhook
/// dispatcher and every follower read this way.
#[actix_web::test]
async fn a_page_of_the_feed_reads_from_its_position_not_from_the_start() {
    use infusion_api::store::events::{after, Filter, Position};

    #[derive(diesel::QueryableByName)]
    struct Read {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        entries: i64,
    }
    let app = TestApp::spawn().await;
    if !app.is_postgres() {
        return; // The per-transaction counters are PostgreSQL's.
    }
    // 3,000 events of ended transactions, one each (explicit, small ids).
    assert!(app.execute(
        "INSERT INTO events (tx, id, event_type, occurred_at, resource_type, resource_id)
         SELECT n, 'history-' || n, 'room.created', now(), 'room', 'r' || n
         FROM generate_series(1, 3000) AS n"
    ));
    assert!(app.execute("ANALYZE events"));
    let mut conn = app.pool.get().unwrap();
    for plan in ["force_custom_plan", "force_generic_plan"] {
        diesel::sql_query("BEGIN").execute(&mut **conn).unwrap();
        diesel::sql_query(format!("SET LOCAL plan_cache_mode = {plan}"))
            .execute(&mut **conn)
            .unwrap();
        let filter =
            Filter { after: Position { tx: 2990, seq: 2990 }, limit: 100, ..Filter::default() };
        let page = after(&mut conn, &filter).unwrap();
        let read: Read = diesel::sql_query(
            "SELECT pg_stat_get_xact_tuples_returned('events_position_idx'::regclass)
                    + pg_stat_get_xact_tuples_returned('events'::regclass) AS entries",
        )
        .get_result(&mut **conn)
        .unwrap();
        diesel::sql_query("COMMIT").execute(&mut **conn).unwrap();

        let txs: Vec<i64> = page.iter().map(|e| e.position.tx).collect();
        assert_eq!(txs, (2991..=3000).collect::<Vec<_>>(), "{plan}");
        // The page and its neighbours, not the 2,990 events before it.
        assert!(read.entries < 100, "{plan}: {} entries and rows read for 10", read.entries);
    }
}
