//! The contract's links (`src/http/links.rs`): each leads from an answer to
//! an operation and a parameter that exist, reading a member the answer
//! has; every create links to its record and the actions on it; and,
//! followed over HTTP, the links reach the records the creates made.

use std::collections::BTreeMap;

use infusion_api::domain::access::Role;
use serde_json::{json, Value};

use crate::helpers::{patient_body, referral, with, TestApp};

/// The methods an OpenAPI path item may hold operations under.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    serde_json::to_value(infusion_api::http::openapi()).unwrap()
}

/// Every operation by operationId: its method, path template and object.
fn operations(spec: &Value) -> BTreeMap<String, (String, String, Value)> {
    let mut out = BTreeMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let id = op["operationId"].as_str().unwrap().to_owned();
                out.insert(id, (method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// `schema` with its `$ref` followed.
fn resolved<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => {
            &spec["components"]["schemas"][target.trim_start_matches("#/components/schemas/")]
        }
        None => schema,
    }
}

/// The schema of member `name` of an object schema (through `allOf`).
fn member<'a>(spec: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    let schema = resolved(spec, schema);
    if let Some(found) = schema["properties"].get(name) {
        return Some(found);
    }
    schema["allOf"].as_array()?.iter().find_map(|part| member(spec, part, name))
}

/// Whether the JSON pointer `pointer` names something the schema has: each
/// object member a property, each array index an item.
fn schema_has(spec: &Value, schema: &Value, pointer: &str) -> bool {
    let mut at = schema;
    for step in pointer.trim_start_matches('/').split('/') {
        let here = resolved(spec, at);
        at = if step.parse::<usize>().is_ok() && here["type"] == "array" {
            &here["items"]
        } else {
            match member(spec, here, step) {
                Some(next) => next,
                None => return false,
            }
        };
    }
    true
}

/// Every link of the document: source operation, status, name, link.
fn links(spec: &Value) -> Vec<(String, String, String, Value)> {
    let mut out = Vec::new();
    for (id, (_, _, op)) in operations(spec) {
        for (status, response) in op["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                out.push((id.clone(), status.clone(), name.clone(), link.clone()));
            }
        }
    }
    out
}

