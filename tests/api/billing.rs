//! Billing through the API: the charges a completed infusion creates at the
//! fee schedule's prices, voids and corrections, payments and the balance,
//! the superbill as JSON and as a PDF (read back with `pdftotext`), who may
//! do what, what is refused (and that a refusal stores nothing), and the
//! races a void or a completion may run into.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{billing_profile, patient_body, with, TestApp, TestResponse};

const TODAY: &str = "2026-12-02";
/// The NPI of the clinician of [`TestApp::billing_ready`].
const CLINICIAN_NPI: &str = "1003000126";
const NDC: &str = "00409-2051-05";

/// A patient's postal address, as a superbill prints it.
fn patient_address() -> Value {
    json!({"line1": "12 Elm St", "city": "Hamden", "state": "CT", "postal_code": "06517"})
}

/// A chronic-pain (CRPS) patient whose indication a clinician coded G90.50,
/// with an address, screened eligible today: ready to book. Its id.
async fn coded_patient(app: &TestApp) -> String {
    let body = with(
        patient_body(),
        json!({
            "indications": [{"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"}],
            "in_mental_health_treatment": true,
            "pain_referral_required": false,
            "address": patient_address(),
        }),
    );
    let id = app.create_patient(body).await["id"].as_str().unwrap().to_owned();
    app.screen(&id, &[], &[]).await;
    id
}

/// Books this afternoon for `patient` and checks it in; the appointment's id.
async fn checked_in(app: &TestApp, patient: &str) -> String {
    let id = app.booked(patient, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let res = app.act(&id, "check-in", json!({"pain_before": 8})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    id
}

/// A coded patient's IV infusion of `minutes` this afternoon, completed by
/// the clinician of [`TestApp::billing_ready`]: (patient, appointment).
async fn infused(app: &TestApp, minutes: u16) -> (String, String) {
    let patient = coded_patient(app).await;
    let appointment = checked_in(app, &patient).await;
    let res =
        app.complete(&appointment, json!({"pain_after": 3, "infusion_minutes": minutes})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    (patient, appointment)
}

/// A patient's charges as an admin lists them.
async fn charges_of(app: &TestApp, patient: &str) -> Vec<Value> {
    let res = app.get(&format!("/v1/patients/{patient}/charges")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["items"].as_array().unwrap().clone()
}

/// The one charge of `code` among `charges`.
fn line<'a>(charges: &'a [Value], code: &str) -> &'a Value {
    let of: Vec<&Value> = charges.iter().filter(|c| c["code"] == code).collect();
    assert_eq!(of.len(), 1, "one {code} in {charges:?}");
    of[0]
}

/// Codes with their units, in the order listed.
fn codes_and_units(charges: &[Value]) -> Vec<(String, u64)> {
    charges
        .iter()
        .map(|c| (c["code"].as_str().unwrap().to_owned(), c["units"].as_u64().unwrap()))
        .collect()
}

/// A patient's balance as a scheduler reads it.
async fn balance_of(app: &TestApp, patient: &str) -> Value {
    let res =
        app.get(&format!("/v1/patients/{patient}/balance")).role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body
}

fn balance(charged: i64, paid: i64) -> Value {
    json!({"charged_cents": charged, "paid_cents": paid, "balance_cents": charged - paid})
}

fn texts(responses: &[TestResponse]) -> Vec<&str> {
    responses.iter().map(|r| r.text.as_str()).collect()
}

#[actix_web::test]
async fn a_completed_100_minute_infusion_bills_its_three_charges_at_the_fee_schedule() {
    let app = TestApp::at_clinic_now().await;
    let clinician = app.billing_ready().await;
    let patient = coded_patient(&app).await;
    let appointment = checked_in(&app, &patient).await;
    assert_eq!(app.count("charges"), 0);

    let res = app.complete(&appointment, json!({"pain_after": 3, "infusion_minutes": 100})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "completed");
    assert_eq!(res.body["clinician_id"], clinician.as_str());
    assert_eq!(res.body["infusion_minutes"], 100);
    let stored =
        app.get(&format!("/v1/appointments/{appointment}")).role(Role::Clinician).send().await;
    assert_eq!(stored.body["clinician_id"], clinician.as_str(), "{}", stored.text);
    assert_eq!(stored.body["infusion_minutes"], 100);

    let charges = charges_of(&app, &patient).await;
    assert_eq!(app.count("charges"), 3);
    let mut billed = codes_and_units(&charges);
    billed.sort();
    assert_eq!(billed, [("96365".into(), 1), ("96366".into(), 1), ("J3490".into(), 1)]);
    for (code, price) in [("96365", 45000), ("96366", 15000), ("J3490", 7500)] {
        let c = line(&charges, code);
        assert_eq!(c["unit_price_cents"], price, "{c}");
        assert_eq!(c["amount_cents"], price, "{c}");
        assert_eq!(c["patient_id"], patient.as_str());
        assert_eq!(c["appointment_id"], appointment.as_str());
        assert_eq!(c["clinician_id"], clinician.as_str());
        assert_eq!(c["date_of_service"], TODAY);
        assert_eq!(c["place_of_service"], "11");
        assert_eq!(c["diagnoses"], json!(["G90.50"]));
        assert_eq!(c["modifiers"], json!([]));
        assert_eq!(c["created_by"], "clinician:test-clinician", "who completed it");
        assert_eq!(c["void"], Value::Null);
    }
    assert_eq!(
        line(&charges, "J3490")["drug"],
        json!({"ndc": NDC, "unit": "ML", "quantity": "10"})
    );
    assert_eq!(line(&charges, "96365")["drug"], Value::Null);
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));
}

/// 15 minutes or less is not an infusion code: the drug alone. 151 minutes
/// runs more than 30 minutes into the third hour: 96366 twice.
#[actix_web::test]
async fn a_short_infusion_bills_the_drug_alone_and_a_long_one_each_further_hour() {
    let app = TestApp::at_clinic_now().await;
    app.billing_ready().await;
    let (short, _) = infused(&app, 15).await;
    let charges = charges_of(&app, &short).await;
    assert_eq!(codes_and_units(&charges), [("J3490".into(), 1)]);
    assert_eq!(balance_of(&app, &short).await, balance(7500, 0));

    let (long, _) = infused(&app, 151).await;
    let charges = charges_of(&app, &long).await;
    let mut billed = codes_and_units(&charges);
    billed.sort();
    assert_eq!(billed, [("96365".into(), 1), ("96366".into(), 2), ("J3490".into(), 1)]);
    assert_eq!(line(&charges, "96366")["amount_cents"], 30000);
    assert_eq!(balance_of(&app, &long).await, balance(45000 + 30000 + 7500, 0));
    assert_eq!(app.count("charges"), 4);
}

