//! Conditional requests (RFC 9110 §8.8.3, §13). Every successful `/v1`
//! answer with a JSON body carries a strong `ETag`: an HMAC of the body
//! under a key of the server's (so a tag says nothing of a body to whoever
//! sees only the tag), which changes with every change of what the caller
//! sees; two callers who see the same resource differently (an integration
//! sees no scores) get different tags. A `GET` whose `If-None-Match` names the current tag
//! is answered 304 without a body ([`etags`]). A write that names the
//! version it read in `If-Match` is refused with 412 when the resource has
//! changed since: the handler compares, inside the write's transaction with
//! the resource held, the tag of the resource as the caller would read it
//! now ([`Precondition`]).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::StoreError;

use super::State;

/// The key of the tags: derived from `secret` (the server's JWT secret),
/// so that every process of a deployment tags alike.
pub fn etag_key(secret: &str) -> [u8; 32] {
    Sha256::new().chain_update(b"infusion-api ETag key\0").chain_update(secret).finalize().into()
}

/// The strong entity tag of a representation: `"` + 32 hex digits of the
/// HMAC-SHA-256 of its bytes under `key` + `"`.
pub fn etag_of(key: &[u8; 32], body: &[u8]) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(key).map(|mac| mac.chain_update(body).finalize());
    let digest = match mac {
        Ok(mac) => mac.into_bytes().to_vec(),
        // A 32-byte key is always taken; the plain hash would do as well.
        Err(_) => Sha256::digest(body).to_vec(),
    };
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The tag `value` has when it is sent as JSON, as a handler sends it.
pub fn etag_of_json(key: &[u8; 32], value: &impl Serialize) -> Result<String, StoreError> {
    let body = serde_json::to_vec(value).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(etag_of(key, &body))
}

/// The entity tags a condition field lists, or `*` (any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tags {
    Any,
    /// Each as sent, with its `W/` prefix if weak.
    List(Vec<String>),
}

impl Tags {
    /// The condition fields `name` of `headers`, all lines together; `None`
    /// when absent. A field that does not parse is kept as a list of what
    /// it says, which then matches no tag: a write under a condition it
    /// cannot read does not happen.
    pub fn from_headers(headers: &HeaderMap, name: &header::HeaderName) -> Option<Tags> {
        let mut tags = Vec::new();
        let mut present = false;
        for value in headers.get_all(name) {
            present = true;
            let Ok(text) = value.to_str() else {
                tags.push(String::new());
                continue;
            };
            for item in items(text) {
                if item == "*" {
                    return Some(Tags::Any);
                }
                tags.push(item);
            }
        }
        present.then_some(Tags::List(tags))
    }

    /// `If-Match`: strong comparison (RFC 9110 §13.1.1); a weak tag never matches.
    pub fn match_strong(&self, current: &str) -> bool {
        match self {
            Tags::Any => true,
            Tags::List(tags) => tags.iter().any(|t| !t.starts_with("W/") && t == current),
        }
    }

    /// `If-None-Match`: weak comparison (RFC 9110 §13.1.2).
    pub fn match_weak(&self, current: &str) -> bool {
        let opaque = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_owned();
        match self {
            Tags::Any => true,
            Tags::List(tags) => tags.iter().any(|t| opaque(t) == opaque(current)),
        }
    }
}

/// The items of a condition field: entity tags (a comma inside the quotes
/// is the tag's), and, as they are, whatever else stands between commas.
fn items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return items;
        }
        let (weak, tag) = rest.strip_prefix("W/").map_or(("", rest), |tag| ("W/", tag));
        if let Some((opaque, after)) = tag.strip_prefix('"').and_then(|t| t.split_once('"')) {
            items.push(format!("{weak}\"{opaque}\""));
            rest = after;
            continue;
        }
        let end = rest.find(',').unwrap_or(rest.len());
        items.push(rest[..end].trim().to_owned());
        rest = &rest[end..];
    }
}

/// A write's `If-Match` and `If-None-Match`, checked by the handler against
/// the resource it holds.
#[derive(Clone, Debug, Default)]
pub struct Precondition {
    if_match: Option<Tags>,
    if_none_match: Option<Tags>,
    key: [u8; 32],
}

impl Precondition {
    pub fn new(if_match: Option<Tags>, if_none_match: Option<Tags>, key: [u8; 32]) -> Self {
        Self { if_match, if_none_match, key }
    }

    /// `Ok` when the request's conditions hold for `current`, the resource
    /// as the caller would read it now (built only when a condition was
    /// sent): `If-Match` names its tag (or is `*`, or absent), and
    /// `If-None-Match` does not (RFC 9110 §13.1.1, §13.1.2; on a write, a
    /// match is 412). Else [`StoreError::PreconditionFailed`].
    pub fn check<S: Serialize>(&self, current: impl FnOnce() -> S) -> Result<(), StoreError> {
        if self.if_match.is_none() && self.if_none_match.is_none() {
            return Ok(());
        }
        let tag = etag_of_json(&self.key, &current())?;
        let matched = self.if_match.as_ref().is_none_or(|tags| tags.match_strong(&tag));
        let none_matched = self.if_none_match.as_ref().is_none_or(|tags| !tags.match_weak(&tag));
        if matched && none_matched {
            Ok(())
        } else {
            Err(StoreError::PreconditionFailed)
        }
    }
}

