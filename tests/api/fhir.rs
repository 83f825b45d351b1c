//! The FHIR R4 facade at /fhir/R4: what it serves and how it maps the
//! clinic's records, its searches and pages, roles and the patient's
//! compartment, errors as OperationOutcomes, and the audit trail. The
//! validators that are not ours run in CI (`.ci/fhir-check`).

use chrono::Duration;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;
use infusion_api::domain::fhir::SERVED;

use crate::helpers::{clinic_now, patient_body, with, TestApp, TestResponse};

const FHIR_JSON: &str = "application/fhir+json";

/// Asserts a FHIR resource of `kind` answered 200; returns it.
#[track_caller]
fn assert_resource<'a>(res: &'a TestResponse, kind: &str) -> &'a Value {
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some(FHIR_JSON), "{}", res.text);
    assert_eq!(res.body["resourceType"], kind, "{}", res.text);
    &res.body
}

/// Asserts an OperationOutcome with `status` and FHIR issue `code`.
#[track_caller]
fn assert_outcome(res: &TestResponse, status: u16, code: &str) -> String {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(res.header("content-type"), Some(FHIR_JSON), "{}", res.text);
    assert_eq!(res.body["resourceType"], "OperationOutcome", "{}", res.text);
    assert_eq!(res.body["issue"][0]["severity"], "error");
    assert_eq!(res.body["issue"][0]["code"], code, "{}", res.text);
    res.body["issue"][0]["diagnostics"].as_str().unwrap().to_owned()
}