#[actix_web::test]
async fn a_no_show_or_a_cancelled_appointment_bills_nothing() {
    let app = TestApp::at_clinic_now().await;
    app.billing_ready().await;
    let cancelled = coded_patient(&app).await;
    let id = app.booked(&cancelled, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    let res = app.act(&id, "cancel", json!({"reason": "Flu"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let missed = coded_patient(&app).await;
    let id = app.booked(&missed, TODAY, "afternoon").await["id"].as_str().unwrap().to_owned();
    // The afternoon session has begun: 13:00 in New York is 18:00 UTC.
    app.travel_to(Utc.with_ymd_and_hms(2026, 12, 2, 18, 30, 0).unwrap());
    let res = app.act(&id, "no-show", json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "no_show");

    assert_eq!(app.count("charges"), 0);
    for patient in [&cancelled, &missed] {
        assert_eq!(charges_of(&app, patient).await, Vec::<Value>::new());
        assert_eq!(balance_of(&app, patient).await, balance(0, 0));
    }
}

/// The fee schedule prices the administration codes but not the drug: the
/// completion is refused naming J3490, rather than bill the drug at nothing,
/// and the appointment is not completed without its charges.
#[actix_web::test]
async fn completion_is_refused_while_the_fee_schedule_does_not_price_a_code_it_bills() {
    let app = TestApp::at_clinic_now().await;
    let res =
        app.put("/v1/billing/profile").role(Role::Admin).json(&billing_profile()).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    for (code, price) in [("96365", 45000), ("96366", 15000)] {
        let res = app
            .put(&format!("/v1/billing/fees/{code}"))
            .role(Role::Admin)
            .json(&json!({"price_cents": price}))
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    let clinician = json!({"name": "Grace Hopper", "credentials": "MD", "npi": CLINICIAN_NPI});
    let res = app.post("/v1/clinicians").role(Role::Admin).json(&clinician).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let clinician = res.body["id"].as_str().unwrap().to_owned();

    let patient = coded_patient(&app).await;
    let appointment = checked_in(&app, &patient).await;
    let body = json!({"pain_after": 3, "clinician_id": clinician, "infusion_minutes": 100});
    let res = app.act(&appointment, "complete", body.clone()).await;
    let problem = res.assert_problem(409, "fee_schedule_incomplete");
    assert!(problem["detail"].as_str().unwrap().contains("J3490"), "{}", res.text);
    let stored =
        app.get(&format!("/v1/appointments/{appointment}")).role(Role::Clinician).send().await;
    assert_eq!(stored.body["status"], "checked_in", "{}", stored.text);
    assert_eq!(stored.body["clinician_id"], Value::Null);
    assert_eq!(app.count("charges"), 0);

    // Priced, the same completion goes through.
    let fee = json!({"price_cents": 7500, "drug": {"ndc": NDC, "unit": "ML", "quantity": "10"}});
    let res = app.put("/v1/billing/fees/J3490").role(Role::Admin).json(&fee).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.act(&appointment, "complete", body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.count("charges"), 3);
}

#[actix_web::test]
async fn completion_names_an_active_clinician_on_record() {
    let app = TestApp::at_clinic_now().await;
    let clinician = app.billing_ready().await;
    let patient = coded_patient(&app).await;
    let appointment = checked_in(&app, &patient).await;

    let res = app
        .patch(&format!("/v1/clinicians/{clinician}"))
        .role(Role::Admin)
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["active"], false);
    let res = app.complete(&appointment, json!({"pain_after": 3})).await;
    res.assert_invalid_fields(&["clinician_id"]);

    let nobody = "019ac5b0-0000-7000-8000-00000000dead";
    let res = app.complete(&appointment, json!({"pain_after": 3, "clinician_id": nobody})).await;
    res.assert_invalid_fields(&["clinician_id"]);
    let res = app.complete(&appointment, json!({"pain_after": 3, "clinician_id": "dr-grey"})).await;
    res.assert_invalid_fields(&["clinician_id"]);
    for minutes in [json!(0), json!(481), json!(90.5), json!("100")] {
        let res =
            app.complete(&appointment, json!({"pain_after": 3, "infusion_minutes": minutes})).await;
        res.assert_invalid_fields(&["infusion_minutes"]);
    }

    let stored =
        app.get(&format!("/v1/appointments/{appointment}")).role(Role::Clinician).send().await;
    assert_eq!(stored.body["status"], "checked_in", "{}", stored.text);
    assert_eq!(app.count("charges"), 0);
}

#[actix_web::test]
async fn a_voided_charge_comes_off_the_balance_and_stays_on_record() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let charges = charges_of(&app, &patient).await;
    let hour = line(&charges, "96366")["id"].as_str().unwrap().to_owned();
    let void = format!("/v1/charges/{hour}/void");

    // Refused: no reason, a blank one; not a clinical role.
    for body in [json!({}), json!({"reason": "  "})] {
        let res = app.post(&void).role(Role::Clinician).json(&body).send().await;
        res.assert_invalid_fields(&["reason"]);
    }
    let reason = json!({"reason": "Infusion ran 85 minutes, entered as 100"});
    for role in [Role::Scheduler, Role::Integration] {
        let res = app.post(&void).role(role).json(&reason).send().await;
        res.assert_problem(403, "forbidden");
    }
    let res = app.post(&void).patient(&patient).json(&reason).send().await;
    res.assert_problem(403, "forbidden");
    assert_eq!(app.count("charges WHERE voided_at IS NOT NULL"), 0);
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));

    let res = app.post(&void).role(Role::Clinician).json(&reason).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["id"], hour.as_str());
    assert_eq!(res.body["void"]["reason"], "Infusion ran 85 minutes, entered as 100");
    assert_eq!(res.body["void"]["by"], "clinician:test-clinician");
    assert!(res.body["void"]["at"].is_string(), "{}", res.text);
    assert_eq!(balance_of(&app, &patient).await, balance(52500, 0));

    let again = app.post(&void).role(Role::Admin).json(&json!({"reason": "Twice"})).send().await;
    again.assert_problem(409, "already_voided");
    let res = app.get(&format!("/v1/charges/{hour}")).role(Role::Scheduler).send().await;
    assert_eq!(res.body["void"]["reason"], "Infusion ran 85 minutes, entered as 100");

    // It still lists, voided; the other two stand.
    let charges = charges_of(&app, &patient).await;
    assert_eq!(charges.len(), 3);
    assert_eq!(
        line(&charges, "96366")["void"]["reason"],
        "Infusion ran 85 minutes, entered as 100"
    );
    assert_eq!(line(&charges, "96365")["void"], Value::Null);
    assert_eq!(app.count("charges"), 3);
}

