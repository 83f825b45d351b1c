//! `/v1/patients` end to end.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use infusion_api::domain::access::Role;

use crate::helpers::{patient_body, with, without, TestApp};

#[actix_web::test]
async fn create_answers_201_with_location_and_the_stored_patient() {
    let app = TestApp::spawn().await;
    let body = with(
        patient_body(),
        json!({"indications": [{"code": "depression"}, {"code": "chronic_pain", "subtype": "neuropathic"}],
               "in_mental_health_treatment": true}),
    );
    let res = app.post("/v1/patients").role(Role::Clinician).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(res.header("location"), Some(format!("/v1/patients/{id}").as_str()));
    assert_eq!(res.body["given_name"], "Ada");
    assert_eq!(res.body["date_of_birth"], "1985-12-10");
    assert_eq!(res.body["in_mental_health_treatment"], true);
    assert_eq!(res.body["pain_referral_required"], true);
    assert_eq!(
        res.body["indications"],
        json!([{"code": "chronic_pain", "subtype": "neuropathic", "diagnosis": null},
               {"code": "depression", "subtype": null, "diagnosis": null}])
    );

    let fetched = app.get(res.header("location").unwrap()).role(Role::Clinician).send().await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, res.body);
}

#[actix_web::test]
async fn instants_are_in_the_clinic_offset() {
    // 15:00 UTC in January is 10:00 in New York (UTC-5).
    let now = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
    let app = TestApp::builder().now(now).build().await;
    let patient = app.create_patient(patient_body()).await;
    assert_eq!(patient["created_at"], "2026-01-15T10:00:00-05:00");
    assert_eq!(patient["updated_at"], "2026-01-15T10:00:00-05:00");
}

#[actix_web::test]
async fn optional_fields_default_and_contacts_may_be_absent() {
    let app = TestApp::spawn().await;
    let body = json!({
        "given_name": "  Grace ",
        "family_name": "Hopper",
        "date_of_birth": "1970-01-01",
        "indications": [{"code": "migraine"}]
    });
    let patient = app.create_patient(body).await;
    assert_eq!(patient["given_name"], "Grace");
    assert_eq!(patient["email"], Value::Null);
    assert_eq!(patient["phone"], Value::Null);
    assert_eq!(patient["in_mental_health_treatment"], false);
    assert_eq!(patient["pain_referral_required"], false);
}

#[actix_web::test]
async fn each_rule_is_named_and_nothing_is_stored() {
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 15, 0, 0).unwrap();
    let app = TestApp::builder().now(now).build().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"given_name": ""}), "given_name"),
        (json!({"given_name": "   "}), "given_name"),
        (json!({"family_name": "x".repeat(101)}), "family_name"),
        (json!({"date_of_birth": "2026-11-27"}), "date_of_birth"),
        (json!({"date_of_birth": "2027-01-01"}), "date_of_birth"),
        (json!({"date_of_birth": "1890-01-01"}), "date_of_birth"),
        (json!({"email": "ada-at-example.org"}), "email"),
        (json!({"phone": "call me"}), "phone"),
        (json!({"phone": "123"}), "phone"),
        (json!({"indications": []}), "indications"),
        (json!({"indications": [{"code": "chronic_pain"}]}), "indications[0].subtype"),
        (
            json!({"indications": [{"code": "anxiety", "subtype": "crps"}]}),
            "indications[0].subtype",
        ),
        (
            json!({"indications": [{"code": "migraine"}, {"code": "migraine"}]}),
            "indications[1].code",
        ),
    ];
    for (change, field) in cases {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .json(&with(patient_body(), change.clone()))
            .send()
            .await;
        let messages = res.assert_invalid_fields(&[field]);
        assert!(!messages[0].is_empty(), "{change}");
    }
    for field in ["given_name", "family_name", "date_of_birth", "indications"] {
        let res = app
            .post("/v1/patients")
            .role(Role::Clinician)
            .json(&without(patient_body(), field))
            .send()
            .await;
        res.assert_invalid_fields(&[field]);
    }
    assert_eq!(app.count("patients"), 0);
    assert_eq!(app.count("patient_indications"), 0);
}

