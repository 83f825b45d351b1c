//! Identity providers' tokens (`TRUSTED_ISSUERS_FILE`): RS*/PS*/ES*/EdDSA
//! tokens whose `iss` names a trusted issuer, verified with a key of its
//! JWKS, their role read from a claim through the issuer's group mapping.
//! [`JwtKeys`](super::auth::JwtKeys) sends every token that is not HS256
//! here, then applies the checks every token gets.

use std::io::Read;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::config::TrustedIssuer;
use crate::domain::access::Role;

use super::error::ApiError;

/// The least time between two readings of an issuer's JWKS prompted by a
/// token naming a key it lacks: a stream of made-up `kid`s reads it once a
/// minute at most.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// How long fetching a JWKS URL may take; it runs while a request waits
/// (only when a token names a key not known yet, at most once a minute).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a JWKS URL's answer that is read.
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// How often the JWKS is read again regardless: a key the provider
/// withdrew (compromised, say) stops verifying within this time.
const REREAD_EVERY: Duration = Duration::from_secs(600);

/// A trusted issuer with its keys.
pub struct Issuer {
    source: Arc<Source>,
    config: TrustedIssuer,
    algorithms: Vec<Algorithm>,
}

/// A JWKS (an issuer's, or a backend client's at a URL) and the keys read
/// from it, shared with whatever reads it again every [`REREAD_EVERY`].
pub struct Source {
    /// Whose keys, for the log.
    owner: String,
    file: Option<std::path::PathBuf>,
    url: Option<String>,
    keys: Mutex<Keys>,
    /// Counts the changes of the key set: a token verified under an older
    /// set is verified again ([`Issuer::generation`]).
    generation: AtomicU64,
}

struct Keys {
    set: JwkSet,
    /// When a token naming a key not in the set last made it read again.
    reread_at: Option<Instant>,
    /// When it was last read (successfully or not).
    read_at: Option<Instant>,
}

impl Issuer {
    /// The issuer `config` names, its JWKS read now (an unreadable one is
    /// kept empty and logged: its tokens are refused until it reads), and
    /// again every [`REREAD_EVERY`] by a thread that ends with the issuer.
    pub fn new(config: &TrustedIssuer) -> Self {
        let algorithms =
            config.algorithms.iter().filter_map(|a| Algorithm::from_str(a).ok()).collect();
        let source = Arc::new(Source::new(
            format!("issuer {}", config.issuer),
            config.jwks_file.clone(),
            config.jwks_url.clone(),
        ));
        source.read();
        let weak = Arc::downgrade(&source);
        let spawned = std::thread::Builder::new().name("jwks-reread".into()).spawn(move || loop {
            std::thread::sleep(REREAD_EVERY);
            match weak.upgrade() {
                Some(source) => source.read(),
                None => return,
            }
        });
        if let Err(e) = spawned {
            log::warn!("the JWKS of issuer {} will not be read again in time: {e}", config.issuer);
        }
        Self { source, config: config.clone(), algorithms }
    }

    /// The `iss` its tokens carry.
    pub fn name(&self) -> &str {
        &self.config.issuer
    }

    /// How many times its key set has changed since start.
    pub fn generation(&self) -> u64 {
        self.source.generation.load(Ordering::SeqCst)
    }
}

