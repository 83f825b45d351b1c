//! Security headers on every response: `X-Content-Type-Options: nosniff`,
//! no framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), a content
//! security policy (a strict one for the API's JSON, the one Swagger UI needs
//! under `/swagger-ui/`), `Cache-Control: no-store` on the API's answers, and
//! `Strict-Transport-Security` when `TLS_TERMINATED` says TLS is terminated
//! in front of the server.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

use utoipa_swagger_ui::Config;

use super::State;

/// For JSON and problem documents: nothing may load, nothing may frame it.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// For Swagger UI (utoipa-swagger-ui's vendored swagger-ui 5.32.6), from
/// what its files ask for: `index.html` loads its scripts and styles from
/// files beside it (`'self'`), with no inline script; the stylesheet's icons
/// are `data:` URLs; the document and "Try it out" are fetched from this
/// origin. The one inline style is the `<style>` the standalone preset's
/// logo renders, allowed by its hash (SHA-256 of
/// `.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}`);
/// the rest of its styling is set through the DOM, which CSP does not
/// govern. A newer swagger-ui may need this revisited: `tests/api/security.rs`
/// pins the version the hash belongs to.
pub const SWAGGER_UI_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// A year, in seconds: what `Strict-Transport-Security` asks browsers to
/// remember (no `includeSubDomains`: other hosts of the domain are not ours
/// to decide for).
pub const HSTS: &str = "max-age=31536000";

/// Swagger UI's settings: no validator badge, which would send the
/// document's address to swagger.io and which [`SWAGGER_UI_POLICY`] blocks.
pub fn swagger_ui_config() -> Config<'static> {
    Config::default().validator_url("none")
}

/// The middleware: adds the headers to whatever the inner service answered.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let tls_terminated = req.app_data::<State>().is_some_and(|s| s.settings.tls_terminated);
    let path = req.path();
    let swagger_ui = path == "/swagger-ui" || path.starts_with("/swagger-ui/");
    // The UI's files and the document may be cached; answers about the
    // clinic, the probes' and errors included, never are.
    let stored = swagger_ui || path == "/openapi.json";
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let policy = if swagger_ui { SWAGGER_UI_POLICY } else { API_POLICY };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    if !stored && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls_terminated {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    Ok(response)
}