#[actix_web::test]
async fn all_broken_rules_are_listed_together() {
    let app = TestApp::spawn().await;
    let body = with(
        patient_body(),
        json!({"email": "nope", "date_of_birth": "2999-01-01", "indications": []}),
    );
    let post = |body: Value| app.post("/v1/patients").role(Role::Clinician).json(&body);
    let res = post(body.clone()).send().await;
    res.assert_invalid_fields(&["date_of_birth", "email", "indications"]);
    assert_eq!(res.body["detail"], "3 fields are not valid");
    // A value that does not even parse (a blank name) is named first, alone.
    let res = post(with(body, json!({"given_name": " "}))).send().await;
    res.assert_invalid_fields(&["given_name"]);
    assert_eq!(app.count("patients"), 0);
}

#[actix_web::test]
async fn get_of_an_unknown_id_is_404() {
    let app = TestApp::spawn().await;
    let missing = uuid::Uuid::now_v7();
    let res = app.get(&format!("/v1/patients/{missing}")).role(Role::Admin).send().await;
    res.assert_problem(404, "not_found");
    assert_eq!(res.body["detail"], "patient not found");
    // An id that is not even a UUID names no resource at all.
    let res = app.get("/v1/patients/not-a-uuid").role(Role::Admin).send().await;
    res.assert_problem(404, "not_found");
}

async fn ids(app: &TestApp, path: &str) -> (Vec<String>, Option<String>) {
    let res = app.get(path).role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let ids = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, res.body["next_cursor"].as_str().map(str::to_owned))
}