impl Source {
    /// The JWKS of `owner` in `file` or at `url`, not read yet.
    pub fn new(owner: String, file: Option<std::path::PathBuf>, url: Option<String>) -> Self {
        Source {
            owner,
            file,
            url,
            keys: Mutex::new(Keys {
                set: JwkSet { keys: Vec::new() },
                reread_at: None,
                read_at: None,
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Reads the JWKS unless it was read less than [`REREAD_EVERY`] ago;
    /// for sources no thread reads again (a client's URL). Blocks.
    /// One caller reads at a time: the first to find it stale marks it
    /// read before it reads, and the others go on with the keys it had.
    pub fn refresh(&self) {
        let claimed = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            let stale = keys.read_at.is_none_or(|at| at.elapsed() >= REREAD_EVERY);
            if stale {
                keys.read_at = Some(Instant::now());
            }
            stale
        };
        if claimed {
            self.read();
        }
    }

    /// Reads the JWKS (the file, or the URL); keeps the keys it had when
    /// that fails.
    fn read(&self) {
        let read = self.fetch().and_then(|text| {
            serde_json::from_str::<JwkSet>(&text).map_err(|e| format!("not a JWKS: {e}"))
        });
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.read_at = Some(Instant::now());
        match read {
            Ok(set) if set == keys.set => {}
            Ok(set) => {
                keys.set = set;
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => log::warn!(
                "the JWKS of {} could not be read ({e}); keeping the keys it had",
                self.owner
            ),
        }
    }

    /// The JWKS's text, from the file or the URL. A URL is fetched within
    /// [`FETCH_TIMEOUT`], at most [`MAX_JWKS_BYTES`] of it.
    fn fetch(&self) -> Result<String, String> {
        match (&self.file, &self.url) {
            (Some(file), _) => std::fs::read_to_string(file).map_err(|e| e.to_string()),
            (None, Some(url)) => {
                // No redirects: an https URL must not lead to plain http or
                // to another host.
                let agent = ureq::AgentBuilder::new().timeout(FETCH_TIMEOUT).redirects(0).build();
                let response = agent.get(url).call().map_err(|e| e.to_string())?;
                let mut text = String::new();
                response
                    .into_reader()
                    .take(MAX_JWKS_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                Ok(text)
            }
            (None, None) => Err("no JWKS source".into()),
        }
    }

    /// The key `kid` names that may verify `alg`, reading the JWKS again
    /// (at most once a minute) when it is not there: the provider may have
    /// rotated.
    pub fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        self.key_where(kid, alg, |_| true)
    }

    /// [`Self::key`], of the keys `accept` takes only.
    pub fn key_where(
        &self,
        kid: &str,
        alg: Algorithm,
        accept: impl Fn(&Jwk) -> bool,
    ) -> Option<DecodingKey> {
        let find = |keys: &Keys| {
            keys.set
                .keys
                .iter()
                .filter(|jwk| jwk.common.key_id.as_deref() == Some(kid))
                .filter(|jwk| accept(jwk))
                .find(|jwk| signs_with(jwk, alg))
                .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
        };
        {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(key) = find(&keys) {
                return Some(key);
            }
            if keys.reread_at.is_some_and(|at| at.elapsed() < REFRESH_AT_MOST_EVERY) {
                return None;
            }
            keys.reread_at = Some(Instant::now());
        }
        self.read();
        find(&self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Issuer {
    /// Verifies `token`'s signature and `exp`, `nbf`, `iss` and `aud` with
    /// this issuer's key and rules; the claims, for the checks every token
    /// gets.
    pub fn verify(
        &self,
        token: &str,
        header: &Header,
        leeway: u64,
    ) -> Result<Map<String, Value>, ApiError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(ApiError::Unauthorized(
                "the token's algorithm is not one its issuer may use",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(ApiError::Unauthorized("the token names no key (`kid`)"))?;
        let key = self.source.key(kid, header.alg).ok_or(ApiError::Unauthorized(
            "the token's key (`kid`) is not one its issuer publishes",
        ))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(super::auth::invalid)?;
        Ok(data.claims)
    }

    /// The role the token's claims carry: the first line of the issuer's
    /// mapping whose group the role claim holds.
    pub fn role(&self, claims: &Map<String, Value>) -> Result<Role, ApiError> {
        let mut at = self.config.role_claim.split('.');
        let first = at.next().and_then(|name| claims.get(name));
        let held = at.fold(first, |value, name| value.and_then(|v| v.get(name)));
        let groups: Vec<&str> = match held {
            Some(Value::String(group)) => vec![group.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        self.config
            .roles
            .iter()
            .find(|line| groups.contains(&line.group.as_str()))
            .and_then(|line| Role::parse(&line.role))
            .ok_or(ApiError::Unauthorized("the token carries no group its issuer maps to a role"))
    }
}

/// The key `kid` names in `set` that may verify `alg`.
pub fn key_in(set: &JwkSet, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| jwk.common.key_id.as_deref() == Some(kid))
        .find(|jwk| signs_with(jwk, alg))
        .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
}

/// Whether `jwk` may verify a signature made with `alg`: a signing key
/// (`use`, when given, is `sig`; `key_ops`, when given, holds `verify`),
/// of the algorithm it names, if it names one.
fn signs_with(jwk: &Jwk, alg: Algorithm) -> bool {
    let common = &jwk.common;
    let for_signing = common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature);
    let verifies =
        common.key_operations.as_ref().is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    let named = common.key_algorithm.is_none_or(|named| named.to_string() == format!("{alg:?}"));
    for_signing && verifies && named
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::GroupRole;

    use super::*;

    fn issuer(role_claim: &str) -> Issuer {
        let config = TrustedIssuer {
            issuer: "https://idp.example.org".into(),
            audience: "infusion-api".into(),
            jwks_file: Some("tests/fixtures/idp/jwks.json".into()),
            jwks_url: None,
            algorithms: vec!["RS256".into()],
            role_claim: role_claim.into(),
            roles: vec![
                GroupRole { group: "clinic-admin".into(), role: "admin".into() },
                GroupRole { group: "clinic-desk".into(), role: "scheduler".into() },
            ],
        };
        Issuer::new(&config)
    }

    #[test]
    fn the_role_is_the_first_mapped_group_the_claim_holds() {
        let nested = issuer("realm_access.roles");
        let flat = issuer("role");
        // (issuer, claims, role)
        let table = [
            (
                &nested,
                json!({"realm_access": {"roles": ["offline_access", "clinic-desk"]}}),
                Some(Role::Scheduler),
            ),
            // Both mapped: the mapping's order decides, not the token's.
            (
                &nested,
                json!({"realm_access": {"roles": ["clinic-desk", "clinic-admin"]}}),
                Some(Role::Admin),
            ),
            (&nested, json!({"realm_access": {"roles": ["offline_access"]}}), None),
            (&nested, json!({"realm_access": "clinic-admin"}), None),
            (&nested, json!({"roles": ["clinic-admin"]}), None),
            (&flat, json!({"role": "clinic-admin"}), Some(Role::Admin)),
            (&flat, json!({"role": ["clinic-desk"]}), Some(Role::Scheduler)),
            (&flat, json!({"role": "admin"}), None),
            (&flat, json!({"role": 7}), None),
        ];
        for (issuer, claims, role) in table {
            let claims = claims.as_object().unwrap().clone();
            assert_eq!(issuer.role(&claims).ok(), role, "{claims:?}");
        }
    }

    #[test]
    fn the_keys_are_read_at_start_and_an_unknown_kid_is_none() {
        let idp = issuer("role");
        assert!(idp.source.key("rsa-1", Algorithm::RS256).is_some());
        assert!(idp.source.key("ec-1", Algorithm::ES256).is_some());
        // Unknown: read again once, then not before a minute has passed.
        assert!(idp.source.key("rsa-2", Algorithm::RS256).is_none());
        let reread_at = idp.source.keys.lock().unwrap().reread_at;
        assert!(reread_at.is_some_and(|at| at.elapsed() < REFRESH_AT_MOST_EVERY));
    }
}