/// The resources of a searchset Bundle.
#[track_caller]
fn entries(res: &TestResponse) -> Vec<Value> {
    let bundle = assert_resource(res, "Bundle");
    assert_eq!(bundle["type"], "searchset");
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn ids(resources: &[Value]) -> Vec<String> {
    resources.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

/// The Bundle's link of `relation`, as a path and query on this server.
fn link(res: &TestResponse, relation: &str) -> Option<String> {
    res.body["link"].as_array()?.iter().find(|l| l["relation"] == relation).map(|l| {
        let url = l["url"].as_str().unwrap();
        url[url.find("/fhir/R4").unwrap()..].to_owned()
    })
}

/// Follows `path`'s `next` links to the end: the ids of each page.
async fn pages(app: &TestApp, path: &str, role: Role) -> Vec<Vec<String>> {
    let mut path = path.to_owned();
    let mut pages = Vec::new();
    loop {
        let res = app.get(&path).role(role).send().await;
        assert!(link(&res, "self").is_some(), "{}", res.text);
        pages.push(ids(&entries(&res)));
        match link(&res, "next") {
            Some(next) => path = next,
            None => return pages,
        }
    }
}

async fn fhir(app: &TestApp, path: &str, role: Role) -> TestResponse {
    app.get(&format!("/fhir/R4/{path}")).role(role).send().await
}

/// A patient with an EHR identifier, its id.
async fn patient_with_mrn(app: &TestApp, given: &str, family: &str, mrn: &str) -> String {
    let body = with(
        patient_body(),
        json!({"given_name": given, "family_name": family, "date_of_birth": "1980-05-01",
               "in_mental_health_treatment": true, "pain_referral_required": false,
               "indications": [{"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"}],
               "identifiers": [{"system": "https://ehr.example.org/mrn", "value": mrn}]}),
    );
    let id = app.create_patient(body).await["id"].as_str().unwrap().to_owned();
    app.screen(&id, &[], &[]).await;
    id
}

#[actix_web::test]
async fn the_capability_statement_says_what_is_served_without_a_token() {
    let app = TestApp::spawn().await;
    let res = app.get("/fhir/R4/metadata").send().await;
    let statement = assert_resource(&res, "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    assert_eq!(statement["kind"], "instance");
    assert_eq!(statement["rest"][0]["mode"], "server");
    assert_eq!(statement["rest"][0]["security"]["cors"], true);
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), SERVED.len());
    for (resource, served) in resources.iter().zip(SERVED) {
        assert_eq!(resource["type"], served.resource);
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(interactions, ["read", "search-type"]);
        let mut params: Vec<&str> = resource["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(params.pop(), Some("_count"));
        let supported: Vec<&str> = served.search.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(params, supported, "{}", served.resource);
        // Each parameter the statement lists is one the search takes.
        let query: Vec<String> = supported.iter().map(|p| format!("{p}=x")).collect();
        let res =
            fhir(&app, &format!("{}?{}", served.resource, query.join("&")), Role::Admin).await;
        assert_ne!(
            res.body["issue"][0]["diagnostics"]
                .as_str()
                .map(|d| d.contains("is not a search parameter")),
            Some(true),
            "{}: {}",
            served.resource,
            res.text
        );
    }
}

#[actix_web::test]
async fn a_patient_reads_as_fhir_and_is_found_by_identifier_name_and_birth_date() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    let bo = patient_with_mrn(&app, "Bo", "Riviera-Smith", "MRN-2").await;
    let res = fhir(&app, &format!("Patient/{ana}"), Role::Scheduler).await;
    let patient = assert_resource(&res, "Patient");
    assert_eq!(patient["id"], ana);
    assert_eq!(patient["name"][0]["family"], "Rivera");
    assert_eq!(patient["name"][0]["given"], json!(["Ana"]));
    assert_eq!(patient["birthDate"], "1980-05-01");
    assert_eq!(
        patient["identifier"],
        json!([{"system": "https://ehr.example.org/mrn", "value": "MRN-1"}])
    );
    assert!(
        patient.get("indications").is_none() && patient.get("in_mental_health_treatment").is_none()
    );

    // (query, the patients found)
    let cases: [(&str, Vec<&str>); 9] = [
        ("identifier=https://ehr.example.org/mrn|MRN-2", vec![&bo]),
        ("identifier=https://ehr.example.org/mrn|MRN-9", vec![]),
        ("family=riv", vec![&ana, &bo]),
        ("family=RIVI", vec![&bo]),
        ("family=rivera", vec![&ana]),
        ("given=an&family=riv", vec![&ana]),
        (&format!("_id={bo}"), vec![&bo]),
        ("birthdate=1980-05-01&family=Riv", vec![&ana, &bo]),
        ("birthdate=gt1980-05-01&family=Riv", vec![]),
    ];
    for (query, found) in cases {
        let res = fhir(&app, &format!("Patient?{query}"), Role::Integration).await;
        assert_eq!(ids(&entries(&res)), found, "{query}");
    }
    // 'ge' and 'le' together; a LIKE wildcard is a letter like any other.
    let res =
        fhir(&app, "Patient?birthdate=ge1980-01-01&birthdate=le1980-12-31&family=%25", Role::Admin)
            .await;
    assert_eq!(entries(&res), Vec::<Value>::new());
}

/// `family` and `given` ignore case and accents in every alphabet, on both
/// backends, as FHIR's string search asks ("normalized by case and
/// accent"); a letter Unicode does not decompose (Ł) is a letter of its own.
#[actix_web::test]
async fn a_name_search_ignores_case_and_accents_in_every_alphabet() {
    let app = TestApp::at_clinic_now().await;
    let emile = patient_with_mrn(&app, "Émile", "Łukasiewicz", "MRN-1").await;
    let olga = patient_with_mrn(&app, "Ольга", "Ödegaard", "MRN-2").await;
    let ana = patient_with_mrn(&app, "Ana", "Lukas", "MRN-3").await;
    let jose = patient_with_mrn(&app, "José", "Nguyễn", "MRN-4").await;
    // (query, percent-encoded, the patients found)
    let cases: [(&str, Vec<&str>); 14] = [
        ("family=%C5%82uk", vec![&emile]),  // łuk
        ("family=%C5%81UK", vec![&emile]),  // ŁUK
        ("family=luk", vec![&ana]),         // Ł: a letter of its own, not an accent
        ("given=%C3%A9mi", vec![&emile]),   // émi
        ("given=%C3%89MILE", vec![&emile]), // ÉMILE
        ("given=emi", vec![&emile]),        // without the accent
        ("given=EMILE", vec![&emile]),
        ("given=%D0%BE%D0%BB%D1%8C", vec![&olga]), // оль
        ("given=%D0%9E%D0%9B%D0%AC", vec![&olga]), // ОЛЬ
        ("family=%C3%B6de", vec![&olga]),          // öde
        ("family=ode", vec![&olga]),
        ("family=nguyen", vec![&jose]), // ễ: two marks
        ("given=jose&family=NGUY", vec![&jose]),
        ("given=Jose%CC%81", vec![&jose]), // José as e + a combining accent
    ];
    for (query, found) in cases {
        let res = fhir(&app, &format!("Patient?{query}"), Role::Integration).await;
        assert_eq!(ids(&entries(&res)), found, "{query}");
    }
}

#[actix_web::test]
async fn a_search_pages_with_next_links_and_refuses_what_it_does_not_support() {
    let app = TestApp::at_clinic_now().await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(patient_with_mrn(&app, "Pat", &format!("Pager{n}"), &format!("P-{n}")).await);
    }
    let paged = pages(&app, "/fhir/R4/Patient?family=pager&_count=2", Role::Clinician).await;
    assert!(paged.iter().all(|page| page.len() <= 2));
    let res = fhir(&app, "Patient?family=pager&_count=2", Role::Clinician).await;
    let next = link(&res, "next").unwrap();
    assert!(next.contains("family=pager") && next.contains("_count=2"), "{next}");
    assert_eq!((paged.concat(), paged.len()), (created, 3));

    // Unsupported parameters: 400, unless the request prefers leniency.
    let res = fhir(&app, "Patient?name=Pat", Role::Admin).await;
    let why = assert_outcome(&res, 400, "invalid");
    assert!(why.contains("name"), "{why}");
    let res = app
        .get("/fhir/R4/Patient?name=Pat&family=pager0")
        .role(Role::Admin)
        .header("prefer", "handling=lenient")
        .send()
        .await;
    assert_eq!(entries(&res).len(), 1);
    assert!(!link(&res, "self").unwrap().contains("name="));
    // Values it cannot read.
    for query in [
        "_count=0",
        "_count=201",
        "_count=x",
        "birthdate=1980",
        "birthdate=ne1980-05-01",
        "identifier=nobar",
        "_page=not-a-page",
        "_format=xml",
        "family=a&family=b",
    ] {
        assert_outcome(&fhir(&app, &format!("Patient?{query}"), Role::Admin).await, 400, "invalid");
    }
}

