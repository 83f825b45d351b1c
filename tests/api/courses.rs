//! Protocols and courses through the API: whole series planned and booked
//! at once, never in part.

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, with, without, TestApp, TestResponse};

const WED: &str = "2026-12-02";

fn course(patient: &str, protocol: &str, session: &str) -> Value {
    json!({"patient_id": patient, "protocol": protocol, "session": session, "earliest_start": WED})
}

fn dates(course: &Value) -> Vec<String> {
    course["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["date"].as_str().unwrap().to_owned())
        .collect()
}

fn days(from: &str, list: &[u32]) -> Vec<String> {
    let base = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
    list.iter().map(|d| (base + chrono::Days::new(u64::from(*d))).to_string()).collect()
}

impl TestApp {
    async fn book_course(&self, body: &Value) -> TestResponse {
        self.post("/v1/courses").role(Role::Scheduler).json(body).send().await
    }

    async fn booked_course(&self, body: &Value) -> Value {
        let res = self.book_course(body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }
}

#[actix_web::test]
async fn a_five_day_course_asked_on_a_wednesday_fills_next_week_in_one_session() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let res = app.book_course(&course(&patient, "pain-5-day", "morning")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let c = &res.body;
    let id = c["id"].as_str().unwrap();
    assert_eq!(res.header("location"), Some(format!("/v1/courses/{id}").as_str()));
    assert_eq!(dates(c), days("2026-12-07", &[0, 1, 2, 3, 4]));
    assert!(c["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["session"] == "morning" && a["status"] == "scheduled"));
    assert_eq!(c["appointments"][0]["starts_at"], "2026-12-07T08:00:00-05:00");
    assert_eq!(c["status"], "scheduled");
    assert_eq!(c["infusions"], 5);
    assert_eq!(c["protocol"], "pain-5-day");
    // The appointments are ordinary appointments that know their course.
    let first = c["appointments"][0]["id"].as_str().unwrap();
    let appt = app.get(&format!("/v1/appointments/{first}")).role(Role::Scheduler).send().await;
    assert_eq!(appt.body["course_id"], id);
    let fetched = app.get(&format!("/v1/courses/{id}")).role(Role::Clinician).send().await;
    assert_eq!(fetched.body, res.body);
    assert_eq!(app.count("appointments"), 5);
}

#[actix_web::test]
async fn an_eight_day_course_spans_a_weekend_and_skips_a_closure() {
    let app = TestApp::at_clinic_now().await;
    let closure = app
        .post("/v1/closures")
        .role(Role::Admin)
        .json(&json!({"date": "2026-12-09", "reason": "Training"}))
        .send()
        .await;
    assert_eq!(closure.status, 201);
    let patient = app.ready_patient().await;
    let body = with(
        course(&patient, "pain-8-10-day", "afternoon"),
        json!({"infusions": 8, "earliest_start": "2026-12-07"}),
    );
    let c = app.booked_course(&body).await;
    assert_eq!(dates(&c), days("2026-12-07", &[0, 1, 3, 4, 7, 8, 9, 10]));
    assert!(c["appointments"].as_array().unwrap().iter().all(|a| a["session"] == "afternoon"));
}

#[actix_web::test]
async fn a_mental_health_course_of_three_a_week_for_two_weeks() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_depression_patient().await;
    let body =
        with(course(&patient, "mental-health", "morning"), json!({"per_week": 3, "weeks": 2}));
    let c = app.booked_course(&body).await;
    let booked: Vec<NaiveDate> = dates(&c).iter().map(|d| d.parse().unwrap()).collect();
    assert_eq!(booked.len(), 6);
    for pair in booked.windows(2) {
        assert!((pair[1] - pair[0]).num_days() >= 2, "{booked:?}");
    }
    use chrono::Datelike;
    let weeks: Vec<u32> = booked.iter().map(|d| d.iso_week().week()).collect();
    assert_eq!(weeks.iter().filter(|w| **w == weeks[0]).count(), 3);
    assert_eq!(weeks.iter().filter(|w| **w == weeks[5]).count(), 3);
    assert_eq!(weeks[5], weeks[0] + 1);
    assert_eq!(c["infusions"], 6);
}

#[actix_web::test]
async fn a_full_session_moves_the_start_to_the_earliest_date_that_fits() {
    let app = TestApp::at_clinic_now().await;
    for _ in 0..4 {
        let p = app.ready_patient().await;
        app.booked(&p, "2026-12-08", "morning").await;
    }
    let patient = app.ready_patient().await;
    let c = app.booked_course(&course(&patient, "pain-5-day", "morning")).await;
    assert_eq!(dates(&c), days("2026-12-14", &[0, 1, 2, 3, 4]));
    // Allowing mixed sessions keeps the first week, with that Tuesday in the afternoon.
    let other = app.ready_patient().await;
    let c = app
        .booked_course(&with(
            course(&other, "pain-5-day", "morning"),
            json!({"allow_mixed_sessions": true}),
        ))
        .await;
    assert_eq!(dates(&c)[0], "2026-12-07");
    assert_eq!(c["appointments"][1]["session"], "afternoon");
}

#[actix_web::test]
async fn plan_stores_nothing_and_matches_what_booking_makes() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let before = (app.count("courses"), app.count("appointments"));
    let res = app
        .post("/v1/courses/plan")
        .role(Role::Clinician)
        .json(&course(&patient, "pain-5-day", "afternoon"))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["infusions"], 5);
    assert_eq!(
        res.body["appointments"][0],
        json!({"date": "2026-12-07", "session": "afternoon", "starts_at": "2026-12-07T13:00:00-05:00",
               "ends_at": "2026-12-07T17:00:00-05:00"})
    );
    assert_eq!((app.count("courses"), app.count("appointments")), before);
    let booked = app.booked_course(&course(&patient, "pain-5-day", "afternoon")).await;
    assert_eq!(dates(&booked), dates(&res.body));
}

/// A plan reads the first weeks' occupancy first and reads on to the
/// horizon only when the series needs it: with every clinic day of the
/// next six weeks closed, plan and booking find the first series after.
#[actix_web::test]
async fn a_series_beyond_the_first_weeks_is_found_by_reading_on() {
    use chrono::Datelike;

    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let closed = NaiveDate::from_ymd_opt(2026, 12, 3)
        .unwrap()
        .iter_days()
        .take_while(|d| *d <= NaiveDate::from_ymd_opt(2027, 1, 15).unwrap());
    for day in closed.filter(|d| d.weekday().number_from_monday() <= 5) {
        let res = app
            .post("/v1/closures")
            .role(Role::Admin)
            .json(&json!({"date": day.to_string(), "reason": "Renovation"}))
            .send()
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let planned = app
        .post("/v1/courses/plan")
        .role(Role::Scheduler)
        .json(&course(&patient, "pain-5-day", "morning"))
        .send()
        .await;
    assert_eq!(planned.status, 200, "{}", planned.text);
    assert_eq!(planned.body["appointments"][0]["date"], "2027-01-18");
    let booked = app.booked_course(&course(&patient, "pain-5-day", "morning")).await;
    assert_eq!(
        dates(&booked),
        ["2027-01-18", "2027-01-19", "2027-01-20", "2027-01-21", "2027-01-22"]
    );
}

#[actix_web::test]
async fn a_patient_who_is_not_ready_is_refused_with_the_open_items() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    for path in ["/v1/courses", "/v1/courses/plan"] {
        let res = app
            .post(path)
            .role(Role::Scheduler)
            .json(&course(&patient, "pain-5-day", "morning"))
            .send()
            .await;
        let problem = res.assert_problem(409, "not_ready");
        let codes: Vec<&str> = problem["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["screening", "pain_management_referral", "mental_health_evaluation"]);
    }
    assert_eq!(app.count("courses"), 0);
    assert_eq!(app.count("appointments"), 0);
}

#[actix_web::test]
async fn course_requests_are_checked_against_the_protocol_and_the_patient() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let cases = [
        (course(&patient, "pain-12-day", "morning"), "protocol"),
        (course(&patient, "pain-8-10-day", "morning"), "infusions"),
        (with(course(&patient, "pain-8-10-day", "morning"), json!({"infusions": 11})), "infusions"),
        (with(course(&patient, "pain-5-day", "morning"), json!({"per_week": 2})), "per_week"),
        (
            with(course(&patient, "mental-health", "morning"), json!({"per_week": 3, "weeks": 2})),
            "protocol",
        ),
        (with(course(&patient, "maintenance", "morning"), json!({"infusions": 1})), "protocol"),
        (
            with(
                course(&patient, "pain-5-day", "morning"),
                json!({"earliest_start": "+20000-01-01"}),
            ),
            "earliest_start",
        ),
        (with(course(&patient, "pain-5-day", "morning"), json!({"session": "night"})), "session"),
        (
            with(
                course(&patient, "pain-5-day", "morning"),
                json!({"patient_id": uuid::Uuid::now_v7().to_string()}),
            ),
            "patient_id",
        ),
    ];
    for (body, field) in cases {
        let res = app.book_course(&body).await;
        let problem = res.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    for role in [Role::Integration, Role::Patient] {
        app.post("/v1/courses")
            .role(role)
            .json(&course(&patient, "pain-5-day", "morning"))
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(app.count("courses"), 0);
}

#[actix_web::test]
async fn a_start_beyond_the_horizon_is_outside_horizon() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let body =
        with(course(&patient, "pain-5-day", "morning"), json!({"earliest_start": "2027-06-03"}));
    for path in ["/v1/courses", "/v1/courses/plan"] {
        app.post(path)
            .role(Role::Scheduler)
            .json(&body)
            .send()
            .await
            .assert_problem(422, "outside_horizon");
    }
}

#[actix_web::test]
async fn nothing_fits_beyond_the_horizon() {
    let app = TestApp::builder()
        .now(crate::helpers::clinic_now())
        .setting("BOOKING_HORIZON_WEEKS", "1")
        .build()
        .await;
    let patient = app.ready_patient().await;
    // One week from Wednesday 2 December ends Wednesday 9th: no Monday-to-Friday week fits.
    let res = app.book_course(&course(&patient, "pain-5-day", "morning")).await;
    let problem = res.assert_problem(409, "no_capacity_for_series");
    assert_eq!(problem["next_start"], Value::Null);
    let res = app
        .post("/v1/courses/plan")
        .role(Role::Scheduler)
        .json(&course(&patient, "pain-5-day", "morning"))
        .send()
        .await;
    res.assert_problem(409, "no_capacity_for_series");
    assert_eq!(app.count("appointments"), 0);
}

#[actix_web::test]
async fn cancelling_a_course_cancels_what_is_left_in_one_go() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let c = app.booked_course(&course(&patient, "pain-5-day", "morning")).await;
    let id = c["id"].as_str().unwrap();
    let first = c["appointments"][0]["id"].as_str().unwrap();
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap());
    assert_eq!(app.act(first, "check-in", json!({"pain_before": 8})).await.status, 200);
    let in_progress = app.get(&format!("/v1/courses/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(in_progress.body["status"], "in_progress");

    let path = format!("/v1/courses/{id}/cancel");
    app.post(&path)
        .role(Role::Scheduler)
        .json(&json!({"reason": ""}))
        .send()
        .await
        .assert_invalid_fields(&["reason"]);
    app.post(&path)
        .patient(&patient)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .assert_problem(403, "forbidden");
    let res =
        app.post(&path).role(Role::Scheduler).json(&json!({"reason": "Moving away"})).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "cancelled");
    assert_eq!(res.body["cancel_reason"], "Moving away");
    let statuses: Vec<&str> = res.body["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["checked_in", "cancelled", "cancelled", "cancelled", "cancelled"]);
    app.post(&path)
        .role(Role::Scheduler)
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .assert_problem(409, "invalid_transition");
}

#[actix_web::test]
async fn patients_read_their_own_courses() {
    let app = TestApp::at_clinic_now().await;
    let mine = app.ready_patient().await;
    let theirs = app.ready_patient().await;
    let c = app.booked_course(&course(&mine, "pain-5-day", "morning")).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/courses/{id}")).patient(&mine).send().await.status, 200);
    app.get(&format!("/v1/courses/{id}"))
        .patient(&theirs)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/courses/{id}"))
        .role(Role::Integration)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let listed = app.get(&format!("/v1/patients/{mine}/courses")).patient(&mine).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    app.get(&format!("/v1/patients/{mine}/courses"))
        .patient(&theirs)
        .send()
        .await
        .assert_problem(404, "not_found");
    let none =
        app.get(&format!("/v1/patients/{theirs}/courses")).role(Role::Scheduler).send().await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    let missing = uuid::Uuid::now_v7();
    app.get(&format!("/v1/courses/{missing}"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
}

/// Checks in and completes the course's infusions `from..`, one per score,
/// each on its own day, with that pain on arrival (and PHQ-9 if given).
async fn treat(app: &TestApp, course: &Value, from: usize, scores: &[(i32, Option<i32>)]) {
    for (i, (pain, phq9)) in scores.iter().enumerate() {
        let a = &course["appointments"][from + i];
        let date: NaiveDate = a["date"].as_str().unwrap().parse().unwrap();
        app.travel_to(Utc.from_utc_datetime(&date.and_hms_opt(19, 0, 0).unwrap()));
        let id = a["id"].as_str().unwrap();
        let mut body = json!({"pain_before": pain});
        if let Some(p) = phq9 {
            body["phq9"] = json!(p);
        }
        let res = app.act(id, "check-in", body).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(app.complete(id, json!({"pain_after": 2})).await.status, 200);
    }
}

async fn course_view(app: &TestApp, course: &Value) -> Value {
    let id = course["id"].as_str().unwrap();
    app.get(&format!("/v1/courses/{id}")).role(Role::Clinician).send().await.body
}

#[actix_web::test]
async fn the_pain_response_check_flags_too_little_improvement_at_the_fourth_infusion() {
    let app = TestApp::at_clinic_now().await;
    let poor = app.ready_patient().await;
    let good = app.ready_patient().await;
    let poor_course = app.booked_course(&course(&poor, "pain-5-day", "morning")).await;
    let good_course = app.booked_course(&course(&good, "pain-5-day", "afternoon")).await;
    treat(&app, &poor_course, 0, &[(8, None), (8, None), (7, None)]).await;
    treat(&app, &good_course, 0, &[(8, None), (6, None), (5, None)]).await;
    let view = course_view(&app, &poor_course).await;
    assert_eq!(view["response"], Value::Null, "not yet at the fourth infusion");
    assert_eq!(view["needs_review"], false);
    assert_eq!(view["status"], "in_progress");

    treat(&app, &poor_course, 3, &[(7, None)]).await;
    treat(&app, &good_course, 3, &[(4, None)]).await;
    let view = course_view(&app, &poor_course).await;
    assert_eq!(
        view["response"],
        json!({"measure": "pain_before", "infusion": 4, "baseline": 8, "latest": 7, "change": -1, "improvement": 0.125})
    );
    assert_eq!(view["needs_review"], true);
    let view = course_view(&app, &good_course).await;
    assert_eq!(view["response"]["improvement"], 0.5);
    assert_eq!(view["needs_review"], false);

    // After the last infusion the course is completed, and maintenance may follow.
    treat(&app, &good_course, 4, &[(3, None)]).await;
    assert_eq!(course_view(&app, &good_course).await["status"], "completed");
    app.screen(&good, &[], &[]).await;
    let maintenance = with(
        course(&good, "maintenance", "morning"),
        json!({"infusions": 2, "earliest_start": "2026-12-14"}),
    );
    let c = app.booked_course(&maintenance).await;
    assert_eq!(c["appointments"].as_array().unwrap().len(), 2);
    assert_eq!(c["response"], Value::Null);
}

/// A course the patient never came to is `missed`, not `completed`, and
/// does not open maintenance: "completed" means one thing, an infusion given.
#[actix_web::test]
async fn a_course_of_no_shows_is_missed_and_opens_no_maintenance() {
    let app = TestApp::at_clinic_now().await;
    let absent = app.ready_patient().await;
    let once = app.ready_patient().await;
    let missed = app.booked_course(&course(&absent, "pain-5-day", "morning")).await;
    let attended = app.booked_course(&course(&once, "pain-5-day", "afternoon")).await;
    // Friday 11 December, after both sessions: every infusion has begun.
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 11, 20, 0, 0).unwrap());
    let ids = |course: &Value| -> Vec<String> {
        let all = course["appointments"].as_array().unwrap();
        all.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    let (missed_ids, attended_ids) = (ids(&missed), ids(&attended));
    for id in missed_ids.iter().chain(&attended_ids[..4]) {
        assert_eq!(app.act(id, "no-show", json!({})).await.status, 200, "{id}");
    }
    let last = &attended_ids[4];
    assert_eq!(app.act(last, "check-in", json!({"pain_before": 6})).await.status, 200);
    assert_eq!(app.complete(last, json!({"pain_after": 3})).await.status, 200);

    assert_eq!(course_view(&app, &missed).await["status"], "missed");
    assert_eq!(course_view(&app, &attended).await["status"], "completed");
    for patient in [&absent, &once] {
        app.screen(patient, &[], &[]).await;
    }
    let maintenance = |patient: &str| {
        with(
            course(patient, "maintenance", "morning"),
            json!({"infusions": 1, "earliest_start": "2026-12-14"}),
        )
    };
    let refused = app.book_course(&maintenance(&absent)).await;
    let messages = refused.assert_invalid_fields(&["protocol"]);
    assert!(messages[0].contains("follows a completed course"), "{messages:?}");
    assert_eq!(app.book_course(&maintenance(&once)).await.status, 201);
}

#[actix_web::test]
async fn the_mental_health_response_check_uses_phq9_at_the_third_infusion() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_depression_patient().await;
    let c = app
        .booked_course(&with(
            course(&patient, "mental-health", "morning"),
            json!({"per_week": 2, "weeks": 2}),
        ))
        .await;
    treat(&app, &c, 0, &[(0, Some(20)), (0, Some(16)), (0, Some(12))]).await;
    let view = course_view(&app, &c).await;
    assert_eq!(view["response"]["measure"], "phq9");
    assert_eq!(view["response"]["infusion"], 3);
    assert_eq!(view["response"]["baseline"], 20);
    assert_eq!(view["response"]["latest"], 12);
    assert_eq!(view["needs_review"], false);
    let first = c["appointments"][0]["id"].as_str().unwrap();
    let appt = app.get(&format!("/v1/appointments/{first}")).role(Role::Clinician).send().await;
    assert_eq!(appt.body["phq9"], 20);
    let next = c["appointments"][3]["id"].as_str().unwrap();
    app.act(next, "check-in", json!({"pain_before": 1, "phq9": 28}))
        .await
        .assert_invalid_fields(&["phq9"]);
}

#[actix_web::test]
async fn protocols_are_data_that_admins_tune_within_what_can_be_planned() {
    let app = TestApp::at_clinic_now().await;
    let res = app.get("/v1/protocols").role(Role::Patient).send().await;
    assert_eq!(res.status, 200);
    let codes: Vec<&str> =
        res.body.as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["maintenance", "mental-health", "pain-5-day", "pain-8-10-day"]);
    let five = app.get("/v1/protocols/pain-5-day").role(Role::Integration).send().await.body;
    assert_eq!(five["infusions"], json!({"min": 5, "max": 5}));
    assert_eq!(five["preferred_start_weekday"], "monday");
    assert_eq!(five["response_check_infusion"], 4);
    app.get("/v1/protocols/pain-99-day")
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");

    let path = "/v1/protocols/pain-5-day";
    // The path names the protocol; the body is the rest of it.
    let tuesday = with(
        without(five.clone(), "code"),
        json!({"preferred_start_weekday": "tuesday", "name": "Pain, 5 days from Tuesday"}),
    );
    app.request(actix_web::http::Method::PUT, path)
        .role(Role::Scheduler)
        .json(&tuesday)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let res = app
        .request(actix_web::http::Method::PUT, path)
        .role(Role::Admin)
        .json(&tuesday)
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["code"], "pain-5-day");
    assert_eq!(res.body["preferred_start_weekday"], "tuesday");
    // The planner follows the data: the course now starts on a Tuesday.
    let patient = app.ready_patient().await;
    let c = app.booked_course(&course(&patient, "pain-5-day", "morning")).await;
    assert_eq!(dates(&c)[0], "2026-12-08");

    for (change, field) in [
        (json!({"infusions": {"min": 6, "max": 5}}), "infusions"),
        (json!({"response_check_infusion": 9}), "response_check_infusion"),
        (json!({"categories": []}), "categories"),
        // The code is the path's: in the body it is an unknown field, even
        // when it repeats the path.
        (json!({"code": "pain-6-day"}), "code"),
        (json!({"code": "pain-5-day"}), "code"),
        (json!({"spacing": "weekly"}), "per_week"),
    ] {
        let res = app
            .request(actix_web::http::Method::PUT, path)
            .role(Role::Admin)
            .json(&with(tuesday.clone(), change.clone()))
            .send()
            .await;
        let problem = res.assert_problem(422, "validation_failed");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{change}: {fields:?}");
    }
    // Saturday is no clinic day: such a protocol could never be booked.
    let res = app
        .request(actix_web::http::Method::PUT, path)
        .role(Role::Admin)
        .json(&with(tuesday.clone(), json!({"preferred_start_weekday": "saturday"})))
        .send()
        .await;
    res.assert_invalid_fields(&["protocol"]);
    let weekly =
        without(app.get("/v1/protocols/mental-health").role(Role::Admin).send().await.body, "code");
    for change in [
        json!({"min_gap_days": 4294967295u64}),
        json!({"min_gap_days": 2}),
        json!({"per_week": {"min": 2, "max": 4000000000u64}}),
    ] {
        let res = app
            .request(actix_web::http::Method::PUT, "/v1/protocols/mental-health")
            .role(Role::Admin)
            .json(&with(weekly.clone(), change.clone()))
            .send()
            .await;
        res.assert_problem(422, "validation_failed");
    }
    app.request(actix_web::http::Method::PUT, "/v1/protocols/Bad%20Code")
        .role(Role::Admin)
        .json(&tuesday)
        .send()
        .await
        .assert_problem(404, "not_found");
    let unchanged = app.get(path).role(Role::Admin).send().await.body;
    assert_eq!(unchanged["preferred_start_weekday"], "tuesday");
}

