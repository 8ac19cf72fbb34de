//! Input that is well-formed but breaks a rule: reported with the field it concerns.

/// A rule broken by one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The request field at fault, as the client spelled it.
    pub field: &'static str,
    /// A stable snake_case code such as `invalid_email`.
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

impl ValidationError {
    /// A broken rule on `field`.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { field, code, message: message.into() }
    }
}
