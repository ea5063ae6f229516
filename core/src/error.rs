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

/// A stored name (a state, a status) this build does not know: an error,
/// never read as some default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What the name is of, e.g. `order status`.
    pub of: &'static str,
    /// The name found.
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.of, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// The one of `all` whose `name_of` is `name`.
pub fn find_by_name<T: Copy>(
    of: &'static str,
    all: &[T],
    name_of: impl Fn(T) -> &'static str,
    name: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|item| name_of(*item) == name)
        .ok_or_else(|| UnknownName {
            of,
            name: name.to_owned(),
        })
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
