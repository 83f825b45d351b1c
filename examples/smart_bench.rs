//! What `make bench` needs of SMART Backend Services that a shell cannot do
//! (bench/bench.py runs it, release build):
//!
//!   smart_bench jwks KEY KID                     the public JWKS of an ES384 key
//!   smart_bench assertions KEY KID CLIENT AUD N  N signed assertions, a line each
//!   smart_bench verify-cost N                    µs per token verification
//!
//! `verify-cost` reads the server's settings from the environment
//! (`JWT_SECRET`, `SIGNING_KEY_FILE`…) and verifies N tokens of each kind
//! without the verified-token cache: what the first request with a token
//! costs. Prints JSON.

use std::time::Instant;

use chrono::Utc;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use infusion_api::config::Settings;
use infusion_api::domain::access::Role;
use infusion_api::domain::client::{Client, ClientKeys};
use infusion_api::domain::scopes::Scopes;
use infusion_api::http::auth::JwtKeys;
use infusion_api::http::signing::Signer;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["jwks", key, kid] => jwks(key, kid),
        ["assertions", key, kid, client, aud, n] => assertions(key, kid, client, aud, count(n)?),
        ["verify-cost", n] => verify_cost(count(n)?),
        _ => {
            Err("usage: smart_bench jwks KEY KID | assertions KEY KID CLIENT AUD N | verify-cost N"
                .into())
        }
    }
}

fn count(n: &str) -> Result<usize, String> {
    n.parse().map_err(|_| format!("`{n}` is not a count"))
}

fn key(path: &str) -> Result<EncodingKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    EncodingKey::from_ec_pem(&pem).map_err(|e| format!("{path}: {e}"))
}

fn jwks(path: &str, kid: &str) -> Result<(), String> {
    let mut jwk =
        Jwk::from_encoding_key(&key(path)?, Algorithm::ES384).map_err(|e| e.to_string())?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES384);
    let set = JwkSet { keys: vec![jwk] };
    println!("{}", serde_json::to_string(&set).map_err(|e| e.to_string())?);
    Ok(())
}

fn assertions(path: &str, kid: &str, client: &str, aud: &str, n: usize) -> Result<(), String> {
    let key = key(path)?;
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".into());
    let exp = Utc::now().timestamp() + 300;
    let mut out = String::new();
    for _ in 0..n {
        let claims = json!({"iss": client, "sub": client, "aud": aud, "exp": exp,
                            "jti": uuid::Uuid::now_v7().to_string()});
        out.push_str(&jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

fn verify_cost(n: usize) -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let signer = Signer::load(&settings)?.ok_or("set SIGNING_KEY_FILE")?;
    let keys = JwtKeys::new(&settings, Some(signer));
    let now = Utc::now();
    let hs256 = keys
        .issue(Role::Integration, "bench", now, now + chrono::Duration::minutes(5))
        .map_err(|e| e.to_string())?;
    let client = Client {
        id: "bench-client".into(),
        name: "bench".into(),
        role: Role::Integration,
        keys: ClientKeys::Url("https://bench.invalid/jwks".into()),
        scopes: Scopes::parse("system/Patient.rs").map_err(|e| e.join("; "))?,
        disabled_at: None,
        created_at: now,
        updated_at: now,
    };
    let (es256, _) = keys
        .issue_access_token(&client, &client.scopes, now)
        .ok_or("no signing key")?
        .map_err(|e| e.to_string())?;
    let per_token = |token: &str| -> Result<f64, String> {
        keys.verify_fresh(token).map_err(|e| e.to_string())?;
        let started = Instant::now();
        for _ in 0..n {
            keys.verify_fresh(token).map_err(|e| e.to_string())?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / n as f64)
    };
    let (hs, es) = (per_token(&hs256)?, per_token(&es256)?);
    let cached = {
        keys.verify(&es256).map_err(|e| e.to_string())?;
        let started = Instant::now();
        for _ in 0..n {
            keys.verify(&es256).map_err(|e| e.to_string())?;
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    println!("{}", json!({"hs256_us": hs, "es256_us": es, "cached_us": cached, "n": n}));
    Ok(())
}
