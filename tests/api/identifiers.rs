//! Patients' identifiers in other systems (an EHR's record numbers): set,
//! shown, replaced, searched, and held by one patient each, whatever the
//! timing.

use serde_json::{json, Value};

use infusion_api::domain::access::Role;
use infusion_api::domain::identifier::SYSTEM_PATTERN;
use infusion_api::domain::values;

use crate::helpers::{patient_body, with, without, TestApp, TestResponse};

const OID: &str = "urn:oid:2.16.840.1.113883.3.4.5";
const URL: &str = "https://ehr.example.org/mrn";

/// A patient as any role that registers patients may send it: without the
/// clinical referral flags.
fn demographics() -> Value {
    without(without(patient_body(), "in_mental_health_treatment"), "pain_referral_required")
}

fn ident(system: &str, value: &str) -> Value {
    json!({"system": system, "value": value})
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// `GET /v1/patients?identifier=…` with `query` as sent (already encoded).
async fn search(app: &TestApp, query: &str) -> TestResponse {
    app.get(&format!("/v1/patients?{query}")).role(Role::Integration).send().await
}

fn found(res: &TestResponse) -> Vec<String> {
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["next_cursor"], Value::Null);
    res.body["items"].as_array().unwrap().iter().map(id_of).collect()
}

#[actix_web::test]
async fn identifiers_are_stored_and_shown_wherever_the_patient_is() {
    let app = TestApp::spawn().await;
    let without = app.create_patient(demographics()).await;
    assert_eq!(without["identifiers"], json!([]));

    // An EHR registers its patient with its record numbers; they come back
    // in system, then value order, values trimmed. Two indications as well:
    // the read joins both lists, and each shows once.
    let indications = json!([
        {"code": "chronic_pain", "subtype": "crps", "diagnosis": null},
        {"code": "migraine", "subtype": null, "diagnosis": null}
    ]);
    let body = with(
        demographics(),
        json!({
            "identifiers": [ident(URL, " 0042 "), ident(OID, "MRN-9"), ident(OID, "MRN-10")],
            "indications": [{"code": "migraine"}, {"code": "chronic_pain", "subtype": "crps"}]
        }),
    );
    let res = app.post("/v1/patients").role(Role::Integration).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let shown = json!([ident(URL, "0042"), ident(OID, "MRN-10"), ident(OID, "MRN-9")]);
    assert_eq!(res.body["identifiers"], shown);
    let id = id_of(&res.body);
    assert_eq!(app.count("patient_identifiers"), 3);

    for role in [Role::Admin, Role::Clinician, Role::Scheduler, Role::Integration] {
        let read = app.get(&format!("/v1/patients/{id}")).role(role).send().await;
        assert_eq!(read.body["identifiers"], shown, "{role:?}");
        assert_eq!(read.body["indications"], indications, "{role:?}");
        let list = app.get("/v1/patients").role(role).send().await;
        assert_eq!(list.body["items"][0]["identifiers"], json!([]), "{role:?}");
        assert_eq!(list.body["items"][1]["identifiers"], shown, "{role:?}");
    }
    // A patient reading its own record sees its identifiers, as the rest
    // of its demographics.
    let own = app.get(&format!("/v1/patients/{id}")).patient(&id).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.body["identifiers"], shown);
}

