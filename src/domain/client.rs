//! Backend clients (SMART Backend Services): who may register one, with
//! which keys and scopes, and what a client's signed assertion must say to
//! be exchanged for an access token ("Backend clients" in `docs/DOMAIN.md`).

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::access::Role;
use super::scopes::Scopes;
use super::FieldError;

/// The roles a client may act as: never `admin` (a leaked client key must
/// not administer the clinic), never `patient` (a patient's token names the
/// patient).
pub const CLIENT_ROLES: &[Role] = &[Role::Integration, Role::Scheduler, Role::Clinician];

/// The algorithms a client signs its assertions with: SMART's two.
pub const ASSERTION_ALGORITHMS: &[Algorithm] = &[Algorithm::RS384, Algorithm::ES384];

/// How far ahead an assertion's `exp` may be, in seconds (SMART: five minutes).
pub const ASSERTION_MAX_SECONDS: u64 = 300;

/// The most keys a client's JWKS may hold.
pub const MAX_KEYS: usize = 10;

/// The longest `jti` kept.
pub const MAX_JTI_LENGTH: usize = 255;

/// The shortest RSA modulus taken, in bits (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// A registered backend client.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub keys: ClientKeys,
    /// What its tokens may ever be scoped to.
    pub scopes: Scopes,
    /// When an admin disabled it: it gets no token while disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a client's public keys are.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientKeys {
    /// Registered with the client.
    Jwks(JwkSet),
    /// Published by the client at an https URL, read when it asks for a token.
    Url(String),
}

/// Whether a client may act as `role`.
pub fn client_role(role: Role) -> Result<Role, FieldError> {
    if CLIENT_ROLES.contains(&role) {
        Ok(role)
    } else {
        Err(FieldError::new(
            "role",
            "a client acts as `integration`, `scheduler` or `clinician`; never `admin` or `patient`",
        ))
    }
}

/// Checks a client's registered scopes: at least one, each a SMART v2
/// system scope.
pub fn registered_scopes(items: &[String]) -> Result<Scopes, Vec<FieldError>> {
    if items.is_empty() {
        return Err(vec![FieldError::new("scopes", "name at least one scope")]);
    }
    Scopes::parse_each(items.iter().map(String::as_str)).map_err(|errors| {
        errors.into_iter().map(|message| FieldError::new("scopes", message)).collect()
    })
}

