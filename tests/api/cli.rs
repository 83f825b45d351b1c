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
        .env("DB_POOL_SIZE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in
        ["unsupported scheme `mysql`", "Atlantis/Capital", "AFTERNOON_START", "DB_POOL_SIZE"]
    {
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