/// A charge is never edited: a correction is a new charge, at the fee
/// schedule's price, for the same infusion.
#[actix_web::test]
async fn a_correction_is_a_new_charge_at_the_fee_schedule_price() {
    let app = TestApp::at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let clinician = app.billing_ready().await;
    let charges = charges_of(&app, &patient).await;
    let hour = line(&charges, "96366")["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&format!("/v1/charges/{hour}/void"))
        .role(Role::Admin)
        .json(&json!({"reason": "Wrong units"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let path = format!("/v1/patients/{patient}/charges");
    let correction = json!({"code": "96366", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician, "appointment_id": appointment});
    for role in [Role::Scheduler, Role::Integration] {
        let res = app.post(&path).role(role).json(&correction).send().await;
        res.assert_problem(403, "forbidden");
    }
    let res = app.post(&path).patient(&patient).json(&correction).send().await;
    res.assert_problem(403, "forbidden");
    assert_eq!(app.count("charges"), 3);

    let res = app.post(&path).role(Role::Clinician).json(&correction).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap();
    assert_eq!(res.header("location"), Some(format!("/v1/charges/{id}").as_str()));
    assert_eq!(res.body["unit_price_cents"], 15000);
    assert_eq!(res.body["amount_cents"], 15000);
    assert_eq!(res.body["appointment_id"], appointment.as_str());
    assert_eq!(res.body["diagnoses"], json!(["G90.50"]), "the patient's, when not given");
    assert_eq!(res.body["created_by"], "clinician:test-clinician");
    let fetched = app.get(&format!("/v1/charges/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body, res.body);
    assert_eq!(app.count("charges"), 4);
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));
}

/// Billing tells the change feed and webhooks what it did, ids only, as the
/// clinical records do: the charges a completed infusion made, a charge
/// added by hand, payments, and each voided. An admin follows them; an EHR
/// integration, which reads no billing, does not see them.
#[actix_web::test]
async fn billing_changes_are_events_admins_follow_and_integrations_do_not_see() {
    use crate::events::{follow, types};
    let app = TestApp::issuing_at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let charges = charges_of(&app, &patient).await;
    let hour = line(&charges, "96366")["id"].as_str().unwrap().to_owned();
    let reason = json!({"reason": "Entered twice"});
    let res = app.post(&format!("/v1/charges/{hour}/void")).role(Role::Clinician).json(&reason);
    assert_eq!(res.send().await.status, 200);
    let clinician = app.billing_ready().await;
    let by_hand = json!({"code": "96366", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician, "appointment_id": appointment});
    let res = app.post(&format!("/v1/patients/{patient}/charges")).role(Role::Clinician);
    let res = res.json(&by_hand).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let added = res.body["id"].as_str().unwrap().to_owned();
    let payment = json!({"amount_cents": 45000, "received_on": TODAY, "method": "card"});
    let res = app.post(&format!("/v1/patients/{patient}/payments")).role(Role::Scheduler);
    let res = res.json(&payment).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let paid = res.body["id"].as_str().unwrap().to_owned();
    let res = app.post(&format!("/v1/payments/{paid}/void")).role(Role::Scheduler).json(&reason);
    assert_eq!(res.send().await.status, 200);

    let all = follow(&app, usize::try_from(app.count("events")).unwrap()).await;
    let billing: Vec<Value> = all
        .iter()
        .filter(|e| ["charge", "payment"].contains(&e["resource_type"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(
        types(&billing),
        [
            "charge.created",
            "charge.created",
            "charge.created",
            "charge.voided",
            "charge.created",
            "payment.recorded",
            "payment.voided"
        ]
    );
    let mut made: Vec<&str> = charges.iter().map(|c| c["id"].as_str().unwrap()).collect();
    made.sort_unstable();
    let mut told: Vec<&str> =
        billing[..3].iter().map(|e| e["resource_id"].as_str().unwrap()).collect();
    told.sort_unstable();
    assert_eq!(told, made, "one event per charge the completion made");
    let ids = |e: &Value| (e["resource_id"].as_str().unwrap().to_owned(), e["patient_id"].clone());
    assert_eq!(ids(&billing[3]), (hour, json!(patient)));
    assert_eq!(ids(&billing[4]), (added, json!(patient)));
    assert_eq!(ids(&billing[5]), (paid.clone(), json!(patient)));
    assert_eq!(ids(&billing[6]), (paid, json!(patient)));
    // Ids only: no amount, code or reason.
    for event in &billing {
        for leaked in ["45000", "96366", "Entered twice", "card"] {
            assert!(!event.to_string().contains(leaked), "{leaked} in {event}");
        }
    }
    // The completion's own event sits beside its charges'.
    let completed = all.iter().position(|e| e["type"] == "appointment.completed").unwrap();
    assert_eq!(types(&all[completed + 1..completed + 4]), ["charge.created"; 3]);

    // An integration reads no billing: not in the feed, with or without
    // scopes, even when it asks for those types; the rest it sees.
    let integration = app.get("/v1/events?limit=1000").role(Role::Integration).send().await;
    assert_eq!(integration.status, 200, "{}", integration.text);
    let seen = integration.body["events"].as_array().unwrap();
    assert_eq!(seen.len(), all.len() - billing.len(), "{}", integration.text);
    assert!(types(seen).contains(&"appointment.completed"));
    let asked = app
        .get("/v1/events?types=charge.created,payment.recorded")
        .role(Role::Integration)
        .send()
        .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert_eq!(asked.body["events"], json!([]));
    let scoped = app.scoped_token("system/*.rs");
    let res = app.get("/v1/events?limit=1000").bearer(&scoped).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(!res.body.to_string().contains("charge."), "{}", res.text);
    assert!(!res.body.to_string().contains("payment."), "{}", res.text);
}

#[actix_web::test]
async fn a_hand_entered_charge_is_refused_whole_when_any_part_is_wrong() {
    let app = TestApp::at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let clinician = app.billing_ready().await;
    let other = coded_patient(&app).await;
    let path = format!("/v1/patients/{patient}/charges");
    let base = json!({"code": "96365", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician});
    let cases = [
        (json!({"date_of_service": "2026-12-03"}), "date_of_service"),
        (json!({"units": 0}), "units"),
        (json!({"units": 100}), "units"),
        (json!({"code": "S0013"}), "code"),
        (json!({"modifiers": ["JZ", "JZ"]}), "modifiers"),
        (json!({"modifiers": ["JZ", "25", "59", "XU", "GA"]}), "modifiers"),
        (json!({"modifiers": ["jz"]}), "modifiers[0]"),
        (json!({"diagnoses": ["G90.5"]}), "diagnoses[0]"),
        (json!({"diagnoses": ["Z00.00"]}), "diagnoses[0]"),
        (json!({"clinician_id": "019ac5b0-0000-7000-8000-00000000dead"}), "clinician_id"),
        (json!({"appointment_id": "019ac5b0-0000-7000-8000-00000000dead"}), "appointment_id"),
        (json!({"unit_price_cents": 1}), "unit_price_cents"),
    ];
    for (change, field) in cases {
        let res =
            app.post(&path).role(Role::Clinician).json(&with(base.clone(), change)).send().await;
        res.assert_invalid_fields(&[field]);
    }
    // Another patient's appointment is not this patient's to bill.
    let res = app
        .post(&format!("/v1/patients/{other}/charges"))
        .role(Role::Clinician)
        .json(&with(base.clone(), json!({"appointment_id": appointment})))
        .send()
        .await;
    res.assert_invalid_fields(&["appointment_id"]);
    // An unknown patient is 404.
    let nobody = "/v1/patients/019ac5b0-0000-7000-8000-00000000dead/charges";
    let res = app.post(nobody).role(Role::Clinician).json(&base).send().await;
    res.assert_problem(404, "not_found");
    assert_eq!(app.count("charges"), 3);
}

#[actix_web::test]
async fn a_payment_comes_off_the_balance_and_a_voided_one_goes_back_on() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let path = format!("/v1/patients/{patient}/payments");
    let payment =
        json!({"amount_cents": 45000, "received_on": TODAY, "method": "card", "reference": "4242"});
    let res = app.post(&path).role(Role::Scheduler).json(&payment).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/v1/payments/{id}").as_str()));
    assert_eq!(res.body["amount_cents"], 45000);
    assert!(res.body["amount_cents"].is_i64());
    assert_eq!(res.body["method"], "card");
    assert_eq!(res.body["received_on"], TODAY);
    assert_eq!(res.body["created_by"], "scheduler:test-scheduler");
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 45000));
    let listed = app.get(&path).role(Role::Clinician).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1, "{}", listed.text);

    // The front desk's retry of one payment, under one key, records it once.
    let cash = json!({"amount_cents": 1000, "received_on": TODAY, "method": "cash"});
    let keyed =
        || app.post(&path).role(Role::Scheduler).header("idempotency-key", "pay-1").json(&cash);
    let first = keyed().send().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = keyed().send().await;
    assert_eq!((again.status, &again.text), (201, &first.text));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("payments"), 2);
    let res = app
        .post(&format!("/v1/payments/{}/void", first.body["id"].as_str().unwrap()))
        .role(Role::Clinician)
        .json(&json!({"reason": "Test entry"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let void = format!("/v1/payments/{id}/void");
    let res = app.post(&void).role(Role::Scheduler).json(&json!({})).send().await;
    res.assert_invalid_fields(&["reason"]);
    let res = app.post(&void).patient(&patient).json(&json!({"reason": "Mine"})).send().await;
    res.assert_problem(403, "forbidden");
    let res = app
        .post(&void)
        .role(Role::Scheduler)
        .json(&json!({"reason": "Card declined"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["void"]["reason"], "Card declined");
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));
    let res = app.post(&void).role(Role::Admin).json(&json!({"reason": "Again"})).send().await;
    res.assert_problem(409, "already_voided");
    let fetched = app.get(&format!("/v1/payments/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body["void"]["reason"], "Card declined", "{}", fetched.text);
    assert_eq!(app.count("payments"), 2);
}

#[actix_web::test]
async fn a_refused_payment_leaves_no_row_behind() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let path = format!("/v1/patients/{patient}/payments");
    let payment = json!({"amount_cents": 45000, "received_on": TODAY, "method": "card"});
    let cases = [
        (json!({"amount_cents": 0}), "amount_cents"),
        (json!({"amount_cents": -5}), "amount_cents"),
        (json!({"amount_cents": 12.5}), "amount_cents"),
        (json!({"amount_cents": "45000"}), "amount_cents"),
        (json!({"amount_cents": 100_000_001}), "amount_cents"),
        (json!({"received_on": "2026-12-03"}), "received_on"),
        (json!({"received_on": "12/02/2026"}), "received_on"),
        (json!({"method": "bitcoin"}), "method"),
        (json!({"tip_cents": 500}), "tip_cents"),
    ];
    for (change, field) in cases {
        let res =
            app.post(&path).role(Role::Scheduler).json(&with(payment.clone(), change)).send().await;
        res.assert_invalid_fields(&[field]);
    }
    let res = app.post(&path).patient(&patient).json(&payment).send().await;
    res.assert_problem(403, "forbidden");
    let res = app.post(&path).role(Role::Integration).json(&payment).send().await;
    res.assert_problem(403, "forbidden");
    let nobody = "/v1/patients/019ac5b0-0000-7000-8000-00000000dead/payments";
    let res = app.post(nobody).role(Role::Scheduler).json(&payment).send().await;
    res.assert_problem(404, "not_found");
    assert_eq!(app.count("payments"), 0);
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));
}

#[actix_web::test]
async fn a_patient_reads_its_own_account_and_no_one_elses() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let (other, _) = infused(&app, 15).await;
    let payment = json!({"amount_cents": 2500, "received_on": TODAY, "method": "cash"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Admin)
        .json(&payment)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let payment_id = res.body["id"].as_str().unwrap().to_owned();
    let charge_id =
        line(&charges_of(&app, &patient).await, "96366")["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&format!("/v1/charges/{charge_id}/void"))
        .role(Role::Clinician)
        .json(&json!({"reason": "Entered twice"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let res = app.get(&format!("/v1/patients/{patient}/balance")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, balance(52500, 2500));
    let res = app.get(&format!("/v1/patients/{patient}/charges")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"].as_array().unwrap().len(), 3);
    let res = app.get(&format!("/v1/patients/{patient}/payments")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"][0]["id"], payment_id.as_str());
    // Staff are shown to a patient by role alone.
    assert_eq!(res.body["items"][0]["created_by"], "admin");
    let res = app.get(&format!("/v1/charges/{charge_id}")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (&res.body["created_by"], &res.body["void"]["by"]),
        (&json!("clinician"), &json!("clinician"))
    );
    assert_eq!(res.body["void"]["reason"], "Entered twice");
    let res = app.get(&format!("/v1/payments/{payment_id}")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);

    // The other patient's token: as if none of it were there.
    for path in [
        format!("/v1/patients/{patient}/balance"),
        format!("/v1/patients/{patient}/charges"),
        format!("/v1/patients/{patient}/payments"),
        format!("/v1/patients/{patient}/superbill"),
        format!("/v1/charges/{charge_id}"),
        format!("/v1/payments/{payment_id}"),
    ] {
        let res = app.get(&path).patient(&other).send().await;
        res.assert_problem(404, "not_found");
    }
    // The settings and the roster are staff's.
    for path in ["/v1/billing/profile", "/v1/billing/fees", "/v1/clinicians"] {
        app.get(path).patient(&patient).send().await.assert_problem(403, "forbidden");
    }
}

/// An integration reads the schedule; money is none of its business.
#[actix_web::test]
async fn the_integration_role_is_refused_every_billing_endpoint() {
    let app = TestApp::at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let clinician = app.billing_ready().await;
    let charge = charges_of(&app, &patient).await[0]["id"].as_str().unwrap().to_owned();
    let payment = json!({"amount_cents": 2500, "received_on": TODAY, "method": "cash"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Admin)
        .json(&payment)
        .send()
        .await;
    let payment_id = res.body["id"].as_str().unwrap().to_owned();
    let reason = json!({"reason": "Entered twice"});
    let fee = json!({"price_cents": 1});
    let new_clinician = json!({"name": "Ada Byron", "credentials": "NP", "npi": "1234567893"});
    let charge_body = json!({"code": "96366", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician, "appointment_id": appointment});
    let p = &patient;
    let requests = [
        ("GET", "/v1/billing/profile".to_owned(), None),
        ("PUT", "/v1/billing/profile".to_owned(), Some(billing_profile())),
        ("GET", "/v1/billing/fees".to_owned(), None),
        ("PUT", "/v1/billing/fees/96365".to_owned(), Some(fee)),
        ("GET", "/v1/clinicians".to_owned(), None),
        ("POST", "/v1/clinicians".to_owned(), Some(new_clinician)),
        ("GET", format!("/v1/clinicians/{clinician}"), None),
        ("PATCH", format!("/v1/clinicians/{clinician}"), Some(json!({"active": false}))),
        ("GET", format!("/v1/patients/{p}/charges"), None),
        ("POST", format!("/v1/patients/{p}/charges"), Some(charge_body)),
        ("GET", format!("/v1/charges/{charge}"), None),
        ("POST", format!("/v1/charges/{charge}/void"), Some(reason.clone())),
        ("GET", format!("/v1/patients/{p}/payments"), None),
        ("POST", format!("/v1/patients/{p}/payments"), Some(payment)),
        ("GET", format!("/v1/payments/{payment_id}"), None),
        ("POST", format!("/v1/payments/{payment_id}/void"), Some(reason)),
        ("GET", format!("/v1/patients/{p}/balance"), None),
        ("GET", format!("/v1/patients/{p}/superbill"), None),
    ];
    for (method, path, body) in requests {
        let request = match method {
            "GET" => app.get(&path),
            "PUT" => app.put(&path),
            "PATCH" => app.patch(&path),
            _ => app.post(&path),
        };
        let request = request.role(Role::Integration);
        let request = match &body {
            Some(body) => request.json(body),
            None => request,
        };
        let res = request.send().await;
        assert_eq!(res.status, 403, "{method} {path}: {}", res.text);
        res.assert_problem(403, "forbidden");
    }
    let pdf = app
        .get(&format!("/v1/patients/{p}/superbill"))
        .role(Role::Integration)
        .header("accept", "application/pdf")
        .send()
        .await;
    assert_eq!(pdf.status, 403, "{}", pdf.text);
    assert_eq!(app.count("charges"), 3);
    assert_eq!(app.count("charges WHERE voided_at IS NOT NULL"), 0);
    assert_eq!(app.count("payments WHERE voided_at IS NULL"), 1);
    assert_eq!(app.count("clinicians WHERE active"), 1);
    assert_eq!(app.count("fees WHERE price_cents = 1"), 0);
}

/// Money is whole cents end to end: prices that do not divide evenly sum
/// exactly, and every amount is a JSON integer, never a float.
#[actix_web::test]
async fn totals_are_exact_integer_cents() {
    let app = TestApp::at_clinic_now().await;
    app.billing_ready().await;
    for (code, price) in [("96365", 33333), ("96366", 16667)] {
        let res = app
            .put(&format!("/v1/billing/fees/{code}"))
            .role(Role::Admin)
            .json(&json!({"price_cents": price}))
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert!(res.body["price_cents"].is_i64(), "{}", res.text);
    }
    let fee = json!({"price_cents": 1, "drug": {"ndc": NDC, "unit": "ML", "quantity": "10"}});
    let res = app.put("/v1/billing/fees/J3490").role(Role::Admin).json(&fee).send().await;
    assert_eq!(res.status, 200, "{}", res.text);

    let (patient, _) = infused(&app, 151).await;
    let charges = charges_of(&app, &patient).await;
    assert_eq!(line(&charges, "96366")["amount_cents"], 33334);
    for c in &charges {
        assert!(c["unit_price_cents"].is_i64() && c["amount_cents"].is_i64(), "{c}");
    }
    let total = 33333 + 2 * 16667 + 1;
    assert_eq!(total, 66668);
    let b = balance_of(&app, &patient).await;
    assert_eq!(b, balance(total, 0));
    for field in ["charged_cents", "paid_cents", "balance_cents"] {
        assert!(b[field].is_i64(), "{b}");
    }
    let payment = json!({"amount_cents": 66667, "received_on": TODAY, "method": "check"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Scheduler)
        .json(&payment)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(balance_of(&app, &patient).await, balance(total, 66667));
    let bill =
        app.get(&format!("/v1/patients/{patient}/superbill")).role(Role::Scheduler).send().await;
    assert_eq!(bill.status, 200, "{}", bill.text);
    assert_eq!(
        (&bill.body["charged_cents"], &bill.body["balance_cents"]),
        (&json!(66668), &json!(1))
    );
    for field in ["charged_cents", "paid_cents", "balance_cents"] {
        assert!(bill.body[field].is_i64(), "{}", bill.text);
    }
    for l in bill.body["lines"].as_array().unwrap() {
        assert!(l["unit_price_cents"].is_i64() && l["amount_cents"].is_i64(), "{l}");
    }
    assert!(bill.body["payments"][0]["amount_cents"].is_i64(), "{}", bill.text);
}

/// The superbill as the patient fetches it to send to its insurer, and as
/// staff print it: the same document.
#[actix_web::test]
async fn the_superbill_has_what_an_insurer_asks_for() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let payment = json!({"amount_cents": 45000, "received_on": TODAY, "method": "card",
        "reference": "card ending 4242"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Scheduler)
        .json(&payment)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let path = format!("/v1/patients/{patient}/superbill");

    let own = app.get(&path).patient(&patient).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    let staff = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(staff.status, 200, "{}", staff.text);
    assert_eq!(own.body, staff.body);
    let bill = &own.body;

    let clinic = &bill["clinic"];
    assert_eq!(clinic["legal_name"], "Infusion Therapeutix LLC");
    assert_eq!(clinic["address"], billing_profile()["address"]);
    assert_eq!(clinic["phone"], "+1 203 555 0100");
    assert_eq!(clinic["tax_id"], "12-3456789");
    assert_eq!(clinic["npi"], billing_profile()["npi"]);
    assert_eq!(clinic["place_of_service"], "11");

    let p = &bill["patient"];
    assert_eq!((&p["given_name"], &p["family_name"]), (&json!("Ada"), &json!("Lovelace")));
    assert_eq!(p["date_of_birth"], "1985-12-10");
    assert_eq!(p["address"], patient_address());

    let clinicians = bill["clinicians"].as_array().unwrap();
    assert_eq!(clinicians.len(), 1, "{}", own.text);
    assert_eq!(clinicians[0]["name"], "Grace Hopper");
    assert_eq!(clinicians[0]["credentials"], "MD");
    assert_eq!(clinicians[0]["npi"], CLINICIAN_NPI);

    let diagnoses = bill["diagnoses"].as_array().unwrap();
    assert_eq!(diagnoses.len(), 1, "{}", own.text);
    assert_eq!((&diagnoses[0]["pointer"], &diagnoses[0]["code"]), (&json!("A"), &json!("G90.50")));
    assert!(!diagnoses[0]["description"].as_str().unwrap().is_empty());

    let lines = bill["lines"].as_array().unwrap();
    let mut billed: Vec<(String, u64, i64)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["date_of_service"], TODAY, "{l}");
            assert_eq!(l["modifiers"], json!([]), "{l}");
            assert_eq!(l["diagnosis_pointers"], json!(["A"]), "{l}");
            assert_eq!(l["unit_price_cents"], l["amount_cents"], "{l}");
            let code = l["code"].as_str().unwrap().to_owned();
            (code, l["units"].as_u64().unwrap(), l["amount_cents"].as_i64().unwrap())
        })
        .collect();
    billed.sort();
    assert_eq!(
        billed,
        [("96365".into(), 1, 45000), ("96366".into(), 1, 15000), ("J3490".into(), 1, 7500)]
    );
    assert_eq!(line(lines, "J3490")["drug"]["ndc"], NDC);

    let payments = bill["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{}", own.text);
    assert_eq!(payments[0]["amount_cents"], 45000);
    assert_eq!(payments[0]["method"], "card");
    assert_eq!(payments[0]["received_on"], TODAY);
    assert_eq!(
        (&bill["charged_cents"], &bill["paid_cents"], &bill["balance_cents"]),
        (&json!(67500), &json!(45000), &json!(22500))
    );
    assert!(!bill["attestation"].as_str().unwrap().is_empty());
}

#[actix_web::test]
async fn the_superbill_leaves_voided_charges_off_and_keeps_to_its_dates() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let hour = line(&charges_of(&app, &patient).await, "96366")["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&format!("/v1/charges/{hour}/void"))
        .role(Role::Clinician)
        .json(&json!({"reason": "Entered twice"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let path = format!("/v1/patients/{patient}/superbill");
    let get = |query: &str| app.get(&format!("{path}{query}")).role(Role::Clinician).send();

    let bill = get("").await;
    assert_eq!(bill.status, 200, "{}", bill.text);
    let lines = bill.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{}", bill.text);
    assert!(lines.iter().all(|l| l["code"] != "96366" && l["charge_id"] != hour.as_str()));
    assert_eq!(bill.body["charged_cents"], 52500);
    assert_eq!((&bill.body["from"], &bill.body["to"]), (&json!(TODAY), &json!(TODAY)));

    let day = get(&format!("?from={TODAY}&to={TODAY}")).await;
    assert_eq!(day.status, 200, "{}", day.text);
    assert_eq!(day.body["lines"], bill.body["lines"]);

    let before = get("?to=2026-12-01").await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.body["lines"], json!([]));
    assert_eq!(before.body["diagnoses"], json!([]));
    assert_eq!(before.body["clinicians"], json!([]));
    assert_eq!(before.body["charged_cents"], 0);
    let after = get("?from=2026-12-03&to=2026-12-31").await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(after.body["lines"], json!([]));

    get("?from=2026-12-03&to=2026-12-02").await.assert_invalid_fields(&["to"]);
    // `to` is today when not given: a later `from` is as out of order.
    get("?from=2026-12-03").await.assert_invalid_fields(&["from"]);
    get("?from=2026-02-30").await.assert_invalid_fields(&["from"]);
    let unknown = app.get(&format!("{path}?format=pdf")).role(Role::Clinician).send().await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
}

#[actix_web::test]
async fn the_superbill_waits_for_the_billing_profile() {
    let app = TestApp::at_clinic_now().await;
    let patient = coded_patient(&app).await;
    let res = app.get("/v1/billing/profile").role(Role::Scheduler).send().await;
    res.assert_problem(404, "not_found");
    let path = format!("/v1/patients/{patient}/superbill");
    let res = app.get(&path).patient(&patient).send().await;
    res.assert_problem(409, "billing_profile_missing");
    let res = app.get(&path).role(Role::Admin).header("accept", "application/pdf").send().await;
    res.assert_problem(409, "billing_profile_missing");

    app.billing_ready().await;
    let res = app.get(&path).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["lines"], json!([]));
    assert_eq!(res.body["balance_cents"], 0);
    let nobody = "/v1/patients/019ac5b0-0000-7000-8000-00000000dead/superbill";
    app.get(nobody).role(Role::Admin).send().await.assert_problem(404, "not_found");
}

/// A response's status, content type and body bytes, read straight from the
/// App (the harness's response keeps the body as text, which a binary PDF
/// is not).
async fn fetch_bytes(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: &str,
) -> (u16, String, Vec<u8>) {
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    let service = init_service(infusion_api::http::app(app.state.clone())).await;
    let request = TestRequest::get()
        .uri(path)
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("accept", accept.to_owned()))
        .to_request();
    let response = call_service(&service, request).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, read_body(response).await.to_vec())
}

/// The text of `pdf` as `pdftotext -layout` lays it out.
fn pdf_text(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-layout", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `pdftotext` ({e}): install poppler-utils \
                 (`apt-get install poppler-utils`) to check the superbill PDF"
            )
        });
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[actix_web::test]
async fn the_superbill_pdf_reads_as_the_bill_says() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let path = format!("/v1/patients/{patient}/superbill");
    let token = app.token_for(Role::Patient, &patient);
    let (status, content_type, pdf) = fetch_bytes(&app, &path, &token, "application/pdf").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(content_type, "application/pdf");
    assert!(pdf.starts_with(b"%PDF"), "{}", String::from_utf8_lossy(&pdf[..pdf.len().min(64)]));

    let text = pdf_text(&pdf);
    for expected in [
        "Infusion Therapeutix LLC",
        "12-3456789",
        billing_profile()["npi"].as_str().unwrap(),
        "Lovelace",
        "1985-12-10",
        "Grace Hopper",
        CLINICIAN_NPI,
        "96365",
        "96366",
        "J3490",
        NDC,
        "G90.50",
        "$450.00",
        "Total charges: $675.00",
        "Balance due: $675.00",
        "Provider signature",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in the PDF:\n{text}");
    }
    let staff = app.token_for(Role::Scheduler, "front-desk");
    let (status, content_type, _) = fetch_bytes(&app, &path, &staff, "application/pdf").await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    // A client that prefers the PDF gets it.
    let (_, content_type, _) =
        fetch_bytes(&app, &path, &staff, "application/json;q=0.5, application/pdf").await;
    assert_eq!(content_type, "application/pdf");
}

/// The PDF's fonts show Latin-1 and a few more letters: a name beyond them
/// is printed without its accents, as insurers' ASCII forms spell it, not
/// as question marks; the JSON keeps it whole.
#[actix_web::test]
async fn a_name_beyond_the_pdf_fonts_is_printed_without_its_accents() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let res = app
        .patch(&format!("/v1/patients/{patient}"))
        .role(Role::Admin)
        .json(&json!({"given_name": "Łucja", "family_name": "Nguyễn-Dvořák"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let path = format!("/v1/patients/{patient}/superbill");
    let token = app.token_for(Role::Scheduler, "front-desk");
    let (status, _, pdf) = fetch_bytes(&app, &path, &token, "application/pdf").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
    let text = pdf_text(&pdf);
    assert!(text.contains("Nguyen-Dvorák, Lucja"), "{text}");
    assert!(!text.contains('?'), "{text}");
    let json = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(json.status, 200, "{}", json.text);
    assert!(json.text.contains("Nguyễn-Dvořák"), "{}", json.text);
}

#[actix_web::test]
async fn the_superbill_is_json_or_pdf_and_nothing_else() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let path = format!("/v1/patients/{patient}/superbill");
    for accept in ["text/html", "image/png, text/plain"] {
        let res = app.get(&path).patient(&patient).header("accept", accept).send().await;
        res.assert_problem(406, "not_acceptable");
    }
    for accept in ["application/json", "*/*"] {
        let res = app.get(&path).patient(&patient).header("accept", accept).send().await;
        assert_eq!(res.status, 200, "{accept}: {}", res.text);
        assert_eq!(res.header("content-type"), Some("application/json"), "{accept}");
    }
}

/// Only a leaf of ICD-10-CM goes on a claim: `G90.5` is the category over
/// G90.50 and G90.59.
#[actix_web::test]
async fn a_category_header_is_not_a_billable_diagnosis() {
    let app = TestApp::at_clinic_now().await;
    let body = with(
        patient_body(),
        json!({"indications": [{"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.5"}]}),
    );
    let res = app.post("/v1/patients").role(Role::Clinician).json(&body).send().await;
    let messages = res.assert_invalid_fields(&["indications[0].diagnosis"]);
    assert!(messages[0].contains("G90.50"), "{messages:?}");
    assert_eq!(app.count("patients"), 0);

    let (patient, _) = infused(&app, 100).await;
    let clinician = app.billing_ready().await;
    let charge = json!({"code": "96365", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician, "diagnoses": ["G90.5"]});
    let res = app
        .post(&format!("/v1/patients/{patient}/charges"))
        .role(Role::Clinician)
        .json(&charge)
        .send()
        .await;
    res.assert_invalid_fields(&["diagnoses[0]"]);
    assert_eq!(app.count("charges"), 3);
    let res = app
        .post(&format!("/v1/patients/{patient}/charges"))
        .role(Role::Clinician)
        .json(&with(charge, json!({"diagnoses": ["G90.59"]})))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["diagnoses"], json!(["G90.59"]));
}

#[actix_web::test]
async fn the_billing_profile_is_checked_and_set_by_admins_only() {
    let app = TestApp::at_clinic_now().await;
    app.get("/v1/billing/profile").role(Role::Admin).send().await.assert_problem(404, "not_found");
    let put = |body: Value, role: Role| {
        let app = &app;
        async move { app.put("/v1/billing/profile").role(role).json(&body).send().await }
    };
    let address = |changes: Value| with(billing_profile()["address"].clone(), changes);
    let cases = [
        (json!({"npi": "1234567890"}), "npi"),
        (json!({"npi": "123456789"}), "npi"),
        (json!({"tax_id": "1-23"}), "tax_id"),
        (json!({"tax_id": "00-1234567"}), "tax_id"),
        (json!({"phone": "call us"}), "phone"),
        (json!({"place_of_service": "1"}), "place_of_service"),
        (json!({"address": address(json!({"state": "XX"}))}), "address.state"),
        (json!({"address": address(json!({"postal_code": "6510"}))}), "address.postal_code"),
        (json!({"fax": "+1 203 555 0101"}), "fax"),
    ];
    for (change, field) in cases {
        let body = with(billing_profile(), change);
        put(body.clone(), Role::Admin).await.assert_invalid_fields(&[field]);
        // Who may is decided before what was sent.
        put(body, Role::Scheduler).await.assert_problem(403, "forbidden");
    }
    for role in [Role::Clinician, Role::Scheduler, Role::Integration] {
        put(billing_profile(), role).await.assert_problem(403, "forbidden");
    }
    assert_eq!(app.count("billing_profile"), 0);

    let bare_ein = with(billing_profile(), json!({"tax_id": "123456789"}));
    let res = put(bare_ein, Role::Admin).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["tax_id"], "12-3456789");
    assert_eq!(res.body["place_of_service"], "11");
    for role in [Role::Admin, Role::Clinician, Role::Scheduler] {
        let res = app.get("/v1/billing/profile").role(role).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body["legal_name"], "Infusion Therapeutix LLC");
    }
    // Set again, it is replaced: one profile.
    let renamed = with(billing_profile(), json!({"legal_name": "Infusion Therapeutix PLLC"}));
    assert_eq!(put(renamed, Role::Admin).await.status, 200);
    let res = app.get("/v1/billing/profile").role(Role::Scheduler).send().await;
    assert_eq!(res.body["legal_name"], "Infusion Therapeutix PLLC");
    assert_eq!(app.count("billing_profile"), 1);
}

#[actix_web::test]
async fn fees_are_priced_by_code_with_a_drug_only_for_j3490() {
    let app = TestApp::at_clinic_now().await;
    let put = |code: &str, body: Value, role: Role| {
        let (app, path) = (&app, format!("/v1/billing/fees/{code}"));
        async move { app.put(&path).role(role).json(&body).send().await }
    };
    let drug = json!({"ndc": "00409205105", "unit": "ML", "quantity": "10"});
    put("J3490", json!({"price_cents": 7500}), Role::Admin).await.assert_invalid_fields(&["drug"]);
    put("96365", json!({"price_cents": 45000, "drug": drug}), Role::Admin)
        .await
        .assert_invalid_fields(&["drug"]);
    for price in [json!(-1), json!(100_000_001), json!(450.5), json!("45000")] {
        put("96365", json!({"price_cents": price}), Role::Admin)
            .await
            .assert_invalid_fields(&["price_cents"]);
    }
    for (bad, field) in [
        (json!({"ndc": "0409-2051-05"}), "drug.ndc"),
        (json!({"unit": "L"}), "drug.unit"),
        (json!({"quantity": "0"}), "drug.quantity"),
    ] {
        put("J3490", json!({"price_cents": 7500, "drug": with(drug.clone(), bad)}), Role::Admin)
            .await
            .assert_invalid_fields(&[field]);
    }
    put("S0013", json!({"price_cents": 7500}), Role::Admin).await.assert_problem(404, "not_found");
    for role in [Role::Clinician, Role::Scheduler] {
        put("96365", json!({"price_cents": 45000}), role).await.assert_problem(403, "forbidden");
        put("96365", json!({"price_cents": -1}), role).await.assert_problem(403, "forbidden");
    }
    assert_eq!(app.count("fees"), 0);

    let res = put("J3490", json!({"price_cents": 7500, "drug": drug}), Role::Admin).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["drug"]["ndc"], NDC, "the NDC is kept in its 5-4-2 form");
    assert_eq!(put("96365", json!({"price_cents": 45000}), Role::Admin).await.status, 200);
    let res = app.get("/v1/billing/fees").role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let listed: Vec<(&str, i64)> = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap(), f["price_cents"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, [("96365", 45000), ("J3490", 7500)]);
}

#[actix_web::test]
async fn clinicians_have_one_npi_each_and_only_admins_change_the_roster() {
    let app = TestApp::at_clinic_now().await;
    let grace = json!({"name": "Grace Hopper", "credentials": "MD", "npi": CLINICIAN_NPI});
    let res = app.post("/v1/clinicians").role(Role::Admin).json(&grace).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.header("location"), Some(format!("/v1/clinicians/{id}").as_str()));
    assert_eq!(res.body["active"], true);

    let twin = json!({"name": "Grace B. Hopper", "credentials": "DO", "npi": CLINICIAN_NPI});
    let res = app.post("/v1/clinicians").role(Role::Admin).json(&twin).send().await;
    res.assert_problem(409, "conflict");
    let ada = json!({"name": "Ada Byron", "credentials": "NP", "npi": "1234567893"});
    let res = app.post("/v1/clinicians").role(Role::Admin).json(&ada).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let ada_id = res.body["id"].as_str().unwrap().to_owned();
    // Nor can a change take another's NPI.
    let res = app
        .patch(&format!("/v1/clinicians/{ada_id}"))
        .role(Role::Admin)
        .json(&json!({"npi": CLINICIAN_NPI}))
        .send()
        .await;
    res.assert_problem(409, "conflict");

    for bad in ["1234567890", "123456789", "12345678930", "abcdefghij"] {
        let body = with(grace.clone(), json!({"npi": bad}));
        let res = app.post("/v1/clinicians").role(Role::Admin).json(&body).send().await;
        res.assert_invalid_fields(&["npi"]);
        let res = app
            .patch(&format!("/v1/clinicians/{id}"))
            .role(Role::Admin)
            .json(&json!({"npi": bad}))
            .send()
            .await;
        res.assert_invalid_fields(&["npi"]);
    }
    for role in [Role::Clinician, Role::Scheduler, Role::Integration, Role::Patient] {
        let new = json!({"name": "Someone", "credentials": "RN", "npi": "1245319599"});
        let res = app.post("/v1/clinicians").role(role).json(&new).send().await;
        res.assert_problem(403, "forbidden");
        let res = app
            .patch(&format!("/v1/clinicians/{id}"))
            .role(role)
            .json(&json!({"active": false}))
            .send()
            .await;
        res.assert_problem(403, "forbidden");
    }
    assert_eq!(app.count("clinicians"), 2);
    assert_eq!(app.count("clinicians WHERE active"), 2);

    for role in [Role::Admin, Role::Clinician, Role::Scheduler] {
        let res = app.get("/v1/clinicians").role(role).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body["items"].as_array().unwrap().len(), 2);
        let res = app.get(&format!("/v1/clinicians/{id}")).role(role).send().await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(
            (&res.body["name"], &res.body["npi"]),
            (&json!("Grace Hopper"), &json!(CLINICIAN_NPI))
        );
    }
    for path in ["/v1/clinicians".to_owned(), format!("/v1/clinicians/{id}")] {
        app.get(&path).role(Role::Patient).send().await.assert_problem(403, "forbidden");
    }
    let nobody = "/v1/clinicians/019ac5b0-0000-7000-8000-00000000dead";
    app.get(nobody).role(Role::Admin).send().await.assert_problem(404, "not_found");
}

