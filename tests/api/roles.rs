//! Each `/v1` and `/fhir/R4` operation's description ends with the roles it admits
//! (`**Roles:** admin, clinician, scheduler.`). These tests hold the server
//! to that line, role by role, and the role table of `docs/API.md` to the
//! contract.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use serde_json::json;

use infusion_api::domain::access::Role;

use crate::helpers::TestApp;

/// An id no record has: admitted roles reach the lookup and get 404.
const UNKNOWN_ID: &str = "019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b";

/// The subject of the patient token: another unknown patient.
const PATIENT_ID: &str = "019a6b1e-7c2d-7f00-8a11-000000000001";

/// A protocol code that exists.
const PROTOCOL_CODE: &str = "pain-5-day";

/// The methods an OpenAPI path item may hold operations under.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// An operation: upper-case method and path template.
type Operation = (String, String);

/// The roles a `**Roles:**` list names: `admin, clinician, patient (its
/// own)`. A qualifier in parentheses is dropped; an unknown name is an error.
fn parse_roles(list: &str) -> Result<BTreeSet<&'static str>, String> {
    let mut roles = BTreeSet::new();
    for item in list.split(',') {
        let name = item.split('(').next().unwrap_or_default().trim();
        let role = Role::parse(name).ok_or_else(|| format!("unknown role `{name}` in `{list}`"))?;
        if !roles.insert(role.as_str()) {
            return Err(format!("`{name}` twice in `{list}`"));
        }
    }
    Ok(roles)
}

/// The roles an operation's description lists on its `**Roles:**` line: the
/// text after the marker up to the first `.` or `;`.
fn roles_of(description: &str) -> Result<BTreeSet<&'static str>, String> {
    let (_, after) = description
        .split_once("**Roles:**")
        .ok_or_else(|| "its description has no `**Roles:**` line".to_owned())?;
    let list = after.split(['.', ';']).next().unwrap_or_default();
    parse_roles(list)
}

/// Every `/v1` operation of the generated document with the roles it
/// documents; panics naming each operation whose roles cannot be read.
fn documented_roles() -> BTreeMap<Operation, BTreeSet<&'static str>> {
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let mut operations = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        // The FHIR facade's operations too; its CapabilityStatement is public.
        if !(path.starts_with("/v1/") || is_fhir(path)) {
            continue;
        }
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let description = op["description"].as_str().unwrap_or_default();
            match roles_of(description) {
                Ok(roles) => {
                    operations.insert((method.to_uppercase(), path.clone()), roles);
                }
                Err(why) => unreadable.push(format!("{} {path}: {why}", method.to_uppercase())),
            }
        }
    }
    assert!(unreadable.is_empty(), "operations without readable roles:\n{}", unreadable.join("\n"));
    assert!(operations.len() >= 40, "only {} /v1 operations in the document", operations.len());
    operations
}

/// A FHIR operation that takes a token.
fn is_fhir(path: &str) -> bool {
    path.starts_with("/fhir/R4/") && path != "/fhir/R4/metadata"
}

