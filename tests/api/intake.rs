//! Intake through the API: referrals, attestations, screenings, consults,
//! readiness, and the gate on booking and on the first check-in.

use chrono::Duration;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{clinic_now, patient_body, provider, referral, with, TestApp};

const THU: &str = "2026-12-03";
const TODAY: &str = "2026-12-02";

fn open_codes(readiness_or_problem: &Value) -> Vec<String> {
    readiness_or_problem["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "open" && i["blocking"] == true)
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_depression_patient_without_referral_is_not_ready_and_cannot_be_booked() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let r = app.readiness(&patient).await;
    assert_eq!(r["ready"], false);
    assert_eq!(
        open_codes(&r),
        ["screening", "mental_health_provider_referral", "ongoing_treatment_attestation"]
    );
    let codes: Vec<&str> =
        r["items"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "screening",
            "mental_health_provider_referral",
            "ongoing_treatment_attestation",
            "pain_management_referral",
            "mental_health_evaluation",
            "lamotrigine_prescriber_consult"
        ]
    );

    let res = app.book(&patient, THU, "morning").await;
    let problem = res.assert_problem(409, "not_ready");
    assert_eq!(
        open_codes(problem),
        ["screening", "mental_health_provider_referral", "ongoing_treatment_attestation"]
    );
    assert_eq!(app.count("appointments"), 0);
}

#[actix_web::test]
async fn a_pregnancy_in_the_screening_keeps_the_patient_not_ready_and_says_why() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let referral = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    app.verify(referral["id"].as_str().unwrap()).await;
    app.attest(&patient, "2026-11-25").await;
    let screening = app.screen(&patient, &["pregnant"], &[]).await;
    assert_eq!(screening["outcome"], "ineligible");
    assert_eq!(screening["reasons"], json!(["pregnant"]));

    let r = app.readiness(&patient).await;
    assert_eq!(r["ready"], false);
    assert_eq!(open_codes(&r), ["screening"]);
    // Why is for clinicians: a scheduler and the patient learn only that it is ineligible.
    let detail = r["items"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("ineligible") && !detail.contains("pregnant"), "{r}");
    let own = app.get(&format!("/v1/patients/{patient}/readiness")).patient(&patient).send().await;
    assert!(!own.text.contains("pregnant"), "{}", own.text);
    let clinical =
        app.get(&format!("/v1/patients/{patient}/readiness")).role(Role::Clinician).send().await;
    assert!(
        clinical.body["items"][0]["detail"].as_str().unwrap().ends_with("ineligible: pregnant"),
        "{}",
        clinical.text
    );
    let res = app.book(&patient, THU, "morning").await;
    res.assert_problem(409, "not_ready");
    assert!(!res.text.contains("pregnant"), "{}", res.text);

    // A correction is a new screening; the latest counts.
    app.screen(&patient, &[], &[]).await;
    let r = app.readiness(&patient).await;
    assert_eq!(r["ready"], true, "{r}");
    app.booked(&patient, THU, "morning").await;
}

#[actix_web::test]
async fn a_pain_patient_may_need_a_pain_referral_and_an_evaluation() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    app.screen(&patient, &[], &[]).await;
    assert_eq!(
        open_codes(&app.readiness(&patient).await),
        ["pain_management_referral", "mental_health_evaluation"]
    );
    let pain = app.add_referral(&patient, "pain_management", Role::Integration).await;
    let eval = app.add_referral(&patient, "mental_health_evaluation", Role::Scheduler).await;
    // Received is not enough: a clinician verifies.
    assert_eq!(app.readiness(&patient).await["ready"], false);
    app.verify(pain["id"].as_str().unwrap()).await;
    app.verify(eval["id"].as_str().unwrap()).await;
    assert_eq!(app.readiness(&patient).await["ready"], true);
    app.booked(&patient, THU, "afternoon").await;
}

