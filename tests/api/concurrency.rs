//! Double booking is impossible, whatever the timing: the database decides.
//! The HTTP tests fire their requests at once and count what was stored; the
//! SQL tests show the indexes themselves refuse a second active booking.

use serde_json::json;

use infusion_api::domain::access::Role;

use crate::helpers::{TestApp, TestResponse};

const DAY: &str = "2026-12-03";

fn texts(responses: &[TestResponse]) -> Vec<&str> {
    responses.iter().map(|r| r.text.as_str()).collect()
}

#[actix_web::test]
async fn twenty_patients_race_for_the_last_room() {
    let app = TestApp::at_clinic_now().await;
    // Three rounds, each with one room left and twenty takers.
    for (date, session) in [(DAY, "morning"), (DAY, "afternoon"), ("2026-12-04", "morning")] {
        for _ in 0..3 {
            let p = app.ready_patient().await;
            app.booked(&p, date, session).await;
        }
        let mut patients = Vec::new();
        for _ in 0..20 {
            patients.push(app.ready_patient().await);
        }
        let requests = patients.iter().map(|p| app.booking(p, date, session)).collect();
        let responses = app.send_all(requests).await;

        let booked: Vec<_> = responses.iter().filter(|r| r.status == 201).collect();
        assert_eq!(booked.len(), 1, "{:?}", texts(&responses));
        for refused in responses.iter().filter(|r| r.status != 201) {
            refused.assert_problem(409, "slot_full");
        }
        assert_eq!(app.active_in(date, session), 4);
        let room = booked[0].body["room_id"].as_str().unwrap();
        assert_eq!(
            app.count(&format!(
                "appointments WHERE room_id = '{room}' AND date = '{date}' AND session = '{session}' \
                 AND status IN ('scheduled', 'checked_in', 'completed')"
            )),
            1
        );
    }
}

#[actix_web::test]
async fn one_patient_races_for_several_rooms_on_one_day() {
    let app = TestApp::at_clinic_now().await;
    for date in [DAY, "2026-12-04", "2026-12-07"] {
        let patient = app.ready_patient().await;
        let sessions = ["morning", "afternoon", "morning", "afternoon", "morning", "afternoon"];
        let requests = sessions.iter().map(|s| app.booking(&patient, date, s)).collect();
        let responses = app.send_all(requests).await;
        let booked = responses.iter().filter(|r| r.status == 201).count();
        assert_eq!(booked, 1, "{:?}", texts(&responses));
        for refused in responses.iter().filter(|r| r.status != 201) {
            refused.assert_problem(409, "patient_already_booked_that_day");
        }
        assert_eq!(app.count(&format!("appointments WHERE patient_id = '{patient}'")), 1);
    }
}

#[actix_web::test]
async fn racing_reschedules_into_one_free_room_leave_one_winner() {
    let app = TestApp::at_clinic_now().await;
    for _ in 0..3 {
        let p = app.ready_patient().await;
        app.booked(&p, DAY, "afternoon").await;
    }
    let mut ids = Vec::new();
    for _ in 0..4 {
        let p = app.ready_patient().await;
        ids.push(app.booked(&p, "2026-12-04", "morning").await["id"].as_str().unwrap().to_owned());
    }
    let requests = ids
        .iter()
        .map(|id| {
            app.post(&format!("/v1/appointments/{id}/reschedule"))
                .role(Role::Scheduler)
                .json(&json!({"date": DAY, "session": "afternoon"}))
        })
        .collect();
    let responses = app.send_all(requests).await;
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 1, "{:?}", texts(&responses));
    for refused in responses.iter().filter(|r| r.status != 200) {
        refused.assert_problem(409, "slot_full");
    }
    assert_eq!(app.active_in(DAY, "afternoon"), 4);
    // The losers kept their slots.
    assert_eq!(app.active_in("2026-12-04", "morning"), 3);
}

/// Inserts an appointment row directly, as a second process racing past the
/// API's own checks would.
fn insert_raw(
    app: &TestApp,
    id: &str,
    patient: &str,
    room: &str,
    session: &str,
    status: &str,
) -> bool {
    let reason = if status == "cancelled" { "'x'" } else { "NULL" };
    app.execute(&format!(
        "INSERT INTO appointments (id, patient_id, room_id, date, session, starts_at, status, route, \
         cancel_reason, created_at, updated_at) VALUES ('{id}', '{patient}', '{room}', '{DAY}', '{session}', \
         '2026-12-03 13:00:00', '{status}', 'iv', {reason}, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
    ))
}

