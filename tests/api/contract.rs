//! The contract says what the server enforces, so that every request the
//! schema allows is one the server takes (CI fuzzes this with schemathesis,
//! `.ci/fuzz`). These tests hold the hand-written parts of the contract to
//! the checks, and the behaviour the fuzzing made precise.

use infusion_api::domain::access::Role;
use infusion_api::domain::values::{self, YEAR_PATTERN};
use serde_json::{json, Value};

use crate::helpers::{patient_body, provider, referral, with, TestApp};

fn spec() -> Value {
    serde_json::to_value(infusion_api::http::openapi()).unwrap()
}

/// Every schema object under `value`, following each `$ref` into its
/// component wherever it stands (the contract has no recursive schema).
fn schemas<'a>(spec: &'a Value, value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.trim_start_matches("#/components/schemas/");
                schemas(spec, &spec["components"]["schemas"][name], out);
            }
            out.push(value);
            for child in map.values() {
                schemas(spec, child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| schemas(spec, v, out)),
        _ => {}
    }
}

/// The schemas of every request body and parameter, once per place used.
fn request_schemas(spec: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            schemas(spec, &op["requestBody"], &mut out);
            schemas(spec, &op["parameters"], &mut out);
        }
    }
    out
}

#[test]
fn every_free_text_field_states_the_rule_text_enforces() {
    let spec = spec();
    let pattern = values::pattern();
    let texts: Vec<&Value> = request_schemas(&spec)
        .into_iter()
        .filter(|s| s["pattern"].as_str().is_some_and(|p| p.starts_with("^[^\\u0000-\\u001F")))
        .collect();
    for text in &texts {
        assert_eq!(text["pattern"], pattern.as_str(), "{text}");
        assert_eq!(text["minLength"], 1, "{text}");
        assert!(text["maxLength"].as_u64().is_some(), "{text}");
    }
    // Names, provider texts, reasons, references, plans, medications, rooms,
    // closures, protocol names.
    assert!(texts.len() >= 14, "{} free-text fields", texts.len());
    // Each is a `Text<N>` component whose name says its bound.
    for (name, text) in spec["components"]["schemas"].as_object().unwrap() {
        if let Some(max) = name.strip_prefix("Text") {
            assert_eq!(text["pattern"], pattern.as_str(), "{name}");
            assert_eq!(text["maxLength"].to_string(), max, "{name}");
        }
    }
}

#[test]
fn every_date_a_request_takes_is_bounded_as_the_server_bounds_it() {
    let spec = spec();
    let dates: Vec<&Value> =
        request_schemas(&spec).into_iter().filter(|s| s["format"] == "date").collect();
    for date in &dates {
        assert_eq!(date["pattern"], YEAR_PATTERN, "{date}");
    }
    assert!(dates.len() >= 12, "{} dates", dates.len());
}