/// Planning reads the horizon's occupancy in a fixed number of queries: as
/// many with hundreds of bookings as with none.
#[actix_web::test]
async fn planning_a_ten_infusion_course_costs_the_same_queries_however_full_the_clinic() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use diesel::connection::{Connection, InstrumentationEvent};
    use infusion_api::domain::course::{self, CourseRequest};
    use infusion_api::store::{appointments, courses};

    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let queries_to_plan = || {
        let mut conn = app.pool.get().unwrap();
        let request: CourseRequest = serde_json::from_value(json!({
            "patient_id": patient, "protocol": "pain-8-10-day", "session": "morning",
            "earliest_start": "2026-12-02", "infusions": 10
        }))
        .unwrap();
        let clinic = app.state.clinic();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let window = course::window(&request, &clinic);
        let facts = courses::facts(&mut conn, &request, window).unwrap();
        let patient_id = request.patient_id.as_str().to_owned();
        let plan = course::plan_reading(&request, facts, &clinic, None, |from, to| {
            appointments::occupancy(&mut conn, from, to, Some(&patient_id))
        })
        .unwrap();
        conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
        assert_eq!(plan.series.len(), 10);
        count.load(Ordering::SeqCst)
    };
    let empty = queries_to_plan();
    // Fill the mornings of the next weeks: 3 of 4 rooms, every clinic day.
    for _ in 0..3 {
        let p = app.ready_patient().await;
        let dates: Vec<String> = NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .iter_days()
            .take(60)
            .filter(|d| {
                use chrono::Datelike;
                d.weekday().number_from_monday() <= 5
            })
            .map(|d| d.to_string())
            .collect();
        for date in dates {
            app.booked(&p, &date, "morning").await;
        }
    }
    assert!(app.count("appointments") > 120);
    assert_eq!(queries_to_plan(), empty);
}

