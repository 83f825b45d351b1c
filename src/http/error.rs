//! The one error edge: every failure becomes an RFC 9457
//! `application/problem+json` body with a stable `code`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FieldError, Refusal};
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:problem:infusion-api:validation_failed",
    "title": "The request is not valid",
    "status": 422,
    "detail": "1 field is not valid",
    "code": "validation_failed",
    "errors": [{"field": "date_of_birth", "message": "must be in the past"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem; stable per `code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Our stable error code (see the API description).
    pub code: String,
    /// For `validation_failed`: each field that broke a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For `conflict`: the appointments that stand in the way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_ids: Option<Vec<String>>,
    /// For `no_capacity_for_series`: the next start that would fit (null if none within the horizon).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub next_start: Option<Option<chrono::NaiveDate>>,
    /// For `conflict` on a patient identifier: the patient that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_patient_id: Option<String>,
    /// For `course_already_active`: the patient's active course.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_id: Option<String>,
    /// For `not_ready`: the open checklist items, as the readiness endpoint shows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<crate::domain::readiness::ReadinessItem>>,
}

/// Every way a request can fail.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// No media type `Accept` names is one the resource is offered as:
    /// those it is, in words.
    #[error("not acceptable")]
    NotAcceptable(&'static str),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive whole within this time (`BODY_TIMEOUT_MS`).
    #[error("body not received within {0:?}")]
    RequestTimeout(std::time::Duration),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden,
    /// The role may use the operation but not set this field.
    #[error("forbidden field {0}")]
    ForbiddenField(&'static str),
    /// A backend client's token lacks the scope the operation needs (the
    /// scope, when the operation has one; RFC 6750 §3.1).
    #[error("insufficient scope")]
    InsufficientScope(Option<String>),
    /// A CORS preflight from an origin `CORS_ALLOWED_ORIGINS` does not list.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// What was not found, for the answer's `detail`.
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// A clinic rule refused the request (never [`Refusal::Invalid`]: that
    /// is [`ApiError::Validation`]).
    #[error("refused: {}", .0.code())]
    Refused(Refusal),
    /// The caller's requests per minute are used up; retry after this many
    /// seconds. `http::limits` adds the `RateLimit` headers.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// The client's address failed authentication too often; retry after
    /// this many seconds.
    #[error("too many failed authentications")]
    TooManyFailedAuthentications { retry_after: u64 },
    /// `Idempotency-Key` is not a key (or was sent twice).
    #[error("invalid idempotency key")]
    InvalidIdempotencyKey,
    /// The key answered a different request of this caller.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// The first request with this key is still being answered.
    #[error("idempotency key in flight")]
    IdempotencyKeyInFlight { retry_after: u64 },
    /// `If-Match` names a version the resource no longer has.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Logged with the request id by the logging middleware; the client sees
    /// only a generic 500.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A validation failure of a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable `code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::Malformed(_) => "malformed_request",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotAcceptable(_) => "not_acceptable",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden | ApiError::ForbiddenField(_) | ApiError::OriginNotAllowed => {
                "forbidden"
            }
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Refused(refusal) => refusal.code(),
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::TooManyFailedAuthentications { .. } => "too_many_failed_authentications",
            ApiError::InvalidIdempotencyKey => "invalid_idempotency_key",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyKeyInFlight { .. } => "idempotency_key_in_flight",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "The request is not valid",
            ApiError::Malformed(_) => "The request body could not be read",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::NotAcceptable(_) => "Not acceptable",
            ApiError::PayloadTooLarge(_) => "The request body is too large",
            ApiError::RequestTimeout(_) => "The request body arrived too slowly",
            ApiError::Unauthorized(_) => "Authentication required",
            ApiError::Forbidden | ApiError::ForbiddenField(_) | ApiError::OriginNotAllowed => {
                "Not allowed"
            }
            ApiError::InsufficientScope(_) => "The token's scopes do not allow this",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed(_) => "Method not allowed",
            ApiError::Refused(refusal) => refusal.title(),
            ApiError::TooManyRequests { .. } => "Too many requests",
            ApiError::TooManyFailedAuthentications { .. } => "Too many failed authentications",
            ApiError::InvalidIdempotencyKey => "The Idempotency-Key is not valid",
            ApiError::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            ApiError::IdempotencyKeyInFlight { .. } => {
                "A request with this Idempotency-Key is in progress"
            }
            ApiError::PreconditionFailed => "The resource has changed",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Validation(errors) => Refusal::Invalid(errors.clone()).detail(),
            ApiError::Malformed(detail) => detail.clone(),
            ApiError::UnsupportedMediaType => {
                "send the body as JSON with `Content-Type: application/json`".into()
            }
            ApiError::NotAcceptable(offered) => format!("this resource is offered as {offered}"),
            ApiError::PayloadTooLarge(limit) => format!("the body must be at most {limit} bytes"),
            ApiError::RequestTimeout(limit) => {
                format!("the whole body must arrive within {} ms", limit.as_millis())
            }
            ApiError::Unauthorized(detail) => (*detail).into(),
            ApiError::Forbidden => "your role may not do this".into(),
            ApiError::ForbiddenField(field) => {
                format!("only clinicians and admins may set `{field}`")
            }
            ApiError::OriginNotAllowed => {
                "this origin may not call the API from a browser: CORS_ALLOWED_ORIGINS does not list it"
                    .into()
            }
            ApiError::InsufficientScope(Some(scope)) => {
                format!("this needs the scope `{scope}`, which the token does not carry")
            }
            ApiError::InsufficientScope(None) => {
                "no scope allows this: a backend client's token cannot do it".into()
            }
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::MethodNotAllowed(allowed) => {
                format!("this path accepts {}", allowed.join(", "))
            }
            ApiError::Refused(refusal) => refusal.detail(),
            ApiError::TooManyRequests { retry_after } => {
                format!("this caller's requests per minute are used up; retry in {retry_after} s")
            }
            ApiError::TooManyFailedAuthentications { retry_after } => {
                format!(
                    "too many failed authentications from this address; retry in {retry_after} s"
                )
            }
            ApiError::InvalidIdempotencyKey => format!(
                "send one `Idempotency-Key` of 1 to {} printable ASCII characters, bare or quoted",
                super::idempotency::MAX_KEY_LENGTH
            ),
            ApiError::IdempotencyKeyReused => {
                "this key was sent with a different request (method, path or body); use a new key for a new request".into()
            }
            ApiError::IdempotencyKeyInFlight { retry_after } => format!(
                "the first request with this key is still being answered; retry in {retry_after} s"
            ),
            ApiError::PreconditionFailed => {
                "the resource has changed since the version `If-Match` names: read it again, then retry".into()
            }
            ApiError::Unavailable(_) => "the database is not reachable".into(),
            ApiError::Internal(_) => {
                "something went wrong on our side; the x-request-id header identifies it".into()
            }
        }
    }

    /// The problem document sent for this error.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:problem:infusion-api:{}", self.code()),
            title: self.title().into(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code: self.code().into(),
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            appointment_ids: match self {
                ApiError::Refused(Refusal::Conflict { appointment_ids, .. })
                    if !appointment_ids.is_empty() =>
                {
                    Some(appointment_ids.clone())
                }
                _ => None,
            },
            next_start: match self {
                ApiError::Refused(Refusal::NoCapacityForSeries { next_start }) => Some(*next_start),
                _ => None,
            },
            existing_patient_id: match self {
                ApiError::Refused(Refusal::IdentifierTaken { patient_id, .. }) => {
                    Some(patient_id.clone())
                }
                _ => None,
            },
            items: match self {
                ApiError::Refused(Refusal::NotReady { items, .. }) => Some(items.clone()),
                _ => None,
            },
            course_id: match self {
                ApiError::Refused(Refusal::CourseAlreadyActive { course_id }) => {
                    Some(course_id.clone())
                }
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenField(_) | ApiError::OriginNotAllowed => {
                StatusCode::FORBIDDEN
            }
            ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Refused(refusal) => match refusal {
                Refusal::Invalid(_)
                | Refusal::NotAClinicDay(_)
                | Refusal::ClinicClosed(_)
                | Refusal::InThePast
                | Refusal::OutsideHorizon { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::SlotFull
                | Refusal::PatientAlreadyBookedThatDay(_)
                | Refusal::InvalidTransition { .. }
                | Refusal::NotReady { .. }
                | Refusal::NoCapacityForSeries { .. }
                | Refusal::CourseAlreadyActive { .. }
                | Refusal::Conflict { .. }
                | Refusal::IdentifierTaken { .. }
                | Refusal::FeeScheduleIncomplete { .. }
                | Refusal::BillingProfileMissing
                | Refusal::AlreadyVoided { .. } => StatusCode::CONFLICT,
            },
            ApiError::TooManyRequests { .. } | ApiError::TooManyFailedAuthentications { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyKeyInFlight { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::InsufficientScope(scope) => {
                let challenge = match scope {
                    Some(scope) => {
                        format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"")
                    }
                    None => "Bearer error=\"insufficient_scope\"".into(),
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            ApiError::MethodNotAllowed(allowed) => {
                if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                    response.insert_header((header::ALLOW, value));
                }
            }
            ApiError::TooManyRequests { retry_after }
            | ApiError::TooManyFailedAuthentications { retry_after }
            | ApiError::IdempotencyKeyInFlight { retry_after } => {
                response.insert_header((header::RETRY_AFTER, *retry_after));
            }
            // The rest of the body may never come (RFC 9110 §15.5.9): the
            // connection is not kept for another request.
            ApiError::RequestTimeout(_) => {
                response.force_close();
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        response.body(body)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(errors) => ApiError::Validation(errors),
            other => ApiError::Refused(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Refused(refusal) => refusal.into(),
            // Every attempt lost a room to another booking: the session is full.
            StoreError::LostRace => ApiError::Refused(Refusal::SlotFull),
            StoreError::PreconditionFailed => ApiError::PreconditionFailed,
            StoreError::KeyReused => ApiError::IdempotencyKeyReused,
            StoreError::KeyInFlight => ApiError::IdempotencyKeyInFlight {
                retry_after: super::idempotency::IN_FLIGHT_RETRY_AFTER,
            },
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            StoreError::Pool(e) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: &ApiError) -> String {
        let bytes = error.error_response().into_body().try_into_bytes().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn internal_errors_keep_their_cause_out_of_the_response() {
        let error = ApiError::Internal("UNIQUE constraint failed: patients.email SELECT *".into());
        let body = body_of(&error);
        assert!(body.contains("\"code\":\"internal_error\""), "{body}");
        assert!(!body.contains("SELECT") && !body.contains("patients.email"), "{body}");
        let unavailable = body_of(&ApiError::Unavailable("connection refused at 10.0.0.5".into()));
        assert!(!unavailable.contains("10.0.0.5"), "{unavailable}");
    }

    #[test]
    fn every_response_is_problem_json_with_its_code() {
        for error in [
            ApiError::field("x", "bad"),
            ApiError::Malformed("eof".into()),
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge(10),
            ApiError::RequestTimeout(std::time::Duration::from_secs(10)),
            ApiError::Unauthorized("no"),
            ApiError::Forbidden,
            ApiError::InsufficientScope(Some("system/Patient.r".into())),
            ApiError::OriginNotAllowed,
            ApiError::NotFound("patient"),
            ApiError::MethodNotAllowed(vec!["GET".into()]),
            ApiError::Refused(Refusal::SlotFull),
            ApiError::Refused(Refusal::InThePast),
            ApiError::TooManyRequests { retry_after: 12 },
            ApiError::TooManyFailedAuthentications { retry_after: 30 },
            ApiError::Unavailable("down".into()),
            ApiError::Internal("boom".into()),
        ] {
            let response = error.error_response();
            assert_eq!(response.status(), error.status_code());
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some(PROBLEM_JSON)
            );
            assert_eq!(error.problem().code, error.code());
        }
    }
}