/// A response that adds members to a record does not `allOf` a schema that
/// refuses unknown members (request bodies refuse them): no response body
/// could meet both.
#[test]
fn no_response_composes_a_closed_schema() {
    let spec = spec();
    let components = &spec["components"]["schemas"];
    let closed = |schema: &Value| {
        let target = match schema["$ref"].as_str() {
            Some(r) => &components[r.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        target["additionalProperties"] == false && target["properties"].is_object()
    };
    let mut found = Vec::new();
    for (name, schema) in components.as_object().unwrap() {
        let mut parts = Vec::new();
        schemas(&spec, schema, &mut parts);
        for part in parts {
            if let Some(all) = part["allOf"].as_array() {
                if all.len() > 1
                    && all
                        .iter()
                        .filter(|s| s["properties"].is_object() || s["$ref"].is_string())
                        .count()
                        > 1
                {
                    found.extend(all.iter().filter(|s| closed(s)).map(|s| format!("{name}: {s}")));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_provider_needs_one_way_to_reach_them_in_the_contract_too() {
    let spec = spec();
    let any_of = &spec["components"]["schemas"]["Provider"]["allOf"][1]["anyOf"];
    let required: Vec<&str> = any_of
        .as_array()
        .unwrap()
        .iter()
        .map(|branch| branch["required"][0].as_str().unwrap())
        .collect();
    assert_eq!(required, ["phone", "fax", "email"]);
}

#[actix_web::test]
async fn the_cursor_is_the_last_id_and_any_uuid_is_a_cursor() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_patient(patient_body()).await;
    }
    let page = app.get("/v1/patients?limit=2").role(Role::Scheduler).send().await.body;
    assert_eq!(page["next_cursor"], page["items"][1]["id"]);
    for cursor in [
        "e3e70682-c209-4cac-a29f-6fbed82c07cd".to_owned(),
        uuid::Uuid::nil().to_string(),
        page["items"][0]["id"].as_str().unwrap().to_uppercase(),
    ] {
        let res =
            app.get(&format!("/v1/patients?cursor={cursor}")).role(Role::Scheduler).send().await;
        assert_eq!(res.status, 200, "{cursor}: {}", res.text);
    }
    // The nil UUID sorts first: the page after it is the whole list.
    let all = app
        .get(&format!("/v1/patients?cursor={}", uuid::Uuid::nil()))
        .role(Role::Scheduler)
        .send()
        .await
        .body;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn a_whole_number_is_an_integer_however_it_is_written() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.ready_patient().await;
    let plan = |infusions: &str| {
        format!(
            r#"{{"patient_id": "{patient}", "protocol": "pain-8-10-day", "session": "morning",
                "earliest_start": "2026-12-07", "infusions": {infusions}}}"#
        )
    };
    for infusions in ["9", "9.0", "9e0", "0.9E1", "900e-2"] {
        let res = app
            .post("/v1/courses/plan")
            .role(Role::Scheduler)
            .raw("application/json", plan(infusions))
            .send()
            .await;
        assert_eq!(res.status, 200, "{infusions}: {}", res.text);
        assert_eq!(res.body["infusions"], 9);
    }
    for infusions in ["9.5", "-9.0", "1e30"] {
        let res = app
            .post("/v1/courses/plan")
            .role(Role::Scheduler)
            .raw("application/json", plan(infusions))
            .send()
            .await;
        res.assert_invalid_fields(&["infusions"]);
    }
}

#[actix_web::test]
async fn a_repeated_key_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/rooms")
        .role(Role::Admin)
        .raw("application/json", r#"{"name": "Room 5", "name": "Room 6"}"#)
        .send()
        .await;
    let messages = res.assert_invalid_fields(&["body"]);
    assert_eq!(messages, ["duplicate field `name`"]);
    assert_eq!(app.count("rooms"), 4);
}

#[actix_web::test]
async fn free_text_counts_every_character_and_allows_no_control_character() {
    let app = TestApp::spawn().await;
    let room = |name: String| json!({"name": name});
    for (name, accepted) in [
        (format!("{}Room 5", " ".repeat(94)), true), // 100 characters
        (format!("{}Room 6", " ".repeat(95)), false), // 101
        ("Room 7\n".to_owned(), false),
        ("\tRoom 7".to_owned(), false),
        ("\u{3000}\u{a0} ".to_owned(), false),
        ("Zimmer \u{fc}ber \u{1f6cf}".to_owned(), true),
    ] {
        let res = app.post("/v1/rooms").role(Role::Admin).json(&room(name.clone())).send().await;
        if accepted {
            assert_eq!(res.status, 201, "{name:?}: {}", res.text);
            assert_eq!(res.body["name"], name.trim(), "stored trimmed");
        } else {
            res.assert_invalid_fields(&["name"]);
        }
    }
}

#[actix_web::test]
async fn an_empty_contact_is_none_and_a_contact_is_checked_as_sent() {
    let app = TestApp::at_clinic_now().await;
    let patient = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    let letter = |changes: Value| {
        let mut body = referral("pain_management");
        body["provider"] = with(provider(), changes);
        body
    };
    let post = |body: Value| {
        app.post(&format!("/v1/patients/{patient}/referrals")).role(Role::Scheduler).json(&body)
    };
    let res = post(letter(json!({"phone": "", "fax": "555 010 3001", "npi": ""}))).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["provider"]["phone"], Value::Null);
    assert_eq!(res.body["provider"]["npi"], Value::Null);
    for (changes, field) in [
        (json!({"phone": "", "email": ""}), "provider"),
        (json!({"phone": " +1 555 010 3000"}), "provider.phone"),
        (json!({"email": " jdoe@example.org"}), "provider.email"),
        (json!({"npi": " 1234567893"}), "provider.npi"),
    ] {
        post(letter(changes.clone())).send().await.assert_invalid_fields(&[field]);
    }
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"email": "", "phone": ""})))
        .send()
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["email"], Value::Null);
    assert_eq!(res.body["phone"], Value::Null);
}

#[actix_web::test]
async fn each_indication_code_once_is_in_the_schema_and_enforced() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    for body in ["CreatePatient", "UpdatePatient"] {
        let indications = &schemas[body]["properties"]["indications"];
        assert_eq!(indications["type"], "array", "{body}");
        let once: Vec<&Value> = indications["allOf"].as_array().unwrap().iter().collect();
        let codes: Vec<&str> = once
            .iter()
            .map(|c| {
                assert_eq!(
                    (c["minContains"].clone(), c["maxContains"].clone()),
                    (json!(0), json!(1))
                );
                c["contains"]["properties"]["code"]["const"].as_str().unwrap()
            })
            .collect();
        assert_eq!(codes, ["chronic_pain", "migraine", "depression", "anxiety"], "{body}");
    }
    // Two items with one code, differing in subtype: `uniqueItems` would
    // pass them, the schema does not, and neither does the server.
    let app = TestApp::spawn().await;
    let twice = json!([{"code": "chronic_pain", "subtype": "crps"},
        {"code": "chronic_pain", "subtype": "other"}]);
    let res = app
        .post("/v1/patients")
        .role(Role::Clinician)
        .json(&with(patient_body(), json!({"indications": twice})))
        .send()
        .await;
    let messages = res.assert_invalid_fields(&["indications[1].code"]);
    assert!(messages[0].contains("more than once"), "{messages:?}");
    let patient = app.create_patient(patient_body()).await["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/patients/{patient}"))
        .role(Role::Clinician)
        .json(&json!({"indications": [{"code": "anxiety"}, {"code": "anxiety", "subtype": null}]}))
        .send()
        .await
        .assert_invalid_fields(&["indications[1].code"]);
}