#[actix_web::test]
async fn the_indexes_refuse_a_second_active_appointment() {
    let app = TestApp::at_clinic_now().await;
    let (ada, bob) = (app.ready_patient().await, app.ready_patient().await);
    let room = "019ac5a0-0000-7000-8000-000000000001";
    let other_room = "019ac5a0-0000-7000-8000-000000000002";
    let id = || uuid::Uuid::now_v7().to_string();
    assert!(insert_raw(&app, &id(), &ada, room, "morning", "scheduled"));
    // The same room and session, for anyone: refused.
    assert!(!insert_raw(&app, &id(), &bob, room, "morning", "scheduled"));
    assert!(!insert_raw(&app, &id(), &bob, room, "morning", "completed"));
    // The same patient and day, in any room or session: refused.
    assert!(!insert_raw(&app, &id(), &ada, other_room, "afternoon", "checked_in"));
    // Cancelled and no-show appointments hold nothing.
    assert!(insert_raw(&app, &id(), &bob, room, "morning", "cancelled"));
    assert!(insert_raw(&app, &id(), &ada, other_room, "afternoon", "no_show"));
    assert!(insert_raw(&app, &id(), &bob, other_room, "morning", "scheduled"));
    assert_eq!(app.active_in(DAY, "morning"), 2);
}

#[actix_web::test]
async fn a_closure_racing_bookings_never_leaves_appointments_on_a_closed_day() {
    let app = TestApp::at_clinic_now().await;
    for date in ["2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"] {
        let mut patients = Vec::new();
        for _ in 0..8 {
            patients.push(app.ready_patient().await);
        }
        let mut requests: Vec<_> = patients
            .iter()
            .enumerate()
            .map(|(i, p)| app.booking(p, date, if i % 2 == 0 { "morning" } else { "afternoon" }))
            .collect();
        requests.insert(
            4,
            app.post("/v1/closures")
                .role(Role::Admin)
                .json(&json!({"date": date, "reason": "Burst pipe"})),
        );
        let responses = app.send_all(requests).await;
        let closure = &responses[4];
        let booked = app.count(&format!(
            "appointments WHERE date = '{date}' AND status IN ('scheduled', 'checked_in', 'completed')"
        ));
        if closure.status == 201 {
            assert_eq!(booked, 0, "{date}: closed with appointments standing");
        } else {
            closure.assert_problem(409, "conflict");
            assert!(booked > 0);
        }
        for (i, res) in responses.iter().enumerate().filter(|(i, _)| *i != 4) {
            assert!(
                res.status == 201 || res.body["code"] == "clinic_closed",
                "{date} request {i}: {}",
                res.text
            );
        }
    }
}