#[actix_web::test]
async fn each_bad_identifier_is_named_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let eleven: Vec<Value> = (0..11).map(|n| ident(OID, &format!("MRN-{n}"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!([ident("mrn", "1")]), "identifiers[0].system"),
        (json!([ident("ehr.example.org/mrn", "1")]), "identifiers[0].system"),
        (json!([ident("urn:oid:1 2", "1")]), "identifiers[0].system"),
        (json!([ident(" urn:oid:1", "1")]), "identifiers[0].system"),
        (json!([ident("urn:oid:1|2", "1")]), "identifiers[0].system"),
        (json!([ident("https://ehr.example.org/café", "1")]), "identifiers[0].system"),
        (json!([ident(&format!("urn:x:{}", "a".repeat(250)), "1")]), "identifiers[0].system"),
        (json!([ident(OID, "1"), ident(OID, "")]), "identifiers[1].value"),
        (json!([ident(OID, "   ")]), "identifiers[0].value"),
        (json!([ident(OID, "MRN\n1")]), "identifiers[0].value"),
        (json!([ident(OID, &"9".repeat(101))]), "identifiers[0].value"),
        (json!([{"system": OID}]), "identifiers[0].value"),
        (json!([{"value": "1"}]), "identifiers[0].system"),
        (json!([{"system": OID, "value": "1", "use": "usual"}]), "identifiers[0].use"),
        (json!([{"system": OID, "value": 42}]), "identifiers[0].value"),
        (json!(null), "identifiers"),
        (json!({"system": OID, "value": "1"}), "identifiers"),
        (json!(eleven), "identifiers"),
        (json!([ident(OID, "1"), ident(URL, "1"), ident(OID, " 1")]), "identifiers[2]"),
    ];
    for (identifiers, field) in cases {
        let body = with(demographics(), json!({"identifiers": identifiers}));
        let res = app.post("/v1/patients").role(Role::Scheduler).json(&body).send().await;
        let messages = res.assert_invalid_fields(&[field]);
        assert!(!messages[0].is_empty(), "{identifiers}");
    }
    assert_eq!(app.count("patients"), 0);
    assert_eq!(app.count("patient_identifiers"), 0);

    // The same rules on a change, and a refused change keeps the list.
    let patient = app
        .create_patient(with(demographics(), json!({"identifiers": [ident(OID, "MRN-1")]})))
        .await;
    let path = format!("/v1/patients/{}", id_of(&patient));
    for (identifiers, field) in [
        (json!(null), "identifiers"),
        (json!([ident("mrn", "1")]), "identifiers[0].system"),
        (json!([ident(OID, "2"), ident(OID, "2")]), "identifiers[1]"),
        (json!(eleven), "identifiers"),
    ] {
        let res = app
            .patch(&path)
            .role(Role::Scheduler)
            .json(&json!({"identifiers": identifiers}))
            .send()
            .await;
        res.assert_invalid_fields(&[field]);
    }
    let fetched = app.get(&path).role(Role::Scheduler).send().await;
    assert_eq!(fetched.body, patient);
}

#[actix_web::test]
async fn a_patch_replaces_the_list_and_leaves_it_when_absent() {
    let app = TestApp::spawn().await;
    let patient = app
        .create_patient(with(demographics(), json!({"identifiers": [ident(OID, "MRN-1")]})))
        .await;
    let path = format!("/v1/patients/{}", id_of(&patient));
    let patch = |body: Value| app.patch(&path).role(Role::Scheduler).json(&body);

    let res = patch(json!({"family_name": "Byron"})).send().await;
    assert_eq!(res.body["identifiers"], json!([ident(OID, "MRN-1")]), "{}", res.text);
    // Its own identifier again, with one more: no conflict with itself.
    let res = patch(json!({"identifiers": [ident(URL, "77"), ident(OID, "MRN-1")]})).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["identifiers"], json!([ident(URL, "77"), ident(OID, "MRN-1")]));
    let res = patch(json!({"identifiers": []})).send().await;
    assert_eq!(res.body["identifiers"], json!([]), "{}", res.text);
    assert_eq!(app.count("patient_identifiers"), 0);
    let fetched = app.get(&path).role(Role::Clinician).send().await;
    assert_eq!(fetched.body["identifiers"], json!([]));
}