/// The layer: see the module's documentation.
pub async fn etags(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = req.app_data::<State>().map(|state| state.etag_key);
    let tagged = super::serves_resources(req.path());
    let reads = req.method() == Method::GET;
    let if_none_match =
        if reads { Tags::from_headers(req.headers(), &header::IF_NONE_MATCH) } else { None };
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(key) = key else {
        return Ok(response);
    };
    if !tagged || !response.status().is_success() || response.status() == StatusCode::NO_CONTENT {
        return Ok(response);
    }
    let (req, response) = response.into_parts();
    let (mut head, body) = response.into_parts();
    let body = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        // A streamed body (none today) goes out untagged.
        Err(body) => return Ok(ServiceResponse::new(req, head.set_body(body))),
    };
    let tag = etag_of(&key, &body);
    let Ok(value) = HeaderValue::from_str(&tag) else {
        return Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))));
    };
    if if_none_match.is_some_and(|tags| tags.match_weak(&tag)) {
        // RFC 9110 §15.4.5: the fields a 200 would have sent that describe
        // it (`ETag`, `Cache-Control`, `Vary`…), and no content.
        let mut not_modified = HttpResponse::NotModified();
        for (name, value) in head.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                not_modified.append_header((name.clone(), value.clone()));
            }
        }
        let not_modified = not_modified.insert_header((header::ETAG, value)).finish();
        return Ok(ServiceResponse::new(req, not_modified));
    }
    head.headers_mut().insert(header::ETAG, value);
    Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderName;

    use super::*;

    fn tags(lines: &[&str]) -> Option<Tags> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(header::IF_MATCH, HeaderValue::from_str(line).unwrap());
        }
        Tags::from_headers(&headers, &header::IF_MATCH)
    }

    #[test]
    fn condition_fields_parse_into_tags() {
        assert_eq!(tags(&[]), None);
        assert_eq!(tags(&["*"]), Some(Tags::Any));
        assert_eq!(
            tags(&["\"a\", W/\"b\""]),
            Some(Tags::List(vec!["\"a\"".into(), "W/\"b\"".into()]))
        );
        assert_eq!(
            tags(&["\"a\"", "\"b\""]),
            Some(Tags::List(vec!["\"a\"".into(), "\"b\"".into()]))
        );
        assert_eq!(tags(&[""]), Some(Tags::List(vec![])));
        // A comma inside a tag is the tag's.
        assert_eq!(
            tags(&["\"a,b\" ,W/\"c\""]),
            Some(Tags::List(vec!["\"a,b\"".into(), "W/\"c\"".into()]))
        );
        assert_eq!(tags(&["x, \"a\""]), Some(Tags::List(vec!["x".into(), "\"a\"".into()])));
        let other = HeaderName::from_static("if-none-match");
        assert_eq!(Tags::from_headers(&HeaderMap::new(), &other), None);
    }

    #[test]
    fn if_match_compares_strongly_and_if_none_match_weakly() {
        let current = "\"0123\"";
        // (field, If-Match matches, If-None-Match matches)
        #[rustfmt::skip]
        let table = [
            ("\"0123\"", true, true),
            ("W/\"0123\"", false, true),
            ("\"4567\"", false, false),
            ("\"4567\", \"0123\"", true, true),
            ("*", true, true),
            ("0123", false, false),     // unquoted: not a tag
            ("", false, false),
        ];
        for (field, strong, weak) in table {
            let tags = tags(&[field]).unwrap();
            assert_eq!(tags.match_strong(current), strong, "If-Match: {field}");
            assert_eq!(tags.match_weak(current), weak, "If-None-Match: {field}");
        }
    }

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_tag_is_strong_quoted_keyed_and_changes_with_the_body() {
        let tag = etag_of(&KEY, b"{\"a\":1}");
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(tag, etag_of(&KEY, b"{\"a\":1}"));
        assert_ne!(tag, etag_of(&KEY, b"{\"a\":2}"));
        assert_ne!(tag, etag_of(&[8; 32], b"{\"a\":1}"));
        assert_eq!(etag_of_json(&KEY, &serde_json::json!({"a": 1})).unwrap(), tag);
        assert_eq!(etag_key("s"), etag_key("s"));
        assert_ne!(etag_key("s"), etag_key("t"));
    }

    #[test]
    fn a_precondition_holds_when_if_match_names_the_current_tag_and_if_none_match_does_not() {
        let current = serde_json::json!({"id": "p1", "updated_at": "t2"});
        let tag = etag_of_json(&KEY, &current).unwrap();
        let list = |tags: &[&str]| Some(Tags::List(tags.iter().map(|t| t.to_string()).collect()));
        let old = etag_of(&KEY, b"old");
        // (If-Match, If-None-Match, holds)
        let table = [
            (None, None, true),
            (list(&[&tag]), None, true),
            (list(&[&old]), None, false),
            (Some(Tags::Any), None, true),
            (None, list(&[&old]), true),
            (None, list(&[&tag]), false),
            (None, Some(Tags::Any), false),
            (list(&[&tag]), list(&[&tag]), false),
        ];
        for (if_match, if_none_match, holds) in table {
            let condition = Precondition::new(if_match.clone(), if_none_match.clone(), KEY);
            let checked = condition.check(|| current.clone());
            assert_eq!(checked.is_ok(), holds, "{if_match:?} {if_none_match:?}");
        }
    }
}