#[actix_web::test]
async fn list_pages_in_a_stable_order_with_cursors() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let p =
            app.create_patient(with(patient_body(), json!({"given_name": format!("P{i}")}))).await;
        created.push(p["id"].as_str().unwrap().to_owned());
    }
    let (first, cursor) = ids(&app, "/v1/patients?limit=2").await;
    assert_eq!(first, created[0..2]);
    let cursor = cursor.expect("a next page");
    let (second, cursor) = ids(&app, &format!("/v1/patients?limit=2&cursor={cursor}")).await;
    assert_eq!(second, created[2..4]);
    let (third, cursor) =
        ids(&app, &format!("/v1/patients?limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!(third, created[4..5]);
    assert_eq!(cursor, None);

    let (all, cursor) = ids(&app, "/v1/patients").await;
    assert_eq!(all, created);
    assert_eq!(cursor, None);
    let (exact, cursor) = ids(&app, "/v1/patients?limit=5").await;
    assert_eq!(exact.len(), 5);
    assert_eq!(cursor, None);
}

#[actix_web::test]
async fn list_searches_names_case_insensitively() {
    let app = TestApp::spawn().await;
    let ada = app.create_patient(patient_body()).await;
    let grace = app
        .create_patient(with(
            patient_body(),
            json!({"given_name": "Grace", "family_name": "Hopper"}),
        ))
        .await;
    let percent = app
        .create_patient(with(patient_body(), json!({"given_name": "Ann_e", "family_name": "100%"})))
        .await;
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();

    assert_eq!(ids(&app, "/v1/patients?q=LOVE").await.0, vec![id(&ada)]);
    assert_eq!(ids(&app, "/v1/patients?q=grace%20hop").await.0, vec![id(&grace)]);
    assert_eq!(ids(&app, "/v1/patients?q=a").await.0.len(), 3);
    // LIKE wildcards in the search are literal characters.
    assert_eq!(ids(&app, "/v1/patients?q=%25").await.0, vec![id(&percent)]);
    assert_eq!(ids(&app, "/v1/patients?q=n_e").await.0, vec![id(&percent)]);
    assert!(ids(&app, "/v1/patients?q=zzz").await.0.is_empty());
    // An empty search lists everyone.
    assert_eq!(ids(&app, "/v1/patients?q=").await.0.len(), 3);
    // Pages and search together.
    let (page, cursor) = ids(&app, "/v1/patients?q=a&limit=1").await;
    assert_eq!(page, vec![id(&ada)]);
    let (page, _) =
        ids(&app, &format!("/v1/patients?q=a&limit=1&cursor={}", cursor.unwrap())).await;
    assert_eq!(page, vec![id(&grace)]);
}

/// The search ignores accents as it ignores case, in the names and in what
/// is searched: a clinic's front desk types `jose` for José.
#[actix_web::test]
async fn list_searches_names_without_regard_to_accents() {
    let app = TestApp::spawn().await;
    let jose = app
        .create_patient(with(
            patient_body(),
            json!({"given_name": "José", "family_name": "Müller-Lüdenscheidt"}),
        ))
        .await;
    // é written as e and a combining accent (NFD), as some systems send it.
    let noemie = app
        .create_patient(with(
            patient_body(),
            json!({"given_name": "Noe\u{301}mie", "family_name": "Łukasiewicz"}),
        ))
        .await;
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();
    for (query, found) in [
        ("jose", vec![id(&jose)]),
        ("JOS%C3%89", vec![id(&jose)]), // JOSÉ
        ("muller-lud", vec![id(&jose)]),
        ("noemie", vec![id(&noemie)]),
        ("no%C3%A9mie", vec![id(&noemie)]), // noémie, composed (NFC)
        ("%C5%82uk", vec![id(&noemie)]),    // łuk
        ("luk", vec![]),                    // Ł is a letter of its own
        ("jos%C3%A9%20m%C3%BCller", vec![id(&jose)]), // josé müller
    ] {
        assert_eq!(ids(&app, &format!("/v1/patients?q={query}")).await.0, found, "{query}");
    }
    // A change of name changes what finds the patient.
    let res = app
        .patch(&format!("/v1/patients/{}", id(&jose)))
        .role(Role::Admin)
        .json(&json!({"given_name": "Joaquín"}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(ids(&app, "/v1/patients?q=jose").await.0.is_empty());
    assert_eq!(ids(&app, "/v1/patients?q=joaquin").await.0, vec![id(&jose)]);
}

/// Patients stored before their names' folded keys were (or loaded by SQL,
/// as `make bench` seeds them) get them when the migrations run, and the
/// searches find them.
#[actix_web::test]
async fn patients_stored_without_name_keys_get_them_when_the_migrations_run() {
    let app = TestApp::spawn().await;
    let jose = app
        .create_patient(with(
            patient_body(),
            json!({"given_name": "José", "family_name": "Ödegaard"}),
        ))
        .await;
    assert!(app.execute(
        "UPDATE patients SET given_key = NULL, family_key = NULL, search_name = 'josé ödegaard'"
    ));
    assert!(ids(&app, "/v1/patients?q=jose").await.0.is_empty());

    assert_eq!(app.migrate(), Vec::<String>::new(), "no migration was pending");
    let id = jose["id"].as_str().unwrap().to_owned();
    assert_eq!(ids(&app, "/v1/patients?q=jose%20ode").await.0, vec![id.clone()]);
    let res = app.get("/fhir/R4/Patient?family=ode&given=jos").role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.body);
    let found: Vec<&Value> = res.body["entry"].as_array().into_iter().flatten().collect();
    assert_eq!(found.len(), 1, "{}", res.body);
    assert_eq!(found[0]["resource"]["id"], id.as_str());
}

#[actix_web::test]
async fn patch_changes_only_what_is_sent() {
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 14, 0, 0).unwrap();
    let app = TestApp::builder().now(start).build().await;
    let patient = app.create_patient(patient_body()).await;
    let path = format!("/v1/patients/{}", patient["id"].as_str().unwrap());

    let res = app
        .patch(&path)
        .role(Role::Clinician)
        .json(&json!({"family_name": "Byron", "phone": null, "in_mental_health_treatment": true,
                      "indications": [{"code": "anxiety"}]}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["family_name"], "Byron");
    assert_eq!(res.body["phone"], Value::Null);
    assert_eq!(res.body["in_mental_health_treatment"], true);
    assert_eq!(
        res.body["indications"],
        json!([{"code": "anxiety", "subtype": null, "diagnosis": null}])
    );
    for unchanged in
        ["given_name", "date_of_birth", "email", "pain_referral_required", "created_at"]
    {
        assert_eq!(res.body[unchanged], patient[unchanged], "{unchanged}");
    }
    let fetched = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body, res.body);
    assert_eq!(app.count("patient_indications"), 1);

    // An empty change changes nothing.
    let res = app.patch(&path).role(Role::Scheduler).json(&json!({})).send().await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, fetched.body);
}