#[actix_web::test]
async fn an_identifier_another_patient_holds_is_409_naming_that_patient() {
    let app = TestApp::spawn().await;
    let first = app
        .create_patient(with(demographics(), json!({"identifiers": [ident(OID, "MRN-1")]})))
        .await;
    let first_id = id_of(&first);

    // Registering another patient with that record number: refused, naming
    // the patient that has it, and nothing of the second is stored.
    let body = with(
        demographics(),
        json!({"given_name": "Grace", "identifiers": [ident(URL, "5"), ident(OID, "MRN-1")]}),
    );
    let res = app.post("/v1/patients").role(Role::Integration).json(&body).send().await;
    let problem = res.assert_problem(409, "conflict");
    assert_eq!(problem["existing_patient_id"], first_id.as_str());
    assert!(problem["detail"].as_str().unwrap().contains(&first_id), "{}", res.text);
    assert!(problem["detail"].as_str().unwrap().contains(&format!("{OID}|MRN-1")));
    assert!(problem.get("appointment_ids").is_none(), "{}", res.text);
    assert_eq!(app.count("patients"), 1);
    assert_eq!(app.count("patient_identifiers"), 1);

    // The same value in another system is another identifier.
    let second = app
        .create_patient(with(demographics(), json!({"identifiers": [ident(URL, "MRN-1")]})))
        .await;
    let path = format!("/v1/patients/{}", id_of(&second));

    // A change that takes the first patient's identifier: refused alike,
    // and the second keeps what it had.
    let res = app
        .patch(&path)
        .role(Role::Clinician)
        .json(&json!({"family_name": "Hopper", "identifiers": [ident(OID, "MRN-1")]}))
        .send()
        .await;
    assert_eq!(res.assert_problem(409, "conflict")["existing_patient_id"], first_id.as_str());
    let fetched = app.get(&path).role(Role::Clinician).send().await;
    assert_eq!(fetched.body, second);

    // Once the first lets it go, the second may take it.
    let first_path = format!("/v1/patients/{first_id}");
    let res =
        app.patch(&first_path).role(Role::Admin).json(&json!({"identifiers": []})).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .patch(&path)
        .role(Role::Admin)
        .json(&json!({"identifiers": [ident(OID, "MRN-1")]}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        found(&search(&app, &format!("identifier={OID}|MRN-1")).await),
        vec![id_of(&second)]
    );
}

#[actix_web::test]
async fn a_search_by_identifier_finds_its_one_patient() {
    let app = TestApp::spawn().await;
    let ada = app
        .create_patient(with(
            demographics(),
            json!({"identifiers": [ident(OID, "MRN-1"), ident(URL, "A|7")]}),
        ))
        .await;
    let grace = app
        .create_patient(with(
            demographics(),
            json!({"given_name": "Grace", "family_name": "Hopper",
                   "identifiers": [ident(OID, "MRN-2")]}),
        ))
        .await;
    let (ada, grace) = (id_of(&ada), id_of(&grace));

    assert_eq!(found(&search(&app, &format!("identifier={OID}|MRN-1")).await), vec![ada.clone()]);
    assert_eq!(
        found(&search(&app, &format!("identifier={OID}%7CMRN-2")).await),
        vec![grace.clone()]
    );
    // Percent-encoded as a form would send it; the value splits at the first bar.
    assert_eq!(
        found(&search(&app, "identifier=https%3A%2F%2Fehr.example.org%2Fmrn%7CA%7C7").await),
        vec![ada.clone()]
    );
    // Values compare trimmed and exactly: case matters, the system too.
    assert_eq!(
        found(&search(&app, &format!("identifier={OID}|%20MRN-1%20")).await),
        vec![ada.clone()]
    );
    assert!(found(&search(&app, &format!("identifier={OID}|mrn-1")).await).is_empty());
    assert!(found(&search(&app, &format!("identifier={URL}|MRN-1")).await).is_empty());
    assert!(found(&search(&app, &format!("identifier={OID}|MRN-3")).await).is_empty());
    // Longer than any identifier may be: no one holds it (the contract's
    // length bounds the whole search, not each part).
    let long_value = "9".repeat(101);
    assert!(found(&search(&app, &format!("identifier={OID}|{long_value}")).await).is_empty());
    let long_system = format!("urn:x:{}", "a".repeat(260));
    assert!(found(&search(&app, &format!("identifier={long_system}|MRN-1")).await).is_empty());
    // With `q`, both must match.
    assert_eq!(
        found(&search(&app, &format!("identifier={OID}|MRN-2&q=hopper")).await),
        vec![grace.clone()]
    );
    assert!(found(&search(&app, &format!("identifier={OID}|MRN-2&q=lovelace")).await).is_empty());
    // And pages still page.
    assert!(found(&search(&app, &format!("identifier={OID}|MRN-1&cursor={ada}")).await).is_empty());
    assert_eq!(found(&search(&app, &format!("identifier={OID}|MRN-1&limit=1")).await), vec![ada]);
}

#[actix_web::test]
async fn a_malformed_identifier_search_is_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    app.create_patient(with(demographics(), json!({"identifiers": [ident(OID, "MRN-1")]}))).await;
    for query in [
        "identifier=MRN-1".to_owned(),
        format!("identifier={OID}"),
        "identifier=|MRN-1".to_owned(),
        "identifier=mrn|MRN-1".to_owned(),
        "identifier=urn%3Aoid%3A1%202|MRN-1".to_owned(),
        format!("identifier={OID}|"),
        format!("identifier={OID}|%20%20"),
        format!("identifier={OID}|MRN%0A1"),
        "identifier=".to_owned(),
    ] {
        let res = search(&app, &query).await;
        let messages = res.assert_invalid_fields(&["identifier"]);
        assert!(!messages[0].is_empty(), "{query}");
    }
}