#[actix_web::test]
async fn two_voids_of_one_charge_or_payment_void_it_once() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    for code in ["96366", "J3490"] {
        let charge =
            line(&charges_of(&app, &patient).await, code)["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/charges/{charge}/void");
        let requests = vec![
            app.post(&path).role(Role::Clinician).json(&json!({"reason": "First"})),
            app.post(&path).role(Role::Admin).json(&json!({"reason": "Second"})),
        ];
        let responses = app.send_all(requests).await;
        let voided: Vec<_> = responses.iter().filter(|r| r.status == 200).collect();
        assert_eq!(voided.len(), 1, "{:?}", texts(&responses));
        let refused = responses.iter().find(|r| r.status != 200).unwrap();
        refused.assert_problem(409, "already_voided");
        let stored = app.get(&format!("/v1/charges/{charge}")).role(Role::Admin).send().await;
        assert_eq!(stored.body["void"]["reason"], voided[0].body["void"]["reason"]);
    }
    assert_eq!(app.count("charges WHERE voided_at IS NOT NULL"), 2);

    let payment = json!({"amount_cents": 45000, "received_on": TODAY, "method": "card"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Scheduler)
        .json(&payment)
        .send()
        .await;
    let path = format!("/v1/payments/{}/void", res.body["id"].as_str().unwrap());
    let requests = vec![
        app.post(&path).role(Role::Scheduler).json(&json!({"reason": "Refunded"})),
        app.post(&path).role(Role::Clinician).json(&json!({"reason": "Declined"})),
    ];
    let responses = app.send_all(requests).await;
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 1, "{:?}", texts(&responses));
    responses.iter().find(|r| r.status != 200).unwrap().assert_problem(409, "already_voided");
    assert_eq!(app.count("payments WHERE voided_at IS NOT NULL"), 1);
    assert_eq!(balance_of(&app, &patient).await, balance(45000, 0));
}

