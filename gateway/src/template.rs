//! `google.api.http` path templates: `/v1/products/{product_id}:adjustStock`,
//! `/v1/products/{product.id}`, `/v1/users/me`. Parsed once at start-up and
//! matched segment by segment; literal segments outrank variables, so
//! `/v1/users/me` wins over `/v1/users/{user_id}`.

/// One `/`-separated piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal the request's segment.
    Literal(String),
    /// Binds one segment to a (possibly dotted) field path.
    Variable(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    segments: Vec<Segment>,
    /// The `:verb` after the last segment, if any.
    verb: Option<String>,
    /// The template as written, for errors and OpenAPI.
    pub(crate) raw: String,
}

impl PathTemplate {
    /// Parses a template; `{name=*}` is the same as `{name}`. Multi-segment
    /// patterns (`**`) are not used by the OMS contract and are refused.
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let path = raw
            .strip_prefix('/')
            .ok_or_else(|| format!("{raw}: must start with /"))?;
        let (path, verb) = match path.rsplit_once(':') {
            // A colon after the last '/' and outside braces is the verb.
            Some((head, verb)) if !verb.contains('/') && !verb.contains('}') => {
                (head, Some(verb.to_owned()))
            }
            _ => (path, None),
        };
        let mut segments = Vec::new();
        for part in path.split('/') {
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if pattern != "*" {
                    return Err(format!(
                        "{raw}: only single-segment variables are supported"
                    ));
                }
                segments.push(Segment::Variable(field.to_owned()));
            } else if part.is_empty() || part.contains(['{', '}']) {
                return Err(format!("{raw}: bad segment {part:?}"));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Self {
            segments,
            verb,
            raw: raw.to_owned(),
        })
    }

    /// The field paths bound by the template.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(field) => Some(field.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// How many literal segments: more literals, more specific.
    pub(crate) fn specificity(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// Matches a request path (already split off its query); the bound
    /// variables, percent-decoded, in template order.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut bound = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Variable(field) => {
                    if part.is_empty() {
                        return None;
                    }
                    let value = percent_decode(part)?;
                    // A verbless template must not swallow another route's verb.
                    if self.verb.is_none() && value.contains(':') && part.contains(':') {
                        return None;
                    }
                    bound.push((field.clone(), value));
                }
            }
        }
        Some(bound)
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_bind_variables_verbs_and_nested_fields() {
        let adjust = PathTemplate::parse("/v1/products/{product_id}:adjustStock").unwrap();
        assert_eq!(
            adjust.matches("/v1/products/abc:adjustStock"),
            Some(vec![("product_id".to_owned(), "abc".to_owned())])
        );
        assert_eq!(adjust.matches("/v1/products/abc"), None);
        let get = PathTemplate::parse("/v1/products/{product_id}").unwrap();
        assert_eq!(
            get.matches("/v1/products/abc:adjustStock"),
            None,
            "verbs are not ids"
        );
        let patch = PathTemplate::parse("/v1/products/{product.id}").unwrap();
        assert_eq!(
            patch.matches("/v1/products/p1"),
            Some(vec![("product.id".to_owned(), "p1".to_owned())])
        );
        let me = PathTemplate::parse("/v1/users/me").unwrap();
        let user = PathTemplate::parse("/v1/users/{user_id=*}").unwrap();
        assert!(me.specificity() > user.specificity());
        assert_eq!(
            user.matches("/v1/users/a%20b"),
            Some(vec![("user_id".to_owned(), "a b".to_owned())])
        );
        assert!(PathTemplate::parse("/v1/{name=**}").is_err());
        assert_eq!(
            PathTemplate::parse("/.well-known/jwks.json")
                .unwrap()
                .matches("/.well-known/jwks.json"),
            Some(vec![])
        );
    }
}