#[test]
fn every_link_leads_to_an_operation_and_a_parameter_it_has() {
    let spec = spec();
    let operations = operations(&spec);
    let mut wrong = Vec::new();
    let all = links(&spec);
    for (source, status, name, link) in &all {
        let at = format!("{source} {status} → {name}");
        let Some((_, _, target)) = operations.get(link["operationId"].as_str().unwrap_or(""))
        else {
            wrong.push(format!("{at}: no operation {}", link["operationId"]));
            continue;
        };
        let body =
            &operations[source].2["responses"][status]["content"]["application/json"]["schema"];
        let parameters = link["parameters"].as_object().unwrap();
        assert!(!parameters.is_empty(), "{at}: no parameter");
        for (parameter, expression) in parameters {
            let takes = target["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == parameter.as_str() && p["in"] != "header");
            if !takes {
                wrong.push(format!("{at}: the target has no parameter `{parameter}`"));
            }
            let pointer = expression.as_str().and_then(|e| e.strip_prefix("$response.body#"));
            match pointer {
                Some(pointer) if schema_has(&spec, body, pointer) => {}
                _ => wrong.push(format!("{at}: `{expression}` is not in the answer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(all.len() >= 45, "{} links", all.len());
}

#[test]
fn every_create_links_to_its_record_and_its_actions() {
    let spec = spec();
    let targets = |source: &str| -> Vec<String> {
        links(&spec)
            .into_iter()
            .filter(|(s, status, _, _)| s == source && status == "201")
            .map(|(_, _, _, link)| link["operationId"].as_str().unwrap().to_owned())
            .collect()
    };
    for (source, expected) in [
        (
            "create_patient",
            &[
                "get_patient",
                "update_patient",
                "get_readiness",
                "create_referral",
                "list_referrals",
                "create_screening",
                "list_screenings",
                "create_treatment_attestation",
                "create_prescriber_consult",
                "list_patient_courses",
                "list_appointments",
            ][..],
        ),
        (
            "book_appointment",
            &[
                "get_appointment",
                "cancel_appointment",
                "reschedule_appointment",
                "check_in_appointment",
                "complete_appointment",
                "no_show_appointment",
            ],
        ),
        ("book_course", &["get_course", "cancel_course", "get_appointment", "cancel_appointment"]),
        ("create_referral", &["get_referral", "verify_referral", "reject_referral"]),
        ("create_screening", &["get_screening", "get_readiness"]),
        ("create_room", &["update_room"]),
        ("create_closure", &["delete_closure"]),
    ] {
        let found = targets(source);
        for target in expected {
            assert!(found.iter().any(|t| t == target), "{source} does not link to {target}");
        }
    }
    // Every 201 links somewhere, and each operation on an appointment is
    // reached from an answer.
    let operations = operations(&spec);
    for (id, (_, _, op)) in &operations {
        if op["responses"].get("201").is_some() {
            assert!(!targets(id).is_empty(), "{id} answers 201 without links");
        }
    }
    let reached: Vec<String> =
        links(&spec).into_iter().map(|(_, _, _, l)| l["operationId"].to_string()).collect();
    for (id, (_, path, _)) in &operations {
        if path.starts_with("/v1/appointments/{id}") {
            assert!(reached.contains(&format!("\"{id}\"")), "no link leads to {id}");
        }
    }
}

/// Follows every link to a `GET` from `source`'s answer `body`, as an
/// admin: each reaches the record (200).
async fn follow(app: &TestApp, spec: &Value, source: &str, body: &Value) -> usize {
    let operations = operations(spec);
    let mut followed = 0;
    for (_, _, name, link) in links(spec).into_iter().filter(|(s, _, _, _)| s == source) {
        let (method, template, target) = &operations[link["operationId"].as_str().unwrap()];
        if method != "get" {
            continue;
        }
        let mut path = template.clone();
        let mut query = Vec::new();
        for (parameter, expression) in link["parameters"].as_object().unwrap() {
            let pointer = expression.as_str().unwrap().trim_start_matches("$response.body#");
            let value = body.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| {
                panic!("{source} → {name}: `{pointer}` is not in the answer: {body}")
            });
            let place = target["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == parameter.as_str())
                .map(|p| p["in"].as_str().unwrap())
                .unwrap();
            match place {
                "path" => path = path.replace(&format!("{{{parameter}}}"), value),
                _ => query.push(format!("{parameter}={value}")),
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let res = app.get(&path).role(Role::Admin).send().await;
        assert_eq!(res.status, 200, "{source} → {name}: GET {path}: {}", res.text);
        followed += 1;
    }
    followed
}

#[actix_web::test]
async fn following_the_links_of_a_create_reaches_what_it_made() {
    let app = TestApp::at_clinic_now().await;
    // The billing profile set: a patient's superbill is there to follow.
    let clinician_id = app.billing_ready().await;
    let spec = spec();
    let created = |res: crate::helpers::TestResponse| {
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    };
    let patient_body = with(
        patient_body(),
        json!({"in_mental_health_treatment": true, "pain_referral_required": false}),
    );
    let patient =
        created(app.post("/v1/patients").role(Role::Clinician).json(&patient_body).send().await);
    let id = patient["id"].as_str().unwrap().to_owned();
    let screening = app.screen(&id, &[], &[]).await;
    let letter = created(
        app.post(&format!("/v1/patients/{id}/referrals"))
            .role(Role::Scheduler)
            .json(&referral("pain_management"))
            .send()
            .await,
    );
    let appointment = app.booked(&id, "2026-12-03", "morning").await;
    let other = app.ready_patient().await;
    let course = created(
        app.post("/v1/courses")
            .role(Role::Scheduler)
            .json(&json!({"patient_id": other, "protocol": "pain-5-day", "session": "afternoon",
                "earliest_start": "2026-12-07"}))
            .send()
            .await,
    );
    let charge = created(
        app.post(&format!("/v1/patients/{id}/charges"))
            .role(Role::Clinician)
            .json(&json!({"code": "96365", "units": 1, "date_of_service": "2026-12-01",
                "clinician_id": clinician_id}))
            .send()
            .await,
    );
    let payment = created(
        app.post(&format!("/v1/patients/{id}/payments"))
            .role(Role::Scheduler)
            .json(&json!({"amount_cents": 45000, "received_on": "2026-12-01", "method": "cash"}))
            .send()
            .await,
    );
    let clinician = app.get(&format!("/v1/clinicians/{clinician_id}")).role(Role::Admin).send();
    let clinician = clinician.await.body;
    let mut followed = 0;
    for (source, body) in [
        ("create_charge", &charge),
        ("create_payment", &payment),
        ("create_clinician", &clinician),
        ("create_patient", &patient),
        ("create_screening", &screening),
        ("create_referral", &letter),
        ("book_appointment", &appointment),
        ("book_course", &course),
    ] {
        followed += follow(&app, &spec, source, body).await;
    }
    assert!(followed >= 20, "{followed} links followed");
}
