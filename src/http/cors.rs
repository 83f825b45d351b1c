//! Cross-origin requests from browsers (CORS, WHATWG Fetch), for front-ends
//! served from other origins. Off unless `CORS_ALLOWED_ORIGINS` lists
//! origins (or the server runs in development, which allows loopback).
//!
//! When on:
//! - a preflight (`OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`) is answered here, before the rate
//!   limits and authentication: 204 with the allowed methods, headers and
//!   max age for an allowed origin; 403 `forbidden` for any other;
//! - every other answer to an allowed origin, whatever its status and
//!   whichever layer gave it, carries `Access-Control-Allow-Origin` (that
//!   origin) and `Access-Control-Expose-Headers`;
//! - every answer carries `Vary: Origin`, added to any `Vary` already set.
//!
//! Never `Access-Control-Allow-Credentials`: tokens travel in the
//! `Authorization` header, which a script sets itself, not in cookies.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError};

use crate::config::{parse_origin, CorsOrigins};

use super::error::ApiError;
use super::State;

/// The methods a preflight allows: every method an operation has.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// The request headers a preflight allows, besides the CORS-safelisted ones.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match";

/// The response headers a script may read, besides the CORS-safelisted ones
/// (`Content-Type` and a few more).
pub const EXPOSED_HEADERS: &str =
    "Location, ETag, x-request-id, Retry-After, RateLimit, RateLimit-Policy, Idempotent-Replayed";

const ACCESS_CONTROL_REQUEST_METHOD: HeaderName =
    HeaderName::from_static("access-control-request-method");

/// Whether a request from `origin` (its `Origin` header) may be read by the
/// page that sent it. Exact origins match as browsers send them; `*` any
/// well-formed origin (never `null`, which sandboxed and local pages send);
/// loopback `http://localhost` and `http://127.0.0.1` on any port.
pub fn allows(origins: &CorsOrigins, origin: &str) -> bool {
    if origins.exact.iter().any(|allowed| allowed == origin) {
        return true;
    }
    if !(origins.any || origins.loopback) {
        return false;
    }
    // Browsers send origins already in this form; anything else is not one.
    if parse_origin(origin).ok().as_deref() != Some(origin) {
        return false;
    }
    if origins.any {
        return true;
    }
    origin.strip_prefix("http://").is_some_and(|authority| {
        let host = authority.split_once(':').map_or(authority, |(host, _)| host);
        host == "localhost" || host == "127.0.0.1"
    })
}

/// The middleware: answers preflights, and adds the CORS headers to every
/// other answer (see the module's documentation).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let settings = match req.app_data::<State>() {
        Some(state) if state.settings.cors_origins.is_on() => state.settings.clone(),
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|origin| allows(&settings.cors_origins, origin))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let answer = match &allowed {
            Some(origin) => HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, settings.cors_max_age_seconds))
                .finish(),
            None => ApiError::OriginNotAllowed.error_response(),
        };
        let mut response = req.into_response(answer);
        vary_on_origin(response.headers_mut());
        return Ok(response.map_into_right_body());
    }
    // Handlers, extractors and the layers inside answer their errors as
    // responses (problem documents), so every status passes here.
    let mut response = next.call(req).await?.map_into_left_body();
    let headers = response.headers_mut();
    vary_on_origin(headers);
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    Ok(response)
}

/// Adds `Origin` to the answer's `Vary`, keeping what it names already.
fn vary_on_origin(headers: &mut HeaderMap) {
    let existing: Vec<&str> =
        headers.get_all(header::VARY).filter_map(|v| v.to_str().ok()).collect();
    let mut names = existing.iter().flat_map(|v| v.split(',')).map(str::trim);
    if names.any(|name| name == "*" || name.eq_ignore_ascii_case("origin")) {
        return;
    }
    let merged = match existing.as_slice() {
        [] => HeaderValue::from_static("Origin"),
        _ => match HeaderValue::from_str(&format!("{}, Origin", existing.join(", "))) {
            Ok(value) => value,
            Err(_) => {
                headers.append(header::VARY, HeaderValue::from_static("Origin"));
                return;
            }
        },
    };
    headers.insert(header::VARY, merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(exact: &[&str], any: bool, loopback: bool) -> CorsOrigins {
        CorsOrigins { exact: exact.iter().map(|o| (*o).to_owned()).collect(), any, loopback }
    }

    #[test]
    fn which_origins_are_allowed() {
        let listed = origins(&["https://app.example.org", "http://10.0.0.7:3000"], false, false);
        let development = origins(&["https://app.example.org"], false, true);
        let any = origins(&[], true, true);
        let off = CorsOrigins::default();
        // (origins, Origin, allowed)
        for (allowed_origins, origin, expected) in [
            (&listed, "https://app.example.org", true),
            (&listed, "http://10.0.0.7:3000", true),
            (&listed, "http://app.example.org", false),
            (&listed, "https://app.example.org:8443", false),
            (&listed, "https://evil.example.org", false),
            (&listed, "https://app.example.org.evil.example", false),
            (&listed, "https://APP.example.org", false),
            (&listed, "http://localhost:5173", false),
            (&listed, "null", false),
            (&listed, "", false),
            (&development, "https://app.example.org", true),
            (&development, "http://localhost:5173", true),
            (&development, "http://localhost", true),
            (&development, "http://127.0.0.1:8000", true),
            (&development, "https://localhost:5173", false),
            (&development, "http://localhost.evil.example", false),
            (&development, "http://127.0.0.1.evil.example:80", false),
            (&development, "http://[::1]:5173", false),
            (&development, "http://192.168.1.5:5173", false),
            (&development, "http://localhost:5173/", false),
            (&development, "null", false),
            (&any, "https://anything.example", true),
            (&any, "capacitor://localhost", true),
            (&any, "null", false),
            (&any, "https://anything.example/path", false),
            (&off, "https://app.example.org", false),
            (&off, "http://localhost:5173", false),
        ] {
            assert_eq!(
                allows(allowed_origins, origin),
                expected,
                "{origin} with {allowed_origins:?}"
            );
        }
    }

    #[test]
    fn vary_keeps_what_it_names() {
        let vary = |existing: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in existing {
                headers.append(header::VARY, HeaderValue::from_str(value).unwrap());
            }
            vary_on_origin(&mut headers);
            headers
                .get_all(header::VARY)
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(vary(&[]), ["Origin"]);
        assert_eq!(vary(&["Accept-Encoding"]), ["Accept-Encoding, Origin"]);
        assert_eq!(vary(&["Accept", "Accept-Encoding"]), ["Accept, Accept-Encoding, Origin"]);
        assert_eq!(vary(&["accept, origin"]), ["accept, origin"]);
        assert_eq!(vary(&["*"]), ["*"]);
    }
}