#[actix_web::test]
async fn patch_is_validated_and_a_refused_patch_stores_nothing() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(patient_body()).await;
    let path = format!("/v1/patients/{}", patient["id"].as_str().unwrap());
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"given_name": ""}), vec!["given_name"]),
        (json!({"given_name": null}), vec!["given_name"]),
        (json!({"indications": []}), vec!["indications"]),
        (json!({"indications": null}), vec!["indications"]),
        (json!({"email": "bad", "date_of_birth": "3000-01-01"}), vec!["date_of_birth", "email"]),
        (json!({"family_name": "Ok", "phone": "12"}), vec!["phone"]),
        (json!({"id": "0000"}), vec!["id"]),
        (json!({"in_mental_health_treatment": null}), vec!["in_mental_health_treatment"]),
    ];
    for (change, fields) in cases {
        let res = app.patch(&path).role(Role::Clinician).json(&change).send().await;
        res.assert_invalid_fields(&fields);
    }
    let fetched = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body, patient);
}

#[actix_web::test]
async fn patch_of_an_unknown_patient_is_404() {
    let app = TestApp::spawn().await;
    let path = format!("/v1/patients/{}", uuid::Uuid::now_v7());
    let res =
        app.patch(&path).role(Role::Scheduler).json(&json!({"family_name": "X"})).send().await;
    res.assert_problem(404, "not_found");
    assert_eq!(app.count("patients"), 0);
}

/// A clinician codes each indication with ICD-10-CM: a billable code of
/// that indication (reference/icd10cm.csv). A category header, another
/// indication's code or a code outside the table is 422 naming the
/// indication's `diagnosis`, and nothing is stored; a scheduler sets none.
#[actix_web::test]
async fn indications_are_coded_with_billable_icd_10_cm_codes_of_their_kind() {
    let app = TestApp::spawn().await;
    let coded = json!({"indications": [
        {"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"},
        {"code": "depression", "diagnosis": "F33.1"}
    ]});
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), coded))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["indications"][0]["diagnosis"], "G90.50");
    assert_eq!(res.body["indications"][1]["diagnosis"], "F33.1");
    let id = res.body["id"].as_str().unwrap().to_owned();
    let fetched = app.get(&format!("/v1/patients/{id}")).role(Role::Clinician).send().await;
    assert_eq!(fetched.body["indications"], res.body["indications"]);
    // General chronic pain codes fit any kind of chronic pain.
    let res = app
        .patch(&format!("/v1/patients/{id}"))
        .role(Role::Admin)
        .json(&json!({"indications": [{"code": "chronic_pain", "subtype": "neuropathic", "diagnosis": "G89.4"}]}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let stored = app.count("patient_indications");
    // (indication, the message's part)
    let refused = [
        (
            json!({"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.5"}),
            "G90.50, G90.51",
        ),
        (json!({"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.51"}), "G90.511"),
        (json!({"code": "anxiety", "diagnosis": "F33.1"}), "not a code for anxiety"),
        (json!({"code": "migraine", "diagnosis": "G90.50"}), "not a code for migraine"),
    ];
    for (indication, part) in refused {
        let body = json!({"indications": [indication]});
        let res =
            app.patch(&format!("/v1/patients/{id}")).role(Role::Clinician).json(&body).send().await;
        let messages = res.assert_invalid_fields(&["indications[0].diagnosis"]);
        assert!(messages[0].contains(part), "{messages:?}");
    }
    for code in ["E11.40", "g90.50", "G90.50 ", "", "G90.5X"] {
        let body = json!({"indications": [{"code": "chronic_pain", "subtype": "crps", "diagnosis": code}]});
        let res =
            app.patch(&format!("/v1/patients/{id}")).role(Role::Clinician).json(&body).send().await;
        assert_eq!(res.status, 422, "{code}: {}", res.text);
        assert!(res.text.contains("indications"), "{code}: {}", res.text);
    }
    assert_eq!(app.count("patient_indications"), stored);
    let body = json!({"indications": [{"code": "migraine", "diagnosis": "G43.909"}]});
    let res =
        app.patch(&format!("/v1/patients/{id}")).role(Role::Scheduler).json(&body).send().await;
    let problem = res.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("indications"), "{}", res.text);
    // Registering names the indications whoever registers; coding them is
    // a clinician's, there too.
    let patients = app.count("patients");
    // A registration without the referral flags, which are clinical too.
    let registration =
        without(without(patient_body(), "in_mental_health_treatment"), "pain_referral_required");
    for role in [Role::Scheduler, Role::Integration] {
        let res = app
            .post("/v1/patients")
            .role(role)
            .json(&with(registration.clone(), body.clone()))
            .send()
            .await;
        let problem = res.assert_problem(403, "forbidden");
        assert!(problem["detail"].as_str().unwrap().contains("diagnosis"), "{}", res.text);
    }
    assert_eq!(app.count("patients"), patients);
    let uncoded = json!({"indications": [{"code": "migraine"}]});
    let res = app
        .post("/v1/patients")
        .role(Role::Scheduler)
        .json(&with(registration, uncoded))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

/// A code a later ICD-10-CM release deletes from the table leaves the
/// patients coded with it readable: that indication reads as uncoded, the
/// others keep their codes, and a clinician codes it again.
#[actix_web::test]
async fn a_code_gone_from_the_table_reads_as_uncoded_and_can_be_coded_again() {
    let app = TestApp::spawn().await;
    let coded = json!({"indications": [
        {"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"},
        {"code": "depression", "diagnosis": "F33.1"}
    ]});
    let id =
        app.create_patient(with(patient_body(), coded)).await["id"].as_str().unwrap().to_owned();
    // As a release of the table without G90.50 would leave the stored row.
    assert!(app
        .execute("UPDATE patient_indications SET diagnosis = 'G90.5X' WHERE diagnosis = 'G90.50'"));

    let res = app.get(&format!("/v1/patients/{id}")).role(Role::Clinician).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.body["indications"],
        json!([{"code": "chronic_pain", "subtype": "crps", "diagnosis": null},
               {"code": "depression", "subtype": null, "diagnosis": "F33.1"}])
    );
    let res = app.get("/v1/patients").role(Role::Scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app.get(&format!("/fhir/R4/Patient/{id}")).role(Role::Integration).send().await;
    assert_eq!(res.status, 200, "{}", res.text);

    let recoded = json!({"indications": [
        {"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.59"},
        {"code": "depression", "diagnosis": "F33.1"}
    ]});
    let res =
        app.patch(&format!("/v1/patients/{id}")).role(Role::Clinician).json(&recoded).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["indications"][0]["diagnosis"], "G90.59");
}

