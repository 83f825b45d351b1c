//! The API's own signing key: access tokens for backend clients are ES256
//! JWTs signed with it (`SIGNING_KEY_FILE`), verified like any issuer's
//! with the public keys at `/.well-known/jwks.json`. Keys retired by a
//! rotation (`RETIRED_SIGNING_KEY_FILES`) keep verifying, never signing.

use std::io::Write;
use std::path::Path;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use crate::config::Settings;

/// The algorithm of our access tokens.
pub const ALGORITHM: Algorithm = Algorithm::ES256;

/// The media type of our access tokens' `typ` (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The signing key and every key that verifies.
pub struct Signer {
    /// The current key and its `kid`.
    signing: (EncodingKey, String),
    /// The current and retired keys, by `kid`.
    verifying: Vec<(String, DecodingKey)>,
    /// Their public halves, as `/.well-known/jwks.json` serves them.
    published: JwkSet,
}

impl Signer {
    /// The keys `settings` name, the current one made first in development
    /// when its file does not exist; `None` when no key is set (production
    /// without `SIGNING_KEY_FILE`: no access tokens are issued).
    pub fn load(settings: &Settings) -> Result<Option<Signer>, String> {
        let Some(file) = &settings.signing_key else {
            return Ok(None);
        };
        if file.generate && !file.path.exists() {
            generate(&file.path)?;
        }
        let (encoding, current) = read(&file.path, "SIGNING_KEY_FILE")?;
        let mut verifying = vec![(kid(&current)?, DecodingKey::from_jwk(&current).map_err(bad)?)];
        let mut published = vec![current.clone()];
        for path in &settings.retired_signing_keys {
            let (_, retired) = read(path, "RETIRED_SIGNING_KEY_FILES")?;
            let id = kid(&retired)?;
            if verifying.iter().any(|(known, _)| *known == id) {
                continue;
            }
            verifying.push((id, DecodingKey::from_jwk(&retired).map_err(bad)?));
            published.push(retired);
        }
        let signing = (encoding, kid(&current)?);
        Ok(Some(Signer { signing, verifying, published: JwkSet { keys: published } }))
    }

    /// `claims` signed with the current key, its `kid` in the header.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let (key, kid) = &self.signing;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        jsonwebtoken::encode(&header, claims, key)
    }

    /// The key `kid` names, current or retired.
    pub fn key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.iter().find(|(id, _)| id == kid).map(|(_, key)| key)
    }

    /// The public keys, current first.
    pub fn published(&self) -> &JwkSet {
        &self.published
    }
}

/// The private key in `path` (PKCS#8 PEM, EC P-256) and its public JWK,
/// checked by signing and verifying a probe.
fn read(path: &Path, setting: &str) -> Result<(EncodingKey, Jwk), String> {
    let at = || format!("{setting} {}", path.display());
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", at()))?;
    let encoding = EncodingKey::from_ec_pem(&pem).map_err(|e| {
        format!("{}: not an EC private key in PKCS#8 PEM ({e}); make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`", at())
    })?;
    let mut jwk = Jwk::from_encoding_key(&encoding, ALGORITHM)
        .map_err(|e| format!("{}: not a P-256 key ({e})", at()))?;
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
    jwk.common.key_id = Some(kid(&jwk)?);
    // A key of another curve is read without complaint, and then signs
    // nothing our own check verifies.
    let probe = jsonwebtoken::encode(&Header::new(ALGORITHM), &serde_json::json!({}), &encoding)
        .map_err(|e| format!("{}: cannot sign ES256 ({e})", at()))?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
    let mut validation = jsonwebtoken::Validation::new(ALGORITHM);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(&probe, &decoding, &validation)
        .map_err(|_| format!("{}: not a P-256 key (ES256 needs one)", at()))?;
    Ok((encoding, jwk))
}

/// The key's `kid`: its JWK thumbprint (RFC 7638), the same in every
/// process that reads the same key.
fn kid(jwk: &Jwk) -> Result<String, String> {
    let mut bare = jwk.clone();
    bare.common = Default::default();
    bare.thumbprint(ThumbprintHash::SHA256).map_err(bad)
}

fn bad(e: jsonwebtoken::errors::Error) -> String {
    format!("the signing key cannot be used: {e}")
}

/// Makes a new P-256 key in `path`, readable by its owner only. Another
/// process that made it first wins: its key is the one read.
fn generate(path: &Path) -> Result<(), String> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("cannot make a key: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            log::info!("made a development signing key in {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKeyFile;

    fn settings(current: &str, retired: &[&str]) -> Settings {
        let mut settings = Settings::from_lookup(|key| {
            (key == "JWT_SECRET").then(|| "k7Qw9zR2pL4xV8nB1mT6yH3cF5jD0sGe".to_owned())
        })
        .expect("settings");
        settings.signing_key = Some(SigningKeyFile { path: current.into(), generate: false });
        settings.retired_signing_keys = retired.iter().map(Into::into).collect();
        settings
    }

    #[test]
    fn a_retired_key_verifies_and_is_published_but_the_current_one_signs() {
        let signer = Signer::load(&settings(
            "tests/fixtures/signing/es256-2.pem",
            &["tests/fixtures/signing/es256-1.pem"],
        ))
        .expect("keys")
        .expect("a signer");
        let kids: Vec<_> =
            signer.published().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.iter().all(|kid| signer.key(kid).is_some()));
        let token = signer.sign(&serde_json::json!({"sub": "c"})).expect("signed");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(kids[0].as_str()));
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYPE));
        // The thumbprint of RFC 7638: 43 base64url characters of SHA-256.
        assert_eq!(kids[0].len(), 43);
    }

    #[test]
    fn a_key_that_is_not_p256_in_pkcs8_is_refused_with_how_to_make_one() {
        for path in ["tests/fixtures/idp/rsa-1.pem", "tests/fixtures/signing/es384.pem"] {
            let refused = Signer::load(&settings(path, &[])).err().unwrap_or_default();
            assert!(refused.contains("SIGNING_KEY_FILE"), "{path}: {refused}");
        }
        assert!(Signer::load(&settings("no/such/key.pem", &[])).is_err());
    }

    #[test]
    fn development_makes_a_key_once_and_reads_it_after() {
        let dir = std::env::temp_dir().join(format!("signing-{}", uuid::Uuid::now_v7()));
        let path = dir.join("signing-key.pem");
        let mut s = settings("unused", &[]);
        s.signing_key = Some(SigningKeyFile { path: path.clone(), generate: true });
        let first = Signer::load(&s).expect("made").expect("signer");
        let second = Signer::load(&s).expect("read").expect("signer");
        assert_eq!(first.published(), second.published());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
