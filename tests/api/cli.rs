//! The `infusion-api` command: tokens, the spec, and refusing to start with
//! bad settings.

use std::process::Command;

use crate::helpers::{TestApp, AUDIENCE, ISSUER, SECRET};

fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infusion-api"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    cmd
}

#[actix_web::test]
async fn the_token_command_prints_a_token_the_api_accepts() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(crate::helpers::patient_body()).await;
    let id = patient["id"].as_str().unwrap();
    let token = |args: &[&str]| {
        let out = command()
            .args(["token"])
            .args(args)
            .env("JWT_SECRET", SECRET)
            .env("JWT_ISSUER", ISSUER)
            .env("JWT_AUDIENCE", AUDIENCE)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let scheduler = token(&["--role", "scheduler", "--ttl-minutes", "5"]);
    let res = app.get("/v1/patients").bearer(&scheduler).send().await;
    assert_eq!(res.status, 200, "{}", res.text);

    let own = token(&["--role", "patient", "--sub", id]);
    assert_eq!(app.get(&format!("/v1/patients/{id}")).bearer(&own).send().await.status, 200);
    let res = app.get("/v1/patients").bearer(&own).send().await;
    res.assert_problem(403, "forbidden");
}

#[test]
fn the_token_command_refuses_bad_arguments() {
    for args in [
        vec!["token", "--role", "root"],
        vec!["token", "--role", "patient"],
        vec!["token", "--role", "admin", "--ttl-minutes", "0"],
    ] {
        let out = command().args(&args).env("JWT_SECRET", SECRET).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// The claims of a token the command printed.
fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn the_token_command_stays_within_the_maximum_lifetime() {
    let run = |args: &[&str], max: Option<&str>| {
        let mut cmd = command();
        cmd.args(["token", "--role", "admin"]).args(args).env("JWT_SECRET", SECRET);
        if let Some(max) = max {
            cmd.env("JWT_MAX_LIFETIME_MINUTES", max);
        }
        cmd.output().unwrap()
    };
    let lifetime = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let claims = claims_of(String::from_utf8_lossy(&out.stdout).trim());
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    };
    // Up to the default maximum, 12 hours; a minute more is refused, saying why.
    assert_eq!(lifetime(&run(&["--ttl-minutes", "720"], None)), 720 * 60);
    let over = run(&["--ttl-minutes", "721"], None);
    assert!(!over.status.success() && over.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(stderr.contains("JWT_MAX_LIFETIME_MINUTES (720)"), "{stderr}");
    // The default, an hour, shrinks to a smaller maximum.
    assert_eq!(lifetime(&run(&[], None)), 3600);
    assert_eq!(lifetime(&run(&[], Some("30"))), 1800);
    assert!(!run(&["--ttl-minutes", "31"], Some("30")).status.success());
}

#[test]
fn the_server_refuses_the_development_or_a_weak_secret_in_production() {
    let weak = "a".repeat(32);
    for (secret, rule) in [
        ("infusion-api-development-secret-never-use-in-production", "not the development secret"),
        (weak.as_str(), "at least 10 distinct characters"),
        ("0123456789abcdef0123456789abcdef", "no repeated piece"),
    ] {
        // The unsupported database keeps a server that took the secret from
        // serving on, so that this test fails instead of hanging.
        let out = command()
            .arg("serve")
            .env("JWT_SECRET", secret)
            .env("DATABASE_URL", "mysql://localhost/clinic")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("rule: {rule}")), "{stderr}");
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

#[test]
fn the_server_refuses_to_start_without_a_secret_outside_development() {
    let out = command().arg("serve").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET is not set"), "{stderr}");
}

#[test]
fn the_server_names_every_bad_setting_and_prints_no_secret() {
    let out = command()
        .arg("serve")
        .env("JWT_SECRET", SECRET)
        .env("DATABASE_URL", "mysql://user:hunter2@localhost/clinic")
        .env("CLINIC_TIMEZONE", "Atlantis/Capital")
        .env("AFTERNOON_START", "25:00")
        .env("MORNING_END", "07:00")
        .env("DB_POOL_SIZE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "unsupported scheme `mysql`",
        "Atlantis/Capital",
        "AFTERNOON_START",
        "MORNING_END (07:00) must be later than MORNING_START (08:00)",
        "DB_POOL_SIZE",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains(SECRET) && !stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_reported_with_its_cause() {
    let out = command()
        .arg("migrate")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

#[test]
fn the_openapi_command_prints_the_committed_spec() {
    let out = command().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(printed == committed, "`infusion-api openapi` differs from openapi/openapi.json");
}

/// `audit prune` deletes the records older than the retention, and their
/// patients, in one transaction, through the append-only triggers that
/// refuse every other delete; it keeps the rest.
#[actix_web::test]
async fn audit_prune_deletes_only_what_is_past_the_retention() {
    let app = TestApp::spawn().await;
    let patient = app.create_patient(crate::helpers::patient_body()).await;
    let id = patient["id"].as_str().unwrap();
    // A UUIDv7 of 2 January 2019, the time its id says.
    let old = "01680e01-6900-7000-8000-0000000000a1";
    assert!(app.execute(&format!(
        "INSERT INTO audit_events (id, occurred_at, actor, actor_role, client_id, operation, method, \
         path, status, records, changed, source) VALUES ('{old}', '2019-01-02 10:00:00', \
         'front-desk', 'scheduler', NULL, 'get_patient', 'GET', '/v1/patients/{id}', 200, \
         'patient/{id}', '', NULL)"
    )));
    assert!(app.execute(&format!(
        "INSERT INTO audit_event_patients (patient_id, event_id) VALUES ('{id}', '{old}')"
    )));
    assert!(!app.execute("DELETE FROM audit_events"), "the triggers refuse any other delete");
    let prune = |days: &str| {
        let out = command()
            .args(["audit", "prune"])
            .env("DATABASE_URL", app.database_url())
            .env("AUDIT_RETENTION_DAYS", days)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let said = prune("2190");
    assert!(said.contains(": 1 audit records"), "{said}");
    assert_eq!(app.count("audit_events"), 1, "this request's record stays");
    assert_eq!(app.count(&format!("audit_events WHERE id = '{old}'")), 0);
    assert_eq!(app.count(&format!("audit_event_patients WHERE event_id = '{old}'")), 0);
    assert!(!app.execute("DELETE FROM audit_events"), "the triggers are back");
    assert!(prune("3650").contains(": 0 audit records"));
    let bad = command().args(["audit", "prune"]).env("AUDIT_RETENTION_DAYS", "0").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("AUDIT_RETENTION_DAYS"));
}

/// `client register` bootstraps a backend client without a token, with the
/// checks `POST /v1/clients` makes, and an audit record; a bad one stores
/// nothing.
#[actix_web::test]
async fn the_client_register_command_registers_what_the_api_would() {
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("client-cli-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    // A P-384 public key (generated with openssl), as a client registers it.
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-384", "kid": "ehr-1",
        "x": "bFDVNghke4qALhPqe5QtA7sc8Fq3WbZJOyZxGHdGdZx_7cNF6bjhLQKfnpvEHehF",
        "y": "Vpd4mfvy2s61i2Xb4zog86X2gLXZRHea59b_GZG5c346xFdgDg0pZKTUqZlg4Kh_"}]});
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let register = |args: &[&str]| {
        command()
            .args(["client", "register", "--name", "Riverside EHR"])
            .args(args)
            .env("DATABASE_URL", app.database_url())
            .output()
            .unwrap()
    };
    let path = file.to_str().unwrap();
    let out = register(&["--jwks", path, "--scope", "system/Patient.read"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let res = app
        .get(&format!("/v1/clients/{id}"))
        .role(infusion_api::domain::access::Role::Admin)
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["role"], "integration");
    assert_eq!(res.body["scopes"], serde_json::json!(["system/Patient.rs"]));
    assert_eq!(res.body["jwks"]["keys"][0]["kid"], "ehr-1");
    assert_eq!(app.count("audit_events"), 1, "one record, naming the command");

    for args in [
        vec!["--jwks", path, "--role", "admin"],
        vec!["--jwks", path, "--scope", "patient/Patient.rs"],
        vec!["--jwks-url", "http://ehr.example/jwks.json"],
        vec!["--jwks", "/no/such/file.json"],
        vec![],
    ] {
        let out = register(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(app.count("clients"), 1);
    let _ = std::fs::remove_dir_all(dir);
}