#[actix_web::test]
async fn a_patient_on_lamotrigine_books_but_checks_in_only_after_the_consult() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let screening = app.screen(&patient, &[], &["Sertraline 50 mg", "lamictal-xr 100mg"]).await;
    assert_eq!(screening["outcome"], "eligible");
    assert_eq!(screening["flags"], json!(["lamotrigine_prescriber_consult"]));
    let r = app.readiness(&patient).await;
    assert_eq!(r["ready"], true);
    assert_eq!(r["items"][5]["status"], "open");
    assert_eq!(r["items"][5]["blocking"], false);

    let appt = app.booked(&patient, TODAY, "afternoon").await;
    let id = appt["id"].as_str().unwrap();
    let res = app.act(id, "check-in", json!({"pain_before": 7})).await;
    let problem = res.assert_problem(409, "not_ready");
    assert_eq!(problem["items"][0]["code"], "lamotrigine_prescriber_consult");

    let consult = json!({
        "prescriber": {"name": "Dr. Sam Park", "practice": "Eastside Neurology", "phone": "+1 555 010 4400"},
        "consulted_on": TODAY,
        "agreed_plan": "Hold the evening dose on infusion days"
    });
    let res = app
        .post(&format!("/v1/patients/{patient}/prescriber-consults"))
        .role(Role::Scheduler)
        .json(&consult)
        .send()
        .await;
    res.assert_problem(403, "forbidden");
    let res = app
        .post(&format!("/v1/patients/{patient}/prescriber-consults"))
        .role(Role::Clinician)
        .json(&consult)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["agreed_plan"], "Hold the evening dose on infusion days");
    assert_eq!(app.readiness(&patient).await["items"][5]["status"], "done");
    let res = app.act(id, "check-in", json!({"pain_before": 7})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let listed = app
        .get(&format!("/v1/patients/{patient}/prescriber-consults"))
        .role(Role::Clinician)
        .send()
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn an_expired_screening_no_longer_counts() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    // Screened on 2 December: counts through 1 January (30 days).
    app.travel_to(clinic_now() + Duration::days(30));
    assert_eq!(app.readiness(&patient).await["ready"], true);
    app.travel_to(clinic_now() + Duration::days(31));
    let r = app.readiness(&patient).await;
    assert_eq!(open_codes(&r), ["screening"]);
    assert!(r["items"][0]["detail"].as_str().unwrap().contains("older than 30 days"));
    app.book(&patient, "2027-01-05", "morning").await.assert_problem(409, "not_ready");
}

#[actix_web::test]
async fn screening_answers_are_all_required_and_every_bad_one_is_named() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let before = app.count("screenings");
    let path = format!("/v1/patients/{patient}/screenings");
    let res = app
        .post(&path)
        .role(Role::Clinician)
        .json(&json!({"criteria": {"pregnant": "no", "history_of_psychosis": false, "smoker": true}, "medications": []}))
        .send()
        .await;
    let problem = res.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "criteria.active_substance_abuse",
            "criteria.undiagnosed_mental_health_condition",
            "criteria.increased_intracranial_pressure",
            "criteria.uncontrolled_hypertension",
            "criteria.unstable_cardiovascular_disease",
            "criteria.previous_negative_ketamine_response",
            "criteria.ketamine_abuse_disorder",
            "criteria.pregnant",
            "criteria.smoker"
        ]
    );
    for (body, field) in [
        (json!({"criteria": [], "medications": []}), "criteria"),
        (json!({"criteria": {}}), "medications"),
        (json!({"medications": []}), "criteria"),
        (json!({"criteria": {}, "medications": []}), "criteria.active_substance_abuse"),
        // A name that does not parse is named before any rule is looked at.
        (json!({"criteria": {}, "medications": [{"name": ""}]}), "medications[0].name"),
        (json!({"criteria": {}, "medications": [{"dose": "5"}]}), "medications[0].dose"),
    ] {
        let res = app.post(&path).role(Role::Clinician).json(&body).send().await;
        let problem = res.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    assert_eq!(app.count("screenings"), before);
    assert_eq!(app.count("screening_medications"), 0);
}