#[test]
fn a_protocol_change_and_a_course_request_state_their_shapes() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let put =
        &spec["paths"]["/v1/protocols/{code}"]["put"]["requestBody"]["content"]["application/json"];
    assert_eq!(put["schema"]["$ref"], "#/components/schemas/ProtocolChange");
    assert!(put["example"].get("code").is_none(), "{}", put["example"]);
    let branches = schemas["ProtocolChange"]["oneOf"].as_array().unwrap();
    let spacings: Vec<&Value> =
        branches.iter().map(|b| &b["properties"]["spacing"]["enum"]).collect();
    assert_eq!(spacings, [&json!(["consecutive_clinic_days"]), &json!(["weekly"])]);
    for branch in branches {
        assert!(branch["properties"].get("code").is_none());
        assert_eq!(branch["additionalProperties"], false);
    }
    assert_eq!(branches[0]["properties"]["per_week"]["type"], "null");
    assert_eq!(
        branches[1]["required"].as_array().unwrap().iter().filter(|r| *r == "per_week").count(),
        1
    );

    // A course request: the fields once, closed, then one shape of two.
    let course = &schemas["CourseRequest"]["allOf"];
    assert_eq!(course[0]["additionalProperties"], false);
    let shapes = course[1]["oneOf"].as_array().unwrap();
    assert_eq!(shapes[0]["properties"]["per_week"]["type"], "null");
    assert_eq!(shapes[0]["properties"]["weeks"]["type"], "null");
    assert_eq!(shapes[1]["properties"]["infusions"]["type"], "null");
    assert_eq!(shapes[1]["properties"]["per_week"]["type"], "integer");
    assert_eq!(shapes[1]["required"], json!(["per_week", "weeks"]));
}

/// Swagger UI's "Try it out" fills in the served examples as they are: no
/// parameter pre-fills a filter or a cursor, and the request examples,
/// dated from the server's today, are calls the server takes (once a real
/// patient's id is filled in where one is needed).
#[actix_web::test]
async fn the_served_examples_make_useful_first_calls() {
    let app = TestApp::at_clinic_now().await;
    let served = app.get("/openapi.json").send().await.body;
    let component = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => served["components"]["schemas"]
                [r.trim_start_matches("#/components/schemas/")]
            .clone(),
            None => schema.clone(),
        }
    };
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                let schema = component(&parameter["schema"]);
                for example in [
                    &parameter["example"],
                    &parameter["examples"],
                    &schema["example"],
                    &schema["examples"],
                ] {
                    assert!(
                        example.is_null(),
                        "{method} {path} `{}` pre-fills {example}",
                        parameter["name"]
                    );
                }
            }
        }
    }
    let example = |path: &str| -> Value {
        let content = &served["paths"][path]["post"]["requestBody"]["content"]["application/json"];
        if content["example"].is_object() {
            return content["example"].clone();
        }
        let schema = component(&content["schema"]);
        if schema["example"].is_object() {
            schema["example"].clone()
        } else {
            schema["examples"][0].clone()
        }
    };
    let send = |path: &str, body: Value| app.post(path).role(Role::Admin).json(&body).send();

    // Wednesday 2 December 2026: the next clinic day is Thursday the 3rd.
    assert_eq!(example("/v1/appointments")["date"], "2026-12-03");
    assert_eq!(example("/v1/patients/{id}/referrals")["received_on"], "2026-12-02");
    let res = send("/v1/patients", example("/v1/patients")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let patient = app.ready_patient().await;
    let mine = |path: &str| with(example(path), json!({"patient_id": patient}));
    let res = send("/v1/appointments", mine("/v1/appointments")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = send("/v1/courses/plan", mine("/v1/courses/plan")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = send("/v1/closures", example("/v1/closures")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    for path in [
        "/v1/patients/{id}/referrals",
        "/v1/patients/{id}/treatment-attestations",
        "/v1/patients/{id}/prescriber-consults",
    ] {
        let res = send(&path.replace("{id}", &patient), example(path)).await;
        assert_eq!(res.status, 201, "{path}: {}", res.text);
    }
}