#[actix_web::test]
async fn deactivating_a_room_racing_bookings_never_strands_an_appointment() {
    let app = TestApp::at_clinic_now().await;
    let last_room = "019ac5a0-0000-7000-8000-000000000001";
    for other in 2..=4 {
        let res = app
            .patch(&format!("/v1/rooms/019ac5a0-0000-7000-8000-00000000000{other}"))
            .role(Role::Admin)
            .json(&json!({"active": false}))
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    for round in 0..4 {
        let mut patients = Vec::new();
        for _ in 0..6 {
            patients.push(app.ready_patient().await);
        }
        let days = ["2026-12-07", "2026-12-08", "2026-12-09"];
        let mut requests: Vec<_> = patients
            .iter()
            .enumerate()
            .map(|(i, p)| app.booking(p, days[i % 3], if i < 3 { "morning" } else { "afternoon" }))
            .collect();
        requests.insert(
            3,
            app.patch(&format!("/v1/rooms/{last_room}"))
                .role(Role::Admin)
                .json(&json!({"active": false})),
        );
        let responses = app.send_all(requests).await;
        let stranded = app.count("appointments a JOIN rooms r ON r.id = a.room_id WHERE NOT r.active AND a.status = 'scheduled'");
        assert_eq!(stranded, 0, "round {round}: {:?}", texts(&responses));
        // Start the next round with the room active and empty again.
        for res in responses.iter().filter(|r| r.status == 201) {
            let id = res.body["id"].as_str().unwrap();
            app.act(id, "cancel", json!({"reason": "reset"})).await;
        }
        let res = app
            .patch(&format!("/v1/rooms/{last_room}"))
            .role(Role::Admin)
            .json(&json!({"active": true}))
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
}

#[actix_web::test]
async fn a_cancel_racing_a_check_in_leaves_one_consistent_outcome() {
    let app = TestApp::at_clinic_now().await;
    for _ in 0..4 {
        let mut ids = Vec::new();
        for _ in 0..4 {
            let p = app.ready_patient().await;
            let appt = app.booked(&p, "2026-12-02", "afternoon").await;
            ids.push(appt["id"].as_str().unwrap().to_owned());
        }
        let requests = ids
            .iter()
            .flat_map(|id| {
                [
                    app.post(&format!("/v1/appointments/{id}/cancel"))
                        .role(Role::Scheduler)
                        .json(&json!({"reason": "Called in sick"})),
                    app.post(&format!("/v1/appointments/{id}/check-in"))
                        .role(Role::Clinician)
                        .json(&json!({"pain_before": 6})),
                ]
            })
            .collect();
        let responses = app.send_all(requests).await;
        for (pair, id) in responses.chunks(2).zip(&ids) {
            let won = pair.iter().filter(|r| r.status == 200).count();
            assert_eq!(won, 1, "{id}: {:?}", texts(pair));
            let lost = pair.iter().find(|r| r.status != 200).unwrap();
            lost.assert_problem(409, "invalid_transition");
            let stored =
                app.get(&format!("/v1/appointments/{id}")).role(Role::Scheduler).send().await;
            let b = &stored.body;
            match b["status"].as_str().unwrap() {
                "cancelled" => {
                    assert!(b["checked_in_at"].is_null() && b["pain_before"].is_null(), "{b}")
                }
                "checked_in" => assert!(b["cancel_reason"].is_null(), "{b}"),
                other => panic!("{id} ended {other}"),
            }
        }
        for id in &ids {
            app.execute(&format!("DELETE FROM appointments WHERE id = '{id}'"));
        }
    }
}

#[actix_web::test]
async fn two_courses_racing_for_the_last_week_leave_one_whole_course() {
    // A two-week horizon from Wednesday 2 December: the only Monday-to-Friday
    // week that fits is 7 to 11 December.
    let app = TestApp::builder()
        .now(crate::helpers::clinic_now())
        .setting("BOOKING_HORIZON_WEEKS", "2")
        .build()
        .await;
    for session in ["morning", "afternoon"] {
        // Three rooms of four taken all week: one course's worth is left.
        for _ in 0..3 {
            let p = app.ready_patient().await;
            for day in 7..=11 {
                app.booked(&p, &format!("2026-12-{day:02}"), session).await;
            }
        }
        let (a, b) = (app.ready_patient().await, app.ready_patient().await);
        let body = |p: &str| json!({"patient_id": p, "protocol": "pain-5-day", "session": session, "earliest_start": "2026-12-02"});
        let requests = vec![
            app.post("/v1/courses").role(Role::Scheduler).json(&body(&a)),
            app.post("/v1/courses").role(Role::Scheduler).json(&body(&b)),
        ];
        let responses = app.send_all(requests).await;
        let winners: Vec<_> = responses.iter().filter(|r| r.status == 201).collect();
        assert_eq!(winners.len(), 1, "{:?}", texts(&responses));
        assert_eq!(winners[0].body["appointments"].as_array().unwrap().len(), 5);
        let loser = responses.iter().find(|r| r.status != 201).unwrap();
        loser.assert_problem(409, "no_capacity_for_series");
        let loser_id = if winners[0].body["patient_id"] == a.as_str() { &b } else { &a };
        assert_eq!(app.count(&format!("appointments WHERE patient_id = '{loser_id}'")), 0);
        assert_eq!(app.count(&format!("courses WHERE patient_id = '{loser_id}'")), 0);
        for day in 7..=11 {
            assert_eq!(app.active_in(&format!("2026-12-{day:02}"), session), 4);
        }
    }
}

#[actix_web::test]
async fn courses_racing_while_rooms_remain_are_all_booked() {
    let app = TestApp::at_clinic_now().await;
    let mut patients = Vec::new();
    for _ in 0..4 {
        patients.push(app.ready_patient().await);
    }
    // Four courses, four rooms: every one fits the same week, each in its own room.
    let requests = patients
        .iter()
        .map(|p| {
            app.post("/v1/courses").role(Role::Scheduler).json(
                &json!({"patient_id": p, "protocol": "pain-5-day", "session": "morning", "earliest_start": "2026-12-02"}),
            )
        })
        .collect();
    let responses = app.send_all(requests).await;
    for res in &responses {
        assert_eq!(res.status, 201, "{:?}", texts(&responses));
        assert_eq!(res.body["appointments"][0]["date"], "2026-12-07");
    }
    for day in 7..=11 {
        assert_eq!(app.active_in(&format!("2026-12-{day:02}"), "morning"), 4);
    }
}

/// SQLite writers take turns per database, not per process: a write on one
/// file does not wait for a write held open on another (parallel tests, or
/// two pools in one process, do not queue behind each other).
#[test]
fn a_sqlite_writer_waits_only_for_writers_on_its_own_file() {
    use std::sync::mpsc;
    use std::time::Duration;

    use infusion_api::config::DatabaseTarget;
    use infusion_api::store::{build_pool, write_transaction, StoreError};

    let file = |name: &str| {
        std::env::temp_dir()
            .join(format!("infusion-writer-{name}-{}.sqlite3", uuid::Uuid::now_v7().simple()))
    };
    let (a, b) = (file("a"), file("b"));
    let pool_a = build_pool(&DatabaseTarget::Sqlite(a.clone()), 1).unwrap();
    let pool_b = build_pool(&DatabaseTarget::Sqlite(b.clone()), 1).unwrap();
    let (started, is_started) = mpsc::channel();
    let (b_done, is_b_done) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = pool_a.get().unwrap();
        conn.run(|conn| {
            write_transaction(conn, |_| {
                started.send(()).unwrap();
                // Still inside A's write transaction: does B get through?
                Ok::<_, StoreError>(is_b_done.recv_timeout(Duration::from_secs(5)).is_ok())
            })
        })
    });
    is_started.recv().unwrap();
    let mut conn = pool_b.get().unwrap();
    conn.run(|conn| write_transaction(conn, |_| Ok::<_, StoreError>(()))).unwrap();
    b_done.send(()).unwrap();
    let b_got_through = holder.join().unwrap().unwrap();
    for path in [a, b] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    assert!(b_got_through, "a write on b waited for one on a");
}