#[actix_web::test]
async fn errors_are_operation_outcomes_with_the_status_of_v1() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    let res = app.get(&format!("/fhir/R4/Patient/{ana}")).send().await;
    assert_outcome(&res, 401, "login");
    assert!(res.header("www-authenticate").is_some());
    assert_outcome(
        &fhir(&app, "Patient/019ad100-0000-7000-8000-000000000999", Role::Admin).await,
        404,
        "not-found",
    );
    assert_outcome(&fhir(&app, "Patient/not-an-id", Role::Admin).await, 404, "not-found");
    assert_outcome(&fhir(&app, "Medication/1", Role::Admin).await, 404, "not-found");
    assert_outcome(&fhir(&app, "Observation?patient=x", Role::Scheduler).await, 403, "forbidden");
    let res = app.post("/fhir/R4/Patient").role(Role::Admin).json(&json!({})).send().await;
    assert!([404, 405].contains(&res.status), "{}", res.text);
    assert_eq!(res.body["resourceType"], "OperationOutcome");
}

#[actix_web::test]
async fn a_patient_token_reads_only_its_own_compartment() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    let bo = patient_with_mrn(&app, "Bo", "Smith", "MRN-2").await;
    let theirs = app.booked(&bo, "2026-12-03", "morning").await;
    let mine = app.booked(&ana, "2026-12-04", "morning").await;
    let as_ana = |path: &str| app.get(&format!("/fhir/R4/{path}")).patient(&ana).send();

    assert_resource(&as_ana(&format!("Patient/{ana}")).await, "Patient");
    assert_outcome(&as_ana(&format!("Patient/{bo}")).await, 404, "not-found");
    assert_eq!(ids(&entries(&as_ana("Patient").await)), [ana.as_str()]);
    assert_outcome(&as_ana(&format!("Patient?_id={bo}")).await, 404, "not-found");
    assert_eq!(ids(&entries(&as_ana("Appointment").await)), [mine["id"].as_str().unwrap()]);
    assert_outcome(&as_ana(&format!("Appointment?patient=Patient/{bo}")).await, 404, "not-found");
    let theirs = theirs["id"].as_str().unwrap();
    assert_outcome(&as_ana(&format!("Appointment/{theirs}")).await, 404, "not-found");
    for path in ["Slot", "Schedule", "Location", "ServiceRequest", "Observation"] {
        assert_outcome(&as_ana(path).await, 403, "forbidden");
    }
}