/// `template` with each path parameter filled: a protocol code with one
/// that exists, anything else with an unknown id.
fn concrete(template: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("a closed parameter");
        path.push_str(&rest[..open]);
        path.push_str(if &rest[open..=close] == "{code}" { PROTOCOL_CODE } else { UNKNOWN_ID });
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

#[actix_web::test]
async fn every_operation_admits_exactly_its_documented_roles() {
    let app = TestApp::at_clinic_now().await;
    // A body no operation takes: an admitted role is refused for it (400 or
    // 422), or for the unknown id (404), but never with 403.
    let wrong_body = json!({"nme": 1});
    let mut mismatches = Vec::new();
    for ((method, template), admitted) in documented_roles() {
        let path = concrete(&template);
        for role in Role::ALL {
            let mut request = app.request(Method::from_bytes(method.as_bytes()).unwrap(), &path);
            request = match role {
                Role::Patient => request.patient(PATIENT_ID),
                other => request.role(other),
            };
            if matches!(method.as_str(), "POST" | "PATCH" | "PUT") {
                request = request.json(&wrong_body);
            }
            let res = request.send().await;
            let refused = res.status == 403;
            // A problem's code, or (FHIR) an OperationOutcome's issue type.
            let forbidden = refused
                && (res.body["code"] == "forbidden" || res.body["issue"][0]["code"] == "forbidden");
            if admitted.contains(role.as_str()) {
                if refused {
                    mismatches.push(format!(
                        "{method} {template}: `{}` is documented but got 403: {}",
                        role.as_str(),
                        res.text
                    ));
                }
            } else if !forbidden {
                mismatches.push(format!(
                    "{method} {template}: `{}` is not documented but got {}, not 403 `forbidden`: {}",
                    role.as_str(),
                    res.status,
                    res.text
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} role mismatches between the contract and the server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[actix_web::test]
async fn a_refused_role_learns_nothing_of_the_body_schema() {
    let app = TestApp::at_clinic_now().await;
    let rooms = app.count("rooms");

    // A misspelt field is answered as the role's refusal, not as the field's.
    let res = app.post("/v1/rooms").patient(PATIENT_ID).json(&json!({"nme": 1})).send().await;
    res.assert_problem(403, "forbidden");
    assert!(!res.text.contains("name") && !res.text.contains("nme"), "{}", res.text);

    // A body that is not JSON at all: still 403, not 400.
    let res = app.post("/v1/rooms").role(Role::Scheduler).raw("application/json", "{").send().await;
    res.assert_problem(403, "forbidden");
    assert_eq!(app.count("rooms"), rooms);
}

/// The operations of the table under `## Roles` in `docs/API.md`: rows
/// `| METHOD | path | roles |`, the path maybe in backticks.
fn docs_role_table(docs: &str) -> Result<BTreeMap<Operation, BTreeSet<&'static str>>, Vec<String>> {
    let section = docs
        .split("\n## ")
        .find(|s| s.lines().next().is_some_and(|heading| heading.trim() == "Roles"))
        .ok_or_else(|| vec!["docs/API.md has no `## Roles` section".to_owned()])?;
    let mut table = BTreeMap::new();
    let mut errors = Vec::new();
    for line in section.lines().map(str::trim).filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [method, path, roles] = cells[..] else { continue };
        let path = path.trim_matches('`');
        // The header row and the rule under it; other tables of the section
        // (the roles explained) have no path in their second column.
        if !(path.starts_with("/v1/") || is_fhir(path)) {
            continue;
        }
        match parse_roles(roles) {
            Ok(roles) => {
                if table.insert((method.to_owned(), path.to_owned()), roles).is_some() {
                    errors.push(format!("{method} {path}: listed twice"));
                }
            }
            Err(why) => errors.push(format!("{method} {path}: {why}")),
        }
    }
    if table.is_empty() {
        errors.push("the `## Roles` section of docs/API.md has no operation rows".to_owned());
    }
    if errors.is_empty() {
        Ok(table)
    } else {
        Err(errors)
    }
}

#[test]
fn the_docs_role_table_matches_the_contract() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md");
    let table = docs_role_table(&docs).unwrap_or_else(|errors| panic!("{}", errors.join("\n")));
    let contract = documented_roles();
    let mut differences = Vec::new();
    for ((method, path), roles) in &contract {
        match table.get(&(method.clone(), path.clone())) {
            None => differences.push(format!("{method} {path}: not in docs/API.md")),
            Some(listed) if listed != roles => differences.push(format!(
                "{method} {path}: docs/API.md lists {listed:?}, the contract {roles:?}"
            )),
            Some(_) => {}
        }
    }
    for (method, path) in table.keys() {
        if !contract.contains_key(&(method.clone(), path.clone())) {
            differences.push(format!("{method} {path}: in docs/API.md, not in the contract"));
        }
    }
    assert!(
        differences.is_empty(),
        "the Roles table of docs/API.md differs from the contract:\n{}",
        differences.join("\n")
    );
}