#[actix_web::test]
async fn roles_set_and_read_identifiers_as_the_rest_of_the_demographics() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(demographics()).await;
    let id = id_of(&patient);
    let path = format!("/v1/patients/{id}");
    let change = json!({"identifiers": [ident(OID, "MRN-1")]});
    // The roles that change demographics set identifiers too; the others
    // are refused before the body is read, and nothing changes.
    for role in [Role::Integration, Role::Patient] {
        let res = app.patch(&path).role(role).json(&change).send().await;
        res.assert_problem(403, "forbidden");
    }
    let res = app.patch(&path).patient(&id).json(&change).send().await;
    res.assert_problem(403, "forbidden");
    assert_eq!(app.count("patient_identifiers"), 0);
    let res = app.patch(&path).role(Role::Scheduler).json(&change).send().await;
    assert_eq!(res.body["identifiers"], change["identifiers"], "{}", res.text);
    // Searching is listing: a patient token may not, whatever it sends.
    let res = app.get(&format!("/v1/patients?identifier={OID}|MRN-1")).patient(&id).send().await;
    res.assert_problem(403, "forbidden");
    let res = app.get("/v1/patients?identifier=nonsense").role(Role::Patient).send().await;
    res.assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn racing_registrations_and_changes_with_one_identifier_leave_one_holder() {
    let app = TestApp::spawn().await;
    let mut registered = 0;
    for round in 0..3 {
        let identifier = ident(OID, &format!("MRN-RACE-{round}"));
        let mut existing = Vec::new();
        for _ in 0..5 {
            existing.push(id_of(&app.create_patient(demographics()).await));
        }
        let mut requests = Vec::new();
        for _ in 0..5 {
            let body = with(demographics(), json!({"identifiers": [identifier.clone()]}));
            requests.push(app.post("/v1/patients").role(Role::Scheduler).json(&body));
        }
        for id in &existing {
            requests.push(
                app.patch(&format!("/v1/patients/{id}"))
                    .role(Role::Scheduler)
                    .json(&json!({"identifiers": [identifier.clone()]})),
            );
        }
        let responses = app.send_all(requests).await;
        let texts: Vec<&str> = responses.iter().map(|r| r.text.as_str()).collect();
        let won: Vec<&TestResponse> =
            responses.iter().filter(|r| r.status == 200 || r.status == 201).collect();
        assert_eq!(won.len(), 1, "{texts:?}");
        let holder = id_of(&won[0].body);
        for refused in responses.iter().filter(|r| r.status >= 300) {
            let problem = refused.assert_problem(409, "conflict");
            assert_eq!(problem["existing_patient_id"], holder.as_str(), "{}", refused.text);
        }
        let value = identifier["value"].as_str().unwrap();
        assert_eq!(
            app.count(&format!(
                "patient_identifiers WHERE value = '{value}' AND patient_id = '{holder}'"
            )),
            1
        );
        assert_eq!(app.count(&format!("patient_identifiers WHERE value = '{value}'")), 1);
        // The refused registrations stored no patient.
        registered += 5 + won.iter().filter(|r| r.status == 201).count() as i64;
        assert_eq!(app.count("patients"), registered);
        assert_eq!(found(&search(&app, &format!("identifier={OID}|{value}")).await), vec![holder]);
    }
}

