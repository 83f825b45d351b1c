//! Request extractors whose every failure is a problem document: JSON bodies
//! (content type, size, syntax, unknown or mistyped fields) and query strings.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::domain::FieldError;

use super::error::ApiError;
use super::AppState;

/// A JSON request body, deserialized strictly. Syntax errors answer 400
/// `malformed_request`; well-formed JSON of the wrong shape (missing,
/// unknown or mistyped fields) answers 422 `validation_failed` naming the
/// field's path. A body that has not arrived whole within `BODY_TIMEOUT_MS`
/// answers 408 `request_timeout`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = whole_body(req, payload, is_json);
        Box::pin(async move {
            let body = body.await?;
            // PostgreSQL text cannot hold NUL; refuse it here, for every field.
            if body.windows(6).any(|w| w == b"\\u0000") {
                return Err(ApiError::field("body", "strings must not contain NUL characters"));
            }
            parse_json(&body).map(Json)
        })
    }
}

/// An `application/x-www-form-urlencoded` body (the OAuth token request):
/// its name-value pairs in order, repeats kept for the handler to refuse.
#[derive(Debug)]
pub struct Form(pub Vec<(String, String)>);

impl FromRequest for Form {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = whole_body(req, payload, is_form);
        Box::pin(async move {
            let body = body.await?;
            if std::str::from_utf8(&body).is_err() {
                return Err(ApiError::Malformed("the form is not UTF-8".into()));
            }
            let pairs = form_urlencoded::parse(&body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            Ok(Form(pairs))
        })
    }
}

/// The whole body of a request whose `Content-Type` `accepts` takes, read
/// within `BODY_TIMEOUT_MS` and `MAX_BODY_BYTES`.
fn whole_body(
    req: &HttpRequest,
    payload: &mut Payload,
    accepts: fn(&str) -> bool,
) -> impl Future<Output = Result<web::BytesMut, ApiError>> {
    {
        let (limit, timeout) = req
            .app_data::<web::Data<AppState>>()
            .map(|s| (s.settings.max_body_bytes, s.settings.body_timeout))
            .unwrap_or((64 * 1024, Duration::from_secs(10)));
        let accepted = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts);
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        async move {
            if !accepted {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared_length.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            // The whole body, not each chunk: one byte a second would
            // otherwise hold the connection and this task for as long as
            // the client likes (actix bounds only the request head).
            match tokio::time::timeout(timeout, read_body(&mut payload, limit)).await {
                Ok(body) => body,
                Err(_elapsed) => Err(ApiError::RequestTimeout(timeout)),
            }
        }
    }
}

/// Reads the whole body, refusing it once it is longer than `limit` bytes.
async fn read_body(payload: &mut Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::Malformed("the request body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a `Content-Type` is `application/json`, with at most a UTF-8
/// `charset` (RFC 8259 §8.1), compared case-insensitively. Any other type,
/// `+json` suffixes included, and any other parameter is refused: the body
/// is read as UTF-8 JSON and nothing else.
fn is_json(content_type: &str) -> bool {
    is_utf8_of(content_type, "application/json")
}

/// Whether `content_type` is `essence`, with at most a UTF-8 `charset`,
/// compared case-insensitively.
fn is_utf8_of(content_type: &str, essence: &str) -> bool {
    let mut parts = content_type.split(';');
    parts.next().unwrap_or_default().trim().eq_ignore_ascii_case(essence)
        && parts.map(str::trim).filter(|p| !p.is_empty()).all(|parameter| {
            parameter.split_once('=').is_some_and(|(name, value)| {
                let value =
                    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
                name.eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
            })
        })
}

/// Whether a `Content-Type` is `application/x-www-form-urlencoded`, with at
/// most a UTF-8 `charset`.
fn is_form(content_type: &str) -> bool {
    is_utf8_of(content_type, "application/x-www-form-urlencoded")
}

/// Deserializes `body`, naming the failing field's path on a shape error.
///
/// The body is read as a JSON tree first (see [`Tree`]) so that a whole
/// number written with a fraction or an exponent (`24.0`, `1e3`) is the
/// integer JSON Schema says it is, and a repeated key is refused.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let tree = <Tree as serde::Deserialize>::deserialize(&mut deserializer)
        .and_then(|tree| deserializer.end().map(|()| tree))
        .map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ApiError::field("body", strip_position(&error)),
            _ => ApiError::Malformed(format!("the body is not valid JSON: {error}")),
        })?;
    serde_path_to_error::deserialize(tree.0).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&path, &message, "body"), message)])
    })
}

/// A JSON document as [`parse_json`] reads it: whole numbers are integers
/// however they are written, and an object may not repeat a key.
struct Tree(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor).map(Tree)
    }
}

struct TreeVisitor;

impl<'de> serde::de::Visitor<'de> for TreeVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // Exactly representable whole numbers only: -2^63 and 2^64 bound
        // i64 and u64, and every f64 between them without a fraction fits.
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        let whole = v.fract() == 0.0;
        let number = if whole && (-TWO_POW_63..0.0).contains(&v) {
            (v as i64).into()
        } else if whole && (0.0..2.0 * TWO_POW_63).contains(&v) {
            (v as u64).into()
        } else {
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
        };
        Ok(number)
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tree(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
            }
            let Tree(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

/// The path of the field an error is about. serde's path already ends at an
/// unknown field; for a missing one it stops at the parent, and the message
/// names the field.
fn field_of(path: &str, message: &str, root: &str) -> String {
    let path = if path == "." { "" } else { path };
    let named = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    match (path.is_empty(), named("missing field `"), named("unknown field `")) {
        (true, Some(field), _) => field.to_owned(),
        (false, Some(field), _) => format!("{path}.{field}"),
        (true, None, Some(field)) => field.to_owned(),
        (true, None, None) => root.to_owned(),
        (false, None, _) => path.to_owned(),
    }
}

/// serde's message without " at line 1 column 12", which names no field.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A query string, deserialized strictly: an unknown parameter or a value of
/// the wrong type answers 422 `validation_failed` naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Deserializes a query string, naming the failing parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // PostgreSQL text cannot hold NUL; refuse it here, for every parameter.
    if let Some((name, _)) =
        form_urlencoded::parse(query.as_bytes()).find(|(_, v)| v.contains('\0'))
    {
        return Err(ApiError::field(name, "must not contain NUL characters"));
    }
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::field(field_of(&path, &message, "query"), message)
    })
}

/// Maps a path segment that does not parse to 404: no such resource.
pub fn path_error(_: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound("resource").into()
}

/// A catalog code such as `pain-5-day`: lower-case letters, digits and
/// dashes, 1 to 64. In a path, anything else is 404.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let valid = (1..=64).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Code(text))
        } else {
            Err(serde::de::Error::custom("is not a code"))
        }
    }
}