#[actix_web::test]
async fn two_completions_of_one_infusion_bill_it_once() {
    let app = TestApp::at_clinic_now().await;
    let clinician = app.billing_ready().await;
    let patient = coded_patient(&app).await;
    let appointment = checked_in(&app, &patient).await;
    let path = format!("/v1/appointments/{appointment}/complete");
    let body = |minutes: u16| json!({"pain_after": 3, "clinician_id": clinician, "infusion_minutes": minutes});
    let requests = vec![
        app.post(&path).role(Role::Clinician).json(&body(100)),
        app.post(&path).role(Role::Admin).json(&body(100)),
    ];
    let responses = app.send_all(requests).await;
    let completed: Vec<_> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(completed.len(), 1, "{:?}", texts(&responses));
    let refused = responses.iter().find(|r| r.status != 200).unwrap();
    assert_eq!(refused.status, 409, "{}", refused.text);
    refused.assert_problem(409, "invalid_transition");
    assert_eq!(app.count("charges"), 3);
    assert_eq!(app.count(&format!("charges WHERE appointment_id = '{appointment}'")), 3);
    assert_eq!(balance_of(&app, &patient).await, balance(67500, 0));
}

/// Two admins setting the clinic up at once (the profile, a code's first
/// price): both are answered, one row each stands, and it is one of theirs.
#[actix_web::test]
async fn settings_made_at_once_for_the_first_time_both_stand() {
    let app = TestApp::at_clinic_now().await;
    let renamed = with(billing_profile(), json!({"legal_name": "Infusion Therapeutix PLLC"}));
    let requests = vec![
        app.put("/v1/billing/profile").role(Role::Admin).json(&billing_profile()),
        app.put("/v1/billing/profile").role(Role::Admin).json(&renamed),
        app.put("/v1/billing/fees/96365").role(Role::Admin).json(&json!({"price_cents": 45000})),
        app.put("/v1/billing/fees/96365").role(Role::Admin).json(&json!({"price_cents": 46000})),
    ];
    let responses = app.send_all(requests).await;
    for res in &responses {
        assert_eq!(res.status, 200, "{:?}", texts(&responses));
    }
    assert_eq!(app.count("billing_profile"), 1);
    assert_eq!(app.count("fees"), 1);
    let profile = app.get("/v1/billing/profile").role(Role::Scheduler).send().await;
    let name = profile.body["legal_name"].as_str().unwrap();
    assert!(name == "Infusion Therapeutix LLC" || name == "Infusion Therapeutix PLLC", "{name}");
    let fees = app.get("/v1/billing/fees").role(Role::Scheduler).send().await;
    let price = fees.body["items"][0]["price_cents"].as_i64().unwrap();
    assert!(price == 45000 || price == 46000, "{}", fees.text);
}