/// A client's public keys, checked: a JWKS of 1 to [`MAX_KEYS`] public
/// keys, each with a `kid` of its own, each able to verify RS384 (RSA, at
/// least 2048 bits) or ES384 (EC P-384). The set as it is kept, or each
/// problem, under `field`.
pub fn public_jwks(value: &Value, field: &str) -> Result<JwkSet, Vec<FieldError>> {
    let refuse = |message: String| vec![FieldError::new(field, message)];
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse("must be a JWKS: an object with an array `keys`".into()))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(refuse(format!("must hold 1 to {MAX_KEYS} keys")));
    }
    let mut errors = Vec::new();
    let mut kids: Vec<&str> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = format!("{field}.keys[{i}]");
        let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .into_iter()
            .find(|member| key.get(member).is_some());
        if let Some(member) = private {
            errors.push(FieldError::new(
                &at,
                format!("holds private key material (`{member}`): register the public key only"),
            ));
            continue;
        }
        let kid = key.get("kid").and_then(Value::as_str).filter(|kid| !kid.trim().is_empty());
        match kid {
            None => errors.push(FieldError::new(&at, "needs a `kid`: assertions name their key")),
            Some(kid) if kids.contains(&kid) => {
                errors.push(FieldError::new(&at, format!("repeats the `kid` `{kid}`")))
            }
            Some(kid) => kids.push(kid),
        }
        match serde_json::from_value::<Jwk>(key.clone()) {
            Err(e) => errors.push(FieldError::new(&at, format!("is not a JWK: {e}"))),
            Ok(jwk) => {
                if let Err(message) = verifies_assertions(&jwk) {
                    errors.push(FieldError::new(&at, message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    serde_json::from_value(value.clone()).map_err(|e| refuse(format!("is not a JWKS: {e}")))
}

/// Whether `jwk` can verify an assertion: RS384 with an RSA key of at least
/// [`MIN_RSA_BITS`], or ES384 with a P-384 key; a signing key (`use`), of
/// that algorithm if it names one.
pub fn verifies_assertions(jwk: &Jwk) -> Result<(), String> {
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            if modulus_bits(&rsa.n) < MIN_RSA_BITS {
                return Err(format!("is an RSA key shorter than {MIN_RSA_BITS} bits"));
            }
            Algorithm::RS384
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => {
            Algorithm::ES384
        }
        _ => return Err("must be an RSA key (RS384) or an EC P-384 key (ES384)".into()),
    };
    if let Some(named) = jwk.common.key_algorithm {
        let matches = matches!(
            (named, algorithm),
            (KeyAlgorithm::RS384, Algorithm::RS384) | (KeyAlgorithm::ES384, Algorithm::ES384)
        );
        if !matches {
            return Err(format!("names `alg` {named}, which is not {algorithm:?} for this key"));
        }
    }
    let signing = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature);
    if !signing {
        return Err("is not a signing key (`use` is not `sig`)".into());
    }
    DecodingKey::from_jwk(jwk).map(|_| ()).map_err(|e| format!("is not a usable key: {e}"))
}

/// A client's keys from what a request sends: a JWKS or an https URL,
/// exactly one of them.
pub fn keys(jwks: Option<&Value>, url: Option<&str>) -> Result<ClientKeys, Vec<FieldError>> {
    match (jwks, url) {
        (Some(set), None) => public_jwks(set, "jwks").map(ClientKeys::Jwks),
        (None, Some(url)) => jwks_url(url)
            .map(|()| ClientKeys::Url(url.to_owned()))
            .map_err(|e| vec![FieldError::new("jwks_url", e)]),
        _ => Err(vec![FieldError::new(
            "jwks",
            "send exactly one of `jwks` (the public keys) and `jwks_url` (where they are)",
        )]),
    }
}

/// What changing a client may change.
#[derive(Clone, Debug, Default)]
pub struct ClientChange {
    pub name: Option<String>,
    pub keys: Option<ClientKeys>,
    pub scopes: Option<Scopes>,
    /// `Some(true)` disables, `Some(false)` enables again.
    pub disabled: Option<bool>,
}

/// `client` with `change` applied at `now`: disabling a disabled client
/// keeps when it was disabled; enabling clears it.
pub fn change(mut client: Client, change: ClientChange, now: DateTime<Utc>) -> Client {
    if let Some(name) = change.name {
        client.name = name;
    }
    if let Some(keys) = change.keys {
        client.keys = keys;
    }
    if let Some(scopes) = change.scopes {
        client.scopes = scopes;
    }
    match change.disabled {
        Some(true) => client.disabled_at = client.disabled_at.or(Some(now)),
        Some(false) => client.disabled_at = None,
        None => {}
    }
    client
}

/// The bits of an RSA modulus (base64url), leading zeros not counted; 0
/// when it is not base64url.
fn modulus_bits(n: &str) -> usize {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .unwrap_or_default();
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => (bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize),
        None => 0,
    }
}

/// Why an assertion is refused; each is `invalid_client` (RFC 7523 §3.2).
pub type Refused = &'static str;

/// What a verified assertion says that the server keeps: its `jti` (never
/// taken twice) and its `exp` (until when the `jti` is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub jti: String,
    pub expires_at: u64,
    /// Until when its `jti` must be kept: the last second it could pass.
    pub kept_until: u64,
}

/// The rules an assertion's claims follow beyond its signature, `iss`,
/// `sub` and `aud`, which the signature's check verified: not expired, and
/// `exp` at most [`ASSERTION_MAX_SECONDS`] past `now` (each with `leeway`),
/// an `iat` not in the future, and a `jti`. The server's one clock decides
/// `exp` here, the same that dates the `jti` kept until `exp` + `leeway`
/// ([`Assertion::kept_until`]): no replay can pass in between.
pub fn check_assertion(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
) -> Result<Assertion, Refused> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or("the assertion's `exp` must be whole seconds")?;
    if exp.saturating_add(leeway) < now {
        return Err("the assertion has expired");
    }
    if exp > now + ASSERTION_MAX_SECONDS + leeway {
        return Err("the assertion's `exp` is more than 5 minutes ahead");
    }
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_u64().ok_or("the assertion's `iat` must be whole seconds")?;
        if iat > now + leeway {
            return Err("the assertion's `iat` is in the future");
        }
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.trim().is_empty())
        .ok_or("the assertion has no `jti`")?;
    if jti.len() > MAX_JTI_LENGTH {
        return Err("the assertion's `jti` is longer than 255 characters");
    }
    Ok(Assertion { jti: jti.to_owned(), expires_at: exp, kept_until: exp.saturating_add(leeway) })
}