#[actix_web::test]
async fn screenings_are_immutable_and_only_clinicians_see_them() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let first = app.screen(&patient, &["uncontrolled_hypertension"], &["Lisinopril 10 mg"]).await;
    let id = first["id"].as_str().unwrap();
    assert_eq!(first["screened_on"], TODAY);
    assert_eq!(first["screened_by"], "clinician:test-clinician");
    assert_eq!(first["medications"], json!([{"name": "Lisinopril 10 mg"}]));
    let path = format!("/v1/screenings/{id}");
    let res = app.get(&path).role(Role::Clinician).send().await;
    assert_eq!(res.body, first);
    for method in [
        actix_web::http::Method::PUT,
        actix_web::http::Method::PATCH,
        actix_web::http::Method::DELETE,
    ] {
        let res = app.request(method, &path).role(Role::Admin).json(&json!({})).send().await;
        res.assert_problem(405, "method_not_allowed");
    }
    for role in [Role::Scheduler, Role::Integration] {
        app.get(&path).role(role).send().await.assert_problem(403, "forbidden");
        app.get(&format!("/v1/patients/{patient}/screenings"))
            .role(role)
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    app.get(&path).patient(&patient).send().await.assert_problem(403, "forbidden");
    let all = app.get(&format!("/v1/patients/{patient}/screenings")).role(Role::Admin).send().await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    app.post(&format!("/v1/patients/{patient}/screenings"))
        .role(Role::Scheduler)
        .json(&json!({"criteria": {}, "medications": []}))
        .send()
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn referrals_are_checked_then_verified_or_rejected_by_clinicians() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let path = format!("/v1/patients/{patient}/referrals");
    let cases = [
        (
            json!({"provider": {"name": "Dr. X", "practice": "P", "npi": "1234567890", "phone": "+1 555 010 3000"}}),
            "provider.npi",
        ),
        (json!({"provider": {"name": "Dr. X", "practice": "P"}}), "provider"),
        (
            json!({"provider": {"name": "", "practice": "P", "email": "x@example.org"}}),
            "provider.name",
        ),
        (json!({"received_on": "2026-12-03"}), "received_on"),
        (json!({"document_reference": " "}), "document_reference"),
        (json!({"kind": "psychic"}), "kind"),
    ];
    for (change, field) in cases {
        let res = app
            .post(&path)
            .role(Role::Scheduler)
            .json(&with(referral("mental_health_provider"), change))
            .send()
            .await;
        res.assert_invalid_fields(&[field]);
    }
    app.post(&path)
        .patient(&patient)
        .json(&referral("mental_health_provider"))
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(app.count("referrals"), 0);

    let created = app.add_referral(&patient, "mental_health_provider", Role::Integration).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "received");
    assert_eq!(created["expires_on"], "2027-11-20");
    assert_eq!(created["provider"]["npi"], "1234567893");
    app.post(&format!("/v1/referrals/{id}/verify"))
        .role(Role::Scheduler)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let verified = app.verify(id).await;
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["decided_by"], "clinician:test-clinician");
    let res = app
        .post(&format!("/v1/referrals/{id}/reject"))
        .role(Role::Clinician)
        .json(&json!({"reason": "late"}))
        .send()
        .await;
    res.assert_problem(409, "invalid_transition");

    let other = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    let other_id = other["id"].as_str().unwrap();
    let res = app
        .post(&format!("/v1/referrals/{other_id}/reject"))
        .role(Role::Clinician)
        .json(&json!({"reason": ""}))
        .send()
        .await;
    res.assert_invalid_fields(&["reason"]);
    let res = app
        .post(&format!("/v1/referrals/{other_id}/reject"))
        .role(Role::Clinician)
        .json(&json!({"reason": "Unsigned letter"}))
        .send()
        .await;
    assert_eq!(res.body["status"], "rejected");
    assert_eq!(res.body["reject_reason"], "Unsigned letter");
    app.post(&format!("/v1/referrals/{other_id}/verify"))
        .role(Role::Clinician)
        .send()
        .await
        .assert_problem(409, "invalid_transition");

    let listed = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    // Integrations send referrals in; they do not read them back.
    app.get(&path).role(Role::Integration).send().await.assert_problem(403, "forbidden");
    app.get(&format!("/v1/referrals/{id}"))
        .role(Role::Integration)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let missing = uuid::Uuid::now_v7();
    app.get(&format!("/v1/referrals/{missing}"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/patients/{missing}/referrals"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/v1/patients/{missing}/referrals"))
        .role(Role::Admin)
        .json(&referral("pain_management"))
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn referrals_expire_and_expired_ones_cannot_be_verified() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let verified = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    app.verify(verified["id"].as_str().unwrap()).await;
    let pending = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    // Received 20 November 2026: counts through 20 November 2027.
    app.travel_to(clinic_now() + Duration::days(354));
    let res = app
        .get(&format!("/v1/referrals/{}", verified["id"].as_str().unwrap()))
        .role(Role::Scheduler)
        .send()
        .await;
    assert_eq!(res.body["status"], "expired");
    let res = app
        .post(&format!("/v1/referrals/{}/verify", pending["id"].as_str().unwrap()))
        .role(Role::Clinician)
        .send()
        .await;
    res.assert_problem(409, "invalid_transition");
    let r = app.readiness(&patient).await;
    assert!(open_codes(&r).contains(&"mental_health_provider_referral".to_owned()));
}

#[actix_web::test]
async fn attestations_are_recorded_by_staff_and_the_latest_counts() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let path = format!("/v1/patients/{patient}/treatment-attestations");
    let body = json!({"provider": provider(), "attested_on": "2026-11-30"});
    app.post(&path)
        .role(Role::Integration)
        .json(&body)
        .send()
        .await
        .assert_problem(403, "forbidden");
    app.post(&path)
        .role(Role::Clinician)
        .json(&with(body.clone(), json!({"attested_on": "2026-12-03"})))
        .send()
        .await
        .assert_invalid_fields(&["attested_on"]);
    let res = app.post(&path).role(Role::Clinician).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["attested_on"], "2026-11-30");
    app.attest(&patient, "2025-01-01").await;
    let listed = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    let r = app.readiness(&patient).await;
    assert_eq!(r["items"][2]["status"], "done");
    assert_eq!(r["items"][2]["detail"], "attested 2026-11-30");
}

#[actix_web::test]
async fn a_patient_reads_its_own_readiness_only() {
    let app = TestApp::at_clinic_now().await;
    let mine = app.ready_patient().await;
    let theirs = app.ready_patient().await;
    let res = app.get(&format!("/v1/patients/{mine}/readiness")).patient(&mine).send().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["ready"], true);
    app.get(&format!("/v1/patients/{theirs}/readiness"))
        .patient(&mine)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/patients/{mine}/readiness"))
        .role(Role::Integration)
        .send()
        .await
        .assert_problem(403, "forbidden");
    let missing = uuid::Uuid::now_v7();
    app.get(&format!("/v1/patients/{missing}/readiness"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
}