/// The postal address a superbill prints: kept as sent, cleared with
/// `null`, shown on the FHIR Patient, and refused (naming the field, storing
/// nothing) when it is not a U.S. address.
#[actix_web::test]
async fn a_postal_address_is_kept_cleared_and_checked() {
    let app = TestApp::spawn().await;
    let address = json!({"line1": "12 Elm St", "line2": "Apt 3", "city": "Hamden", "state": "CT",
        "postal_code": "06514-1234"});
    let patient = app.create_patient(with(patient_body(), json!({"address": address}))).await;
    assert_eq!(patient["address"], address);
    let id = patient["id"].as_str().unwrap();

    let fhir = app.get(&format!("/fhir/R4/Patient/{id}")).role(Role::Clinician).send().await;
    assert_eq!(
        fhir.body["address"],
        json!([{"use": "home", "type": "postal", "line": ["12 Elm St", "Apt 3"], "city": "Hamden",
            "state": "CT", "postalCode": "06514-1234", "country": "US"}])
    );

    for (bad, field) in [
        (
            json!({"line1": "1 Main St", "city": "Boston", "state": "XX", "postal_code": "02110"}),
            "address.state",
        ),
        (
            json!({"line1": "1 Main St", "city": "Boston", "state": "MA", "postal_code": "2110"}),
            "address.postal_code",
        ),
        (
            json!({"line1": " ", "city": "Boston", "state": "MA", "postal_code": "02110"}),
            "address.line1",
        ),
        (json!({"line1": "1 Main St", "state": "MA", "postal_code": "02110"}), "address.city"),
    ] {
        let res = app
            .patch(&format!("/v1/patients/{id}"))
            .role(Role::Scheduler)
            .json(&json!({"address": bad}))
            .send()
            .await;
        res.assert_invalid_fields(&[field]);
    }
    let kept = app.get(&format!("/v1/patients/{id}")).role(Role::Scheduler).send().await;
    assert_eq!(kept.body["address"], address, "a refused change stores nothing");

    let cleared = app
        .patch(&format!("/v1/patients/{id}"))
        .role(Role::Scheduler)
        .json(&json!({"address": null}))
        .send()
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["address"], Value::Null);
    let fhir = app.get(&format!("/fhir/R4/Patient/{id}")).role(Role::Clinician).send().await;
    assert!(fhir.body.get("address").is_none(), "{}", fhir.text);
}