#[actix_web::test]
async fn the_database_itself_refuses_a_second_holder() {
    let app = TestApp::spawn().await;
    let first = id_of(&app.create_patient(demographics()).await);
    let second = id_of(&app.create_patient(demographics()).await);
    let insert = |patient: &str, value: &str| {
        app.execute(&format!(
            "INSERT INTO patient_identifiers (system, value, patient_id) \
             VALUES ('{OID}', '{value}', '{patient}')"
        ))
    };
    assert!(insert(&first, "MRN-1"));
    assert!(!insert(&second, "MRN-1"), "a second holder past the API's own path");
    assert!(!insert(&first, "MRN-1"));
    assert!(insert(&second, "MRN-2"));
    assert_eq!(app.count("patient_identifiers"), 2);
}

#[test]
fn the_contract_states_the_identifier_rules() {
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let system = &spec["components"]["schemas"]["IdentifierSystem"];
    assert_eq!(system["pattern"], SYSTEM_PATTERN);
    assert_eq!(system["maxLength"], 255);
    let identifier = &spec["components"]["schemas"]["Identifier"];
    assert_eq!(identifier["properties"]["value"]["$ref"], "#/components/schemas/Text100");
    assert_eq!(identifier["additionalProperties"], false);
    let create = &spec["components"]["schemas"]["CreatePatient"]["properties"]["identifiers"];
    let update = &spec["components"]["schemas"]["UpdatePatient"]["properties"]["identifiers"];
    for list in [create, update] {
        assert_eq!(list["maxItems"], 10);
        assert_eq!(list["uniqueItems"], true);
        assert_eq!(list["items"]["$ref"], "#/components/schemas/Identifier");
    }

    let list = &spec["paths"]["/v1/patients"]["get"];
    let param = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "identifier")
        .expect("the identifier parameter");
    let text = values::pattern();
    let expected = format!(
        "^{}\\|{}$",
        SYSTEM_PATTERN.trim_start_matches('^').trim_end_matches('$'),
        text.trim_start_matches('^').trim_end_matches('$')
    );
    assert_eq!(param["schema"]["pattern"], expected.as_str());
    assert_eq!(param["schema"]["maxLength"], 356);
    // No example: Swagger UI would fill it in, and the first list would
    // find no one.
    assert!(param.get("example").is_none() && param["schema"].get("example").is_none());
    for (path, method) in [("/v1/patients", "post"), ("/v1/patients/{id}", "patch")] {
        let conflict = &spec["paths"][path][method]["responses"]["409"];
        let content = &conflict["content"]["application/problem+json"];
        // One example, or one each for the codes the status may carry.
        let example = match content.get("example") {
            Some(example) => example,
            None => &content["examples"]["conflict"]["value"],
        };
        assert_eq!(example["code"], "conflict", "{path}");
        assert!(example["existing_patient_id"].is_string(), "{path}");
    }
}
