//! The clinic's rules as plain Rust: no actix, no diesel. Inputs parse into
//! types that cannot hold invalid values, so the layers around them need not
//! re-check.

pub mod access;
pub mod clock;
pub mod patient;

use serde::Serialize;
use utoipa::ToSchema;

/// One rule a request broke, named by the field's JSON path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `indications[0].subtype`.
    #[schema(example = "date_of_birth")]
    pub field: String,
    /// What is wrong, in words a person can act on.
    #[schema(example = "must be in the past")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