#[actix_web::test]
async fn appointments_map_their_status_times_people_and_reason() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    let booked = app.booked(&ana, "2026-12-03", "morning").await;
    let cancelled = app.booked(&ana, "2026-12-04", "morning").await;
    let (booked, cancelled) =
        (booked["id"].as_str().unwrap().to_owned(), cancelled["id"].as_str().unwrap().to_owned());
    let res = app.act(&cancelled, "cancel", json!({"reason": "Flu symptoms"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let res = fhir(&app, &format!("Appointment/{booked}"), Role::Scheduler).await;
    let appointment = assert_resource(&res, "Appointment");
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["start"], "2026-12-03T08:00:00-05:00");
    assert_eq!(appointment["end"], "2026-12-03T12:00:00-05:00");
    let actors: Vec<&str> = appointment["participant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["actor"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(actors[0], format!("Patient/{ana}"));
    assert!(actors[1].starts_with("Location/"));
    assert_eq!(appointment["reasonCode"][0]["coding"][0]["code"], "chronic_pain.crps");
    // Coded by a clinician: its ICD-10-CM code beside the clinic's.
    assert_eq!(
        appointment["reasonCode"][0]["coding"][1],
        json!({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G90.50",
               "display": "Complex regional pain syndrome I, unspecified"})
    );
    assert_eq!(appointment["slot"][0]["reference"], "Slot/2026-12-03-morning");
    // The room it names is a Location a scheduler reads.
    assert_resource(&fhir(&app, actors[1], Role::Scheduler).await, "Location");

    let res = fhir(&app, &format!("Appointment/{cancelled}"), Role::Clinician).await;
    let shown = assert_resource(&res, "Appointment");
    assert_eq!(
        (&shown["status"], &shown["cancelationReason"]["text"]),
        (&json!("cancelled"), &json!("Flu symptoms"))
    );
    // An integration learns it was cancelled, not why (as on /v1).
    let res = fhir(&app, &format!("Appointment/{cancelled}"), Role::Integration).await;
    assert_eq!(assert_resource(&res, "Appointment")["cancelationReason"]["text"], "Cancelled");

    // Checked in and completed on its day: checked-in, then fulfilled.
    app.travel_to(clinic_now() + Duration::hours(23));
    let res = app.act(&booked, "check-in", json!({"pain_before": 7, "phq9": 14})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = fhir(&app, &format!("Appointment?patient={ana}&status=arrived"), Role::Admin).await;
    assert_eq!(ids(&entries(&res)), [booked.as_str()]);
    let res = app.complete(&booked, json!({"pain_after": 3})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    // (query, the appointments found)
    let cases: [(String, Vec<&str>); 8] = [
        (format!("patient=Patient/{ana}"), vec![&booked, &cancelled]),
        (format!("patient={ana}&status=fulfilled"), vec![&booked]),
        (format!("patient={ana}&status=cancelled,noshow"), vec![&cancelled]),
        (format!("patient={ana}&status=booked"), vec![]),
        (format!("patient={ana}&status=waitlist"), vec![]),
        (format!("patient={ana}&date=2026-12-04"), vec![&cancelled]),
        (format!("patient={ana}&date=ge2026-12-01&date=lt2026-12-04"), vec![&booked]),
        (format!("patient={ana}&date=gt2026-12-04"), vec![]),
    ];
    for (query, found) in cases {
        let res = fhir(&app, &format!("Appointment?{query}"), Role::Admin).await;
        assert_eq!(ids(&entries(&res)), found, "{query}");
    }
    for bad in ["status=done", "patient=Location/x", "date=2026-12"] {
        assert_outcome(
            &fhir(&app, &format!("Appointment?{bad}"), Role::Admin).await,
            400,
            "invalid",
        );
    }

    // Its scores are Observations, for clinical roles only.
    let res = fhir(&app, &format!("Observation?patient=Patient/{ana}"), Role::Clinician).await;
    let observations = entries(&res);
    assert_eq!(
        ids(&observations),
        [format!("{booked}-pain-after"), format!("{booked}-pain-before"), format!("{booked}-phq9")]
    );
    let codes: Vec<(&str, &str, i64)> = observations
        .iter()
        .map(|o| {
            (
                o["code"]["coding"][0]["system"].as_str().unwrap(),
                o["code"]["coding"][0]["code"].as_str().unwrap(),
                o["valueInteger"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("http://loinc.org", "72514-3", 3),
            ("http://loinc.org", "72514-3", 7),
            ("http://loinc.org", "44261-6", 14)
        ]
    );
    assert!(observations.iter().all(|o| o["subject"]["reference"] == format!("Patient/{ana}")));
    let res = fhir(
        &app,
        &format!("Observation?patient={ana}&code=http://loinc.org|44261-6"),
        Role::Admin,
    )
    .await;
    assert_eq!(ids(&entries(&res)), [format!("{booked}-phq9")]);
    let res = fhir(&app, &format!("Observation/{booked}-pain-before"), Role::Clinician).await;
    assert_eq!(assert_resource(&res, "Observation")["valueInteger"], 7);
    // Pages of one observation each, across the appointment's three.
    let path = format!("/fhir/R4/Observation?patient={ana}&_count=1");
    let paged = pages(&app, &path, Role::Admin).await.concat();
    assert_eq!(paged, ids(&observations));
    for role in [Role::Scheduler, Role::Integration] {
        assert_outcome(
            &fhir(&app, &format!("Observation/{booked}-phq9"), role).await,
            403,
            "forbidden",
        );
    }
    assert_outcome(
        &fhir(&app, &format!("Observation/{cancelled}-phq9"), Role::Admin).await,
        404,
        "not-found",
    );
}

#[actix_web::test]
async fn slots_agree_with_availability_on_every_day() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    app.booked(&ana, "2026-12-03", "morning").await;
    let res = app
        .get("/v1/availability?from=2026-12-02&to=2026-12-15")
        .role(Role::Scheduler)
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let sessions = res.body.as_array().unwrap().clone();
    let res = fhir(
        &app,
        "Slot?schedule=Schedule/infusion-rooms&start=ge2026-12-02&start=le2026-12-15",
        Role::Scheduler,
    )
    .await;
    let slots = entries(&res);
    assert_eq!(slots.len(), sessions.len());
    for (slot, session) in slots.iter().zip(&sessions) {
        let id = format!(
            "{}-{}",
            session["date"].as_str().unwrap(),
            session["session"].as_str().unwrap()
        );
        assert_eq!(slot["id"], id);
        assert_eq!(slot["start"], session["starts_at"]);
        assert_eq!(slot["end"], session["ends_at"]);
        assert_eq!(slot["extension"][0]["valueInteger"], session["free"]);
        let status = if session["free"].as_i64().unwrap() > 0 { "free" } else { "busy" };
        assert_eq!(slot["status"], status);
        assert_eq!(slot["schedule"]["reference"], "Schedule/infusion-rooms");
    }
    let booked = slots.iter().find(|s| s["id"] == "2026-12-03-morning").unwrap();
    let free =
        sessions.iter().find(|s| s["date"] == "2026-12-03" && s["session"] == "morning").unwrap();
    assert_eq!(booked["extension"][0]["valueInteger"], free["free"]);
    assert_resource(&fhir(&app, "Slot/2026-12-03-morning", Role::Integration).await, "Slot");
    // A Saturday, an unknown session, another schedule: nothing.
    assert_outcome(&fhir(&app, "Slot/2026-12-05-morning", Role::Admin).await, 404, "not-found");
    assert_outcome(&fhir(&app, "Slot/2026-12-03-evening", Role::Admin).await, 404, "not-found");
    let res = fhir(&app, "Slot?schedule=Schedule/other", Role::Admin).await;
    assert!(entries(&res).is_empty());
    let res = fhir(&app, "Slot?start=2026-12-03&status=busy", Role::Admin).await;
    assert!(entries(&res).is_empty());
    // Paged a session at a time.
    let path = "/fhir/R4/Slot?start=ge2026-12-03&start=le2026-12-04&_count=1";
    let paged = pages(&app, path, Role::Admin).await.concat();
    assert_eq!(
        paged,
        [
            "2026-12-03-morning",
            "2026-12-03-afternoon",
            "2026-12-04-morning",
            "2026-12-04-afternoon"
        ]
    );
    assert_outcome(
        &fhir(&app, "Slot?start=ge2026-12-01&start=le2027-12-01", Role::Admin).await,
        400,
        "invalid",
    );

    let schedule = fhir(&app, "Schedule/infusion-rooms", Role::Integration).await;
    assert_eq!(assert_resource(&schedule, "Schedule")["active"], true);
    assert_eq!(ids(&entries(&fhir(&app, "Schedule", Role::Admin).await)), ["infusion-rooms"]);
    assert_outcome(&fhir(&app, "Schedule/other", Role::Admin).await, 404, "not-found");
}

#[actix_web::test]
async fn referrals_are_service_requests_with_the_referrers_npi() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.depression_patient().await;
    let referral = app.add_referral(&patient, "mental_health_provider", Role::Scheduler).await;
    let id = referral["id"].as_str().unwrap();
    let res = fhir(&app, &format!("ServiceRequest/{id}"), Role::Scheduler).await;
    let request = assert_resource(&res, "ServiceRequest");
    assert_eq!((&request["status"], &request["intent"]), (&json!("active"), &json!("order")));
    assert_eq!(request["subject"]["reference"], format!("Patient/{patient}"));
    assert_eq!(request["requester"]["reference"], "#referrer");
    let practitioner = &request["contained"][0];
    assert_eq!(practitioner["resourceType"], "Practitioner");
    assert_eq!(
        practitioner["identifier"],
        json!([{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}])
    );
    assert!(request["note"][0]["text"].as_str().unwrap().contains("awaiting"));
    app.verify(id).await;
    let res =
        fhir(&app, &format!("ServiceRequest?patient=Patient/{patient}"), Role::Clinician).await;
    let found = entries(&res);
    assert_eq!(ids(&found), [id]);
    assert_eq!(found[0]["note"][0]["text"], "Verified by the clinic");
    assert_outcome(
        &fhir(&app, &format!("ServiceRequest/{id}"), Role::Integration).await,
        403,
        "forbidden",
    );
}

#[actix_web::test]
async fn fhir_reads_are_on_the_audit_trail() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    assert_resource(&fhir(&app, &format!("Patient/{ana}"), Role::Integration).await, "Patient");
    entries(&fhir(&app, "Patient?family=riv", Role::Clinician).await);
    let trail = |operation: &'static str| {
        app.get(&format!("/v1/audit-events?operation={operation}&patient_id={ana}"))
            .role(Role::Admin)
            .send()
    };
    let read = trail("fhir_read_patient").await;
    assert_eq!(read.status, 200, "{}", read.text);
    let items = read.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", read.text);
    assert_eq!(items[0]["actor_role"], "integration", "{}", read.text);
    let searched = trail("fhir_search_patient").await;
    assert_eq!(searched.body["items"].as_array().unwrap().len(), 1, "{}", searched.text);
}

/// A `code` search finds its observations however many appointments hold
/// only the other kind: the kind is chosen in the query, not after it.
#[actix_web::test]
async fn an_observation_search_by_code_skips_no_page() {
    let app = TestApp::at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    // Three infusions scored for pain only, then one with a PHQ-9 too.
    let days = ["2026-12-03", "2026-12-04", "2026-12-07", "2026-12-08"];
    let mut last = String::new();
    for (n, day) in days.iter().enumerate() {
        let booked = app.booked(&ana, day, "morning").await;
        last = booked["id"].as_str().unwrap().to_owned();
        let at = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let days_ahead = (at - chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()).num_days();
        app.travel_to(clinic_now() + Duration::days(days_ahead) - Duration::hours(1));
        let check_in =
            if n == 3 { json!({"pain_before": 6, "phq9": 12}) } else { json!({"pain_before": 6}) };
        assert_eq!(app.act(&last, "check-in", check_in).await.status, 200);
        assert_eq!(app.complete(&last, json!({"pain_after": 2})).await.status, 200);
    }
    let path = format!("/fhir/R4/Observation?patient={ana}&code=http://loinc.org|44261-6&_count=1");
    assert_eq!(pages(&app, &path, Role::Clinician).await.concat(), [format!("{last}-phq9")]);
    let path = format!("/fhir/R4/Observation?patient={ana}&code=72514-3&_count=3");
    assert_eq!(pages(&app, &path, Role::Clinician).await.concat().len(), 8);
}

/// An Appointment's reason is the patient's indications: a backend client
/// whose scopes reach the Appointment but not the Patient reads the
/// schedule without the diagnoses, by id and by search; with Patient read
/// as well, it reads them.
#[actix_web::test]
async fn an_appointments_reason_needs_the_patients_read_scope() {
    let app = TestApp::issuing_at_clinic_now().await;
    let ana = patient_with_mrn(&app, "Ana", "Rivera", "MRN-1").await;
    let booked = app.booked(&ana, "2026-12-03", "morning").await;
    let booked = booked["id"].as_str().unwrap();
    // (scopes, whether the reason is shown)
    for (scopes, shown) in
        [("system/Appointment.rs", false), ("system/Appointment.rs system/Patient.r", true)]
    {
        let bearer = app.scoped_token(scopes);
        let read = app.get(&format!("/fhir/R4/Appointment/{booked}")).bearer(&bearer).send().await;
        let found =
            app.get(&format!("/fhir/R4/Appointment?patient={ana}")).bearer(&bearer).send().await;
        let found = entries(&found);
        assert_eq!(ids(&found), [booked], "{scopes}");
        for appointment in [assert_resource(&read, "Appointment"), &found[0]] {
            assert_eq!(appointment["status"], "booked", "{scopes}");
            let reason = &appointment["reasonCode"][0]["coding"][0]["code"];
            assert_eq!(*reason == json!("chronic_pain.crps"), shown, "{scopes}: {appointment}");
            assert_eq!(appointment.get("reasonCode").is_some(), shown, "{scopes}");
        }
    }
    // A token without scopes (the API's own integration role) reads it.
    let res = fhir(&app, &format!("Appointment/{booked}"), Role::Integration).await;
    assert_eq!(
        assert_resource(&res, "Appointment")["reasonCode"][0]["coding"][0]["code"],
        "chronic_pain.crps"
    );
}