/// A course request has one shape per kind of protocol, as the contract's
/// `oneOf` states: consecutive-day protocols take `infusions`, weekly ones
/// `per_week` and `weeks`; the other kind's fields may be absent or null.
/// Which kind a protocol is, is data: a request of the other kind's shape
/// is refused naming its fields.
#[actix_web::test]
async fn a_course_request_takes_the_shape_of_its_protocols_spacing() {
    let app = TestApp::at_clinic_now().await;
    let pain = app.ready_patient().await;
    let mood = app.ready_depression_patient().await;
    let plan = |body: Value| app.post("/v1/courses/plan").role(Role::Scheduler).json(&body);

    let consecutive = with(
        course(&pain, "pain-8-10-day", "morning"),
        json!({"infusions": 9, "per_week": null, "weeks": null}),
    );
    let res = plan(consecutive).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["infusions"], 9);
    let weekly = with(
        course(&mood, "mental-health", "morning"),
        json!({"per_week": 2, "weeks": 3, "infusions": null}),
    );
    let res = plan(weekly.clone()).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["infusions"], 6);
    let res = app.post("/v1/courses").role(Role::Scheduler).json(&weekly).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!((res.body["per_week"].clone(), res.body["weeks"].clone()), (json!(2), json!(3)));

    // Both kinds at once fits neither shape: refused, even when the count
    // is per_week × weeks.
    let both = with(weekly.clone(), json!({"infusions": 6}));
    plan(both).send().await.assert_invalid_fields(&["infusions"]);
    // A shape the protocol's spacing does not take.
    let weekly_for_pain =
        with(course(&pain, "pain-5-day", "morning"), json!({"per_week": 2, "weeks": 2}));
    plan(weekly_for_pain).send().await.assert_invalid_fields(&["per_week", "weeks"]);
    let consecutive_for_mood =
        with(course(&mood, "mental-health", "morning"), json!({"infusions": 6}));
    let res = plan(consecutive_for_mood).send().await;
    let problem = res.assert_problem(422, "validation_failed");
    assert!(problem["errors"].to_string().contains("per_week"), "{problem}");
}
