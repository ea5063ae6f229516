//! What a check refuses, before any wire sees it: one bad field of a
//! request, and the one-line report of an error with its causes.

/// Any error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One bad field of a request (`google.rpc.BadRequest.FieldViolation`
/// once it reaches the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `lines[2].quantity`.
    pub field: String,
    /// What is wrong, for people.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// `error` and every cause under it, joined by `: `, for the one line an
/// operator reads (never sent to a client).
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}