/// SQLite's write-ahead log is copied into the database file by the pool's
/// checkpointer within moments of a write, beside the writers, instead of
/// by the writer whose commit fills the log (SQLite's own rule, at 1,000
/// pages): read with `immutable=1`, which ignores the log, the file itself
/// holds a small write soon after it commits.
#[test]
fn a_sqlite_write_reaches_the_database_file_without_a_full_log() {
    use std::time::{Duration, Instant};

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
    use infusion_api::config::DatabaseTarget;
    use infusion_api::store::{build_pool, write_transaction, StoreError};

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    let path = std::env::temp_dir()
        .join(format!("infusion-checkpoint-{}.sqlite3", uuid::Uuid::now_v7().simple()));
    let pool = build_pool(&DatabaseTarget::Sqlite(path.clone()), 1).unwrap();
    let mut conn = pool.get().unwrap();
    conn.run(|conn| {
        write_transaction(conn, |conn| {
            conn.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")?;
            Ok::<_, StoreError>(())
        })
    })
    .unwrap();
    let in_the_file = || {
        let mut file =
            SqliteConnection::establish(&format!("file:{}?immutable=1", path.display())).ok()?;
        let count = diesel::sql_query("SELECT count(*) AS n FROM t").get_result::<Count>(&mut file);
        count.ok().map(|c| c.n)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rows = in_the_file();
    while rows != Some(2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        rows = in_the_file();
    }
    drop(conn);
    drop(pool);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(rows, Some(2), "the rows stayed in the write-ahead log");
}