/// Whether a client may be given a token now: an enabled one only.
pub fn may_get_token(disabled: bool) -> Result<(), Refused> {
    if disabled {
        Err("the client is disabled")
    } else {
        Ok(())
    }
}

/// Whether `url` may serve a client's or an identity provider's keys:
/// `https`, or plain `http` to a loopback address only (a provider on the
/// same host, or a test's), never with a user name.
pub fn jwks_url(url: &str) -> Result<(), String> {
    let refused = || {
        Err(format!(
            "`{url}` must be an https URL (http only to a loopback address), without a user name"
        ))
    };
    let Some(parts) = super::values::url_parts(url).filter(|p| p.has_plain_host()) else {
        return refused();
    };
    let loopback = matches!(parts.host, "127.0.0.1" | "localhost" | "::1");
    match parts.scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => refused(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A P-384 public key (generated with `openssl ecparam -name secp384r1`).
    fn ec384() -> Value {
        json!({
            "kty": "EC", "crv": "P-384", "kid": "ec-384",
            "x": "bFDVNghke4qALhPqe5QtA7sc8Fq3WbZJOyZxGHdGdZx_7cNF6bjhLQKfnpvEHehF",
            "y": "Vpd4mfvy2s61i2Xb4zog86X2gLXZRHea59b_GZG5c346xFdgDg0pZKTUqZlg4Kh_"
        })
    }

    fn rsa(bits: usize) -> Value {
        // A modulus of `bits` bits (its top bit set), as base64url: its
        // value does not matter to the checks before the key is built.
        use base64::Engine;
        let mut modulus = vec![0xff; bits / 8];
        modulus.insert(0, 0);
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(modulus);
        json!({"kty": "RSA", "kid": format!("rsa-{bits}"), "n": n, "e": "AQAB"})
    }

    #[test]
    fn a_moduluss_bits_do_not_count_leading_zeros() {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // (modulus, bits)
        let table: [(Vec<u8>, usize); 4] = [
            (vec![0xff; 256], 2048),
            ([vec![0; 200], vec![0xff; 56]].concat(), 448),
            ([vec![0x01], vec![0xff; 255]].concat(), 2041),
            (vec![0; 300], 0),
        ];
        for (modulus, bits) in table {
            assert_eq!(modulus_bits(&encode(&modulus)), bits);
        }
        assert_eq!(modulus_bits("not base64!"), 0);
    }

    #[test]
    fn clients_act_as_integration_scheduler_or_clinician_only() {
        for role in Role::ALL {
            let allowed = !matches!(role, Role::Admin | Role::Patient);
            assert_eq!(client_role(role).is_ok(), allowed, "{role:?}");
        }
    }

    #[test]
    fn a_jwks_holds_public_signing_keys_for_rs384_or_es384_each_with_its_kid() {
        let with = |changes: Value| {
            let mut key = ec384();
            for (k, v) in changes.as_object().cloned().unwrap_or_default() {
                key[k] = v;
            }
            json!({"keys": [key]})
        };
        // (jwks, accepted)
        let table = [
            (json!({"keys": [ec384()]}), true),
            (with(json!({"alg": "ES384", "use": "sig"})), true),
            (json!({"keys": [rsa(2048)]}), true),
            (json!({"keys": [rsa(1024)]}), false),
            (with(json!({"alg": "ES256"})), false),
            (with(json!({"use": "enc"})), false),
            (with(json!({"crv": "P-256"})), false),
            (with(json!({"d": "private"})), false),
            (with(json!({"kid": ""})), false),
            (json!({"keys": [ec384(), ec384()]}), false),
            (json!({"keys": []}), false),
            (json!({"keys": {}}), false),
            (json!([ec384()]), false),
            (json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}), false),
        ];
        for (jwks, accepted) in table {
            let checked = public_jwks(&jwks, "jwks");
            assert_eq!(checked.is_ok(), accepted, "{jwks} {checked:?}");
        }
    }

    #[test]
    fn an_assertion_expires_within_five_minutes_has_a_jti_and_was_not_issued_later() {
        let now = 1_800_000_000;
        let claims = |value: Value| value.as_object().cloned().unwrap_or_default();
        // (claims, refused)
        let table = [
            (json!({"exp": now + 300, "jti": "a"}), None),
            (json!({"exp": now - 30, "jti": "a"}), None),
            (json!({"exp": now - 31, "jti": "a"}), Some("expired")),
            (json!({"exp": now + 330, "jti": "a", "iat": now}), None),
            (json!({"exp": now + 331, "jti": "a"}), Some("ahead")),
            (json!({"exp": now + 60, "jti": "a", "iat": now + 31}), Some("future")),
            (json!({"exp": now + 60}), Some("jti")),
            (json!({"exp": now + 60, "jti": " "}), Some("jti")),
            (json!({"exp": now + 60, "jti": "x".repeat(256)}), Some("255")),
            (json!({"exp": "soon", "jti": "a"}), Some("whole seconds")),
        ];
        for (value, refused) in table {
            let checked = check_assertion(&claims(value.clone()), now, 30);
            match refused {
                None => assert!(checked.is_ok(), "{value} {checked:?}"),
                Some(why) => assert!(checked.is_err_and(|e| e.contains(why)), "{value}"),
            }
        }
        let kept = check_assertion(&claims(json!({"exp": now + 60, "jti": "j-1"})), now, 30);
        let expected = Assertion { jti: "j-1".into(), expires_at: now + 60, kept_until: now + 90 };
        assert_eq!(kept, Ok(expected));
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_disabling_twice_keeps_the_first_time() {
        let at = |h: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 29, h, 0, 0).unwrap();
        let client = Client {
            id: "c".into(),
            name: "EHR".into(),
            role: Role::Integration,
            keys: ClientKeys::Url("https://ehr.example/jwks".into()),
            scopes: Scopes::parse("system/Patient.rs").unwrap(),
            disabled_at: None,
            created_at: at(8),
            updated_at: at(8),
        };
        let disabled = change(
            client.clone(),
            ClientChange { disabled: Some(true), ..Default::default() },
            at(9),
        );
        assert_eq!(disabled.disabled_at, Some(at(9)));
        assert_eq!(disabled.name, "EHR");
        let again =
            change(disabled, ClientChange { disabled: Some(true), ..Default::default() }, at(10));
        assert_eq!(again.disabled_at, Some(at(9)));
        let renamed = change(
            again,
            ClientChange {
                name: Some("EHR 2".into()),
                disabled: Some(false),
                ..Default::default()
            },
            at(11),
        );
        assert_eq!((renamed.name.as_str(), renamed.disabled_at), ("EHR 2", None));
        assert_eq!(renamed.scopes, client.scopes);
    }

    #[test]
    fn keys_are_a_jwks_or_an_https_url_never_both_nor_neither() {
        let jwks = json!({"keys": [ec384()]});
        assert!(keys(Some(&jwks), None).is_ok());
        assert!(keys(None, Some("https://ehr.example/jwks.json")).is_ok());
        assert!(keys(None, Some("http://ehr.example/jwks.json")).is_err());
        assert!(keys(Some(&jwks), Some("https://ehr.example/jwks.json")).is_err());
        assert!(keys(None, None).is_err());
    }

    #[test]
    fn only_an_enabled_client_gets_a_token_and_scopes_are_checked() {
        assert!(may_get_token(false).is_ok());
        assert!(may_get_token(true).is_err());
        assert!(registered_scopes(&[]).is_err());
        assert!(registered_scopes(&["system/Patient.rs".into()]).is_ok());
        let errors = registered_scopes(&["openid".into(), "system/X.r".into()]).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