/// A long course's superbill runs to more pages: the services table goes
/// on under its header, and the totals and signature line come last.
#[actix_web::test]
async fn a_superbill_pdf_runs_onto_more_pages_with_the_totals_at_the_end() {
    let app = TestApp::at_clinic_now().await;
    let clinician = app.billing_ready().await;
    let body = with(
        patient_body(),
        json!({
            "given_name": "Zoë", "family_name": "Müller",
            "indications": [{"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"}],
            "in_mental_health_treatment": true, "pain_referral_required": false,
        }),
    );
    let patient = app.create_patient(body).await["id"].as_str().unwrap().to_owned();
    app.screen(&patient, &[], &[]).await;
    let appointment = checked_in(&app, &patient).await;
    let res = app.complete(&appointment, json!({"pain_after": 3, "infusion_minutes": 100})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    for _ in 0..40 {
        let charge = json!({"code": "96366", "units": 2, "date_of_service": TODAY,
            "clinician_id": clinician, "modifiers": ["59"]});
        let res = app
            .post(&format!("/v1/patients/{patient}/charges"))
            .role(Role::Clinician)
            .json(&charge)
            .send()
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let path = format!("/v1/patients/{patient}/superbill");
    let token = app.token_for(Role::Patient, &patient);
    let (status, _, pdf) = fetch_bytes(&app, &path, &token, "application/pdf").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
    let text = pdf_text(&pdf);
    // $675.00 and 40 × 2 × $150.00.
    let total = "Total charges: $12,675.00";
    for expected in ["Page 1 of ", "Services (continued)", "Müller, Zoë", total] {
        assert!(text.contains(expected), "{expected:?} is not in the PDF:\n{text}");
    }
    let pages: Vec<&str> = text.split('\u{c}').filter(|page| !page.trim().is_empty()).collect();
    let count = pages.len();
    assert!(count > 1, "{text}");
    assert!(text.contains(&format!("Page {count} of {count}")), "{text}");
    let last = pages[count - 1];
    assert!(last.contains(total) && last.contains("Provider signature"), "{last}");
    assert_eq!(text.matches("IV infusion, therapeutic, each additional hour").count(), 41);
}

/// A charge is made at the fee schedule's price and the profile's place of
/// service then, by a clinician active then: changing any of them later
/// does not change what was billed.
#[actix_web::test]
async fn a_charge_keeps_the_price_place_and_clinician_it_was_made_with() {
    let app = TestApp::at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let clinician = app.billing_ready().await;
    let elsewhere = with(billing_profile(), json!({"place_of_service": "49"}));
    let res = app.put("/v1/billing/profile").role(Role::Admin).json(&elsewhere).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .put("/v1/billing/fees/96366")
        .role(Role::Admin)
        .json(&json!({"price_cents": 16000}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let charge = json!({"code": "96366", "units": 1, "date_of_service": TODAY,
        "clinician_id": clinician, "appointment_id": appointment});
    let res = app
        .post(&format!("/v1/patients/{patient}/charges"))
        .role(Role::Admin)
        .json(&charge)
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let made = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(res.body["place_of_service"], "49");
    assert_eq!(res.body["unit_price_cents"], 16000);
    let res = app
        .patch(&format!("/v1/clinicians/{clinician}"))
        .role(Role::Admin)
        .json(&json!({"active": false}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let bill = app.get(&format!("/v1/patients/{patient}/superbill")).role(Role::Admin).send().await;
    assert_eq!(bill.body["clinic"]["place_of_service"], "49", "{}", bill.text);
    for l in bill.body["lines"].as_array().unwrap() {
        let expected = if l["charge_id"] == made.as_str() { "49" } else { "11" };
        assert_eq!(l["place_of_service"], expected, "{l}");
    }
    let hours: Vec<i64> = bill.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["code"] == "96366")
        .map(|l| l["unit_price_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(hours.len(), 2, "{}", bill.text);
    assert!(hours.contains(&15000) && hours.contains(&16000), "{hours:?}");
    assert_eq!(bill.body["charged_cents"], 67500 + 16000);
    // The deactivated clinician is still named on what they rendered.
    assert_eq!(bill.body["clinicians"][0]["id"], clinician.as_str());
    assert_eq!(bill.body["clinicians"][0]["active"], false);
}

#[actix_web::test]
async fn charges_and_payments_list_by_page_and_by_date() {
    let app = TestApp::at_clinic_now().await;
    let (patient, _) = infused(&app, 100).await;
    let charges = format!("/v1/patients/{patient}/charges");
    let get = |query: String| app.get(&format!("{charges}{query}")).role(Role::Scheduler).send();

    let first = get("?limit=2".into()).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2, "{}", first.text);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = get(format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1, "{}", rest.text);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    let mut seen: Vec<&Value> = first.body["items"].as_array().unwrap().iter().collect();
    seen.extend(rest.body["items"].as_array().unwrap());
    let mut ids: Vec<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);

    for (query, count) in [
        (format!("?from={TODAY}&to={TODAY}"), 3),
        ("?from=2026-12-03".to_owned(), 0),
        ("?to=2026-12-01".to_owned(), 0),
    ] {
        let res = get(query.clone()).await;
        assert_eq!(res.body["items"].as_array().unwrap().len(), count, "{query}: {}", res.text);
    }
    get("?from=2026-12-03&to=2026-12-02".into()).await.assert_invalid_fields(&["to"]);

    let payments = format!("/v1/patients/{patient}/payments");
    for received_on in ["2026-11-30", TODAY] {
        let body = json!({"amount_cents": 100, "received_on": received_on, "method": "check",
            "reference": "1001"});
        let res = app.post(&payments).role(Role::Scheduler).json(&body).send().await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let res = app.get(&format!("{payments}?from=2026-12-01")).role(Role::Scheduler).send().await;
    let listed = res.body["items"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", res.text);
    assert_eq!(listed[0]["received_on"], TODAY);
}

/// Money is patient data: each billing write and read is on the audit
/// trail, naming the patient and the records, and in the patient's own
/// access log.
#[actix_web::test]
async fn billing_writes_and_reads_are_on_the_patients_trail() {
    let app = TestApp::at_clinic_now().await;
    let (patient, appointment) = infused(&app, 100).await;
    let trail = |query: String| {
        let app = &app;
        async move {
            let path = format!("/v1/audit-events?limit=200&{query}");
            let res = app.get(&path).role(Role::Admin).send().await;
            assert_eq!(res.status, 200, "{}", res.text);
            res.body["items"].as_array().unwrap().clone()
        }
    };
    let charge_ids: Vec<String> = charges_of(&app, &patient)
        .await
        .iter()
        .map(|c| format!("charge/{}", c["id"].as_str().unwrap()))
        .collect();
    let completed = trail("operation=complete_appointment".into()).await;
    assert_eq!(completed.len(), 1, "{completed:#?}");
    assert_eq!(completed[0]["patient_ids"], json!([patient]));
    let records: Vec<&str> =
        completed[0]["records"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(records.contains(&format!("appointment/{appointment}").as_str()), "{records:?}");
    for charge in &charge_ids {
        assert!(records.contains(&charge.as_str()), "{charge} not in {records:?}");
    }

    let payment = json!({"amount_cents": 45000, "received_on": TODAY, "method": "card"});
    let res = app
        .post(&format!("/v1/patients/{patient}/payments"))
        .role(Role::Scheduler)
        .json(&payment)
        .send()
        .await;
    let payment_id = res.body["id"].as_str().unwrap().to_owned();
    let recorded = trail("operation=create_payment".into()).await;
    assert_eq!(recorded[0]["records"], json!([format!("payment/{payment_id}")]));
    assert_eq!(recorded[0]["patient_ids"], json!([patient]));

    let res = app.get(&format!("/v1/patients/{patient}/superbill")).patient(&patient).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res =
        app.get(&format!("/v1/patients/{patient}/balance")).role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    for operation in ["get_superbill", "get_balance"] {
        let read = trail(format!("operation={operation}")).await;
        assert_eq!(read.len(), 1, "{read:#?}");
        assert_eq!(read[0]["patient_ids"], json!([patient]), "{operation}");
    }
    let log = app.get(&format!("/v1/patients/{patient}/access-log")).patient(&patient).send().await;
    assert_eq!(log.status, 200, "{}", log.text);
    assert!(
        log.text.contains("get_superbill") && log.text.contains("create_payment"),
        "{}",
        log.text
    );
}
