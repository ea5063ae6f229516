//! `google.api.http` path templates, as HttpRule defines them:
//! `/v1/products/{product_id}:adjustStock`, nested fields such as
//! `/v1/products/{product.id}`, and variables with a pattern such as
//! `/v1/{name=shelves/*/books/*}` or a trailing `{path=**}`. Parsed once at
//! start-up and matched segment by segment; literal segments outrank
//! variables, so `/v1/users/me` wins over `/v1/users/{user_id}`.

/// One piece of a template, after variables are expanded into their
/// patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    /// Must equal the request's segment.
    Literal(String),
    /// `*`: any one segment.
    One,
    /// `**`: all the remaining segments (only last).
    Rest,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    /// Each atom, with the index of the variable it belongs to, if any.
    atoms: Vec<(Atom, Option<usize>)>,
    /// The field path of each variable.
    fields: Vec<String>,
    /// The `:verb` after the last segment, if any.
    verb: Option<String>,
    /// The template as written, for errors and OpenAPI.
    pub(crate) raw: String,
}

impl PathTemplate {
    /// Parses a template; `{name}` is `{name=*}`.
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
        let mut atoms = Vec::new();
        let mut fields = Vec::new();
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let (variable, after) = inner
                    .split_once('}')
                    .ok_or_else(|| format!("{raw}: unclosed {{"))?;
                let (field, pattern) = variable.split_once('=').unwrap_or((variable, "*"));
                if field.is_empty() {
                    return Err(format!("{raw}: a variable without a field"));
                }
                let index = fields.len();
                fields.push(field.to_owned());
                for part in pattern.split('/') {
                    atoms.push((atom(raw, part)?, Some(index)));
                }
                rest = after;
            } else {
                let (part, after) = rest.split_once('/').unwrap_or((rest, ""));
                if part.contains(['{', '}']) {
                    return Err(format!("{raw}: bad segment {part:?}"));
                }
                atoms.push((atom(raw, part)?, None));
                rest = if rest.len() > part.len() {
                    &rest[part.len()..]
                } else {
                    after
                };
            }
            rest = rest.strip_prefix('/').unwrap_or(rest);
        }
        if atoms.iter().rev().skip(1).any(|(a, _)| *a == Atom::Rest) {
            return Err(format!("{raw}: ** may only come last"));
        }
        Ok(Self {
            atoms,
            fields,
            verb,
            raw: raw.to_owned(),
        })
    }

    /// The field paths bound by the template.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(String::as_str)
    }

    /// How many literal segments: more literals, more specific.
    pub(crate) fn specificity(&self) -> usize {
        self.atoms
            .iter()
            .filter(|(a, _)| matches!(a, Atom::Literal(_)))
            .count()
    }

    /// Matches a request path (already split off its query); the bound
    /// variables in template order, each segment percent-decoded.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        // Every request is tried against the routes in turn: most fail on
        // a literal or the segment count, found here without allocating.
        if !self.may_match(path) {
            return None;
        }
        let parts: Vec<&str> = path.split('/').collect();
        let mut values: Vec<Vec<String>> = vec![Vec::new(); self.fields.len()];
        let mut next = 0;
        for (atom, variable) in &self.atoms {
            let taken: Vec<&str> = match atom {
                Atom::Rest => {
                    let rest = parts.get(next..)?.to_vec();
                    next = parts.len();
                    rest
                }
                _ => {
                    let part = *parts.get(next)?;
                    next += 1;
                    match atom {
                        Atom::Literal(literal) if literal != part => return None,
                        Atom::One if part.is_empty() => return None,
                        // A verbless template must not swallow another
                        // route's `:verb`.
                        Atom::One if self.verb.is_none() && part.contains(':') => return None,
                        _ => vec![part],
                    }
                }
            };
            if let Some(index) = variable {
                for part in taken {
                    values[*index].push(percent_decode(part)?);
                }
            }
        }
        if next != parts.len() {
            return None;
        }
        Some(
            self.fields
                .iter()
                .cloned()
                .zip(values.into_iter().map(|v| v.join("/")))
                .collect(),
        )
    }
}

impl PathTemplate {
    /// The segment-by-segment checks of [`Self::matches`] without binding:
    /// false means no match; true means `matches` decides.
    fn may_match(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for (atom, _) in &self.atoms {
            match atom {
                Atom::Rest => return true,
                Atom::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
                Atom::One => match parts.next() {
                    None | Some("") => return false,
                    Some(part) if self.verb.is_none() && part.contains(':') => return false,
                    Some(_) => {}
                },
            }
        }
        parts.next().is_none()
    }
}

fn atom(raw: &str, part: &str) -> Result<Atom, String> {
    match part {
        "*" => Ok(Atom::One),
        "**" => Ok(Atom::Rest),
        "" => Err(format!("{raw}: empty segment")),
        literal if literal.contains('*') => Err(format!("{raw}: bad segment {literal:?}")),
        literal => Ok(Atom::Literal(literal.to_owned())),
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits, nothing else: from_str_radix alone would
            // also take "%+1".
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
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

    fn bound(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn templates_bind_variables_verbs_and_nested_fields() {
        let adjust = PathTemplate::parse("/v1/products/{product_id}:adjustStock").unwrap();
        assert_eq!(
            adjust.matches("/v1/products/abc:adjustStock"),
            bound(&[("product_id", "abc")])
        );
        assert_eq!(adjust.matches("/v1/products/abc"), None);
        let get = PathTemplate::parse("/v1/products/{product_id}").unwrap();
        assert_eq!(
            get.matches("/v1/products/abc:adjustStock"),
            None,
            "verbs are not ids"
        );
        assert_eq!(get.matches("/v1/products/abc/more"), None);
        let patch = PathTemplate::parse("/v1/products/{product.id}").unwrap();
        assert_eq!(
            patch.matches("/v1/products/p1"),
            bound(&[("product.id", "p1")])
        );
        let me = PathTemplate::parse("/v1/users/me").unwrap();
        let user = PathTemplate::parse("/v1/users/{user_id=*}").unwrap();
        assert!(me.specificity() > user.specificity());
        assert_eq!(
            user.matches("/v1/users/a%20b"),
            bound(&[("user_id", "a b")])
        );
        assert_eq!(
            PathTemplate::parse("/.well-known/jwks.json")
                .unwrap()
                .matches("/.well-known/jwks.json"),
            bound(&[])
        );
    }

    #[test]
    fn variables_with_patterns_bind_several_segments() {
        let book = PathTemplate::parse("/v1/{name=shelves/*/books/*}").unwrap();
        assert_eq!(
            book.matches("/v1/shelves/s1/books/b2"),
            bound(&[("name", "shelves/s1/books/b2")])
        );
        assert_eq!(book.matches("/v1/shelves/s1/cds/b2"), None);
        let files = PathTemplate::parse("/v1/files/{path=**}:download").unwrap();
        assert_eq!(
            files.matches("/v1/files/a/b/c.txt:download"),
            bound(&[("path", "a/b/c.txt")])
        );
        assert_eq!(files.variables().collect::<Vec<_>>(), ["path"]);
        assert!(PathTemplate::parse("/v1/{a=**}/x").is_err());
        assert!(PathTemplate::parse("/v1/{=*}").is_err());
        assert!(PathTemplate::parse("v1/x").is_err());
    }

    /// One segment of a generated template.
    #[derive(Debug, Clone)]
    enum Piece {
        Literal(String),
        Variable,
    }

    fn pieces() -> impl proptest::strategy::Strategy<Value = (Vec<Piece>, Option<String>)> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            "[a-z][a-z0-9._-]{0,8}".prop_map(Piece::Literal),
            Just(Piece::Variable),
        ];
        (
            proptest::collection::vec(piece, 1..6),
            proptest::option::of("[a-zA-Z]{1,10}"),
        )
    }

    /// The decoding a strict reader would do: `%` and exactly two hex
    /// digits, the result UTF-8.
    fn reference_decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let high = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let low = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    proptest::proptest! {
        #![proptest_config(testkit::proptest_config(512))]

        #[test]
        fn any_template_text_parses_or_is_refused_with_a_reason(raw in "/?[a-z{}=*/:.%]{0,40}|\\PC{0,40}") {
            if let Err(why) = PathTemplate::parse(&raw) {
                proptest::prop_assert!(!why.is_empty());
            }
        }

        #[test]
        fn a_generated_template_matches_its_own_paths_and_binds_their_values(
            (pieces, verb) in pieces(),
            values in proptest::collection::vec("[^/%]{1,12}|[a-zA-Z0-9%/:. -]{1,12}", 6),
        ) {
            let mut raw = String::new();
            let mut path = String::new();
            let mut expected = Vec::new();
            for (n, piece) in pieces.iter().enumerate() {
                raw.push('/');
                path.push('/');
                match piece {
                    Piece::Literal(literal) => {
                        raw.push_str(literal);
                        path.push_str(literal);
                    }
                    Piece::Variable => {
                        raw.push_str(&format!("{{field_{n}}}"));
                        path.push_str(&encode(&values[n]));
                        expected.push((format!("field_{n}"), values[n].clone()));
                    }
                }
            }
            if let Some(verb) = &verb {
                raw.push(':');
                raw.push_str(verb);
                path.push(':');
                path.push_str(verb);
            }
            let template = PathTemplate::parse(&raw);
            proptest::prop_assert!(template.is_ok(), "{raw}: {:?}", template.err());
            let template = template.unwrap_or_else(|_| unreachable!());
            proptest::prop_assert_eq!(template.matches(&path), Some(expected), "{} against {}", path, raw);
            // One segment more or a different verb is another route's path.
            proptest::prop_assert_eq!(template.matches(&format!("{path}/x")), None);
            if verb.is_some() {
                proptest::prop_assert_eq!(template.matches(&format!("{path}x")), None);
            }
        }

        #[test]
        fn percent_decoding_takes_exactly_two_hex_digits(raw in "[%+0-9a-fA-Fg-z\u{e9}]{0,12}") {
            proptest::prop_assert_eq!(percent_decode(&raw), reference_decode(&raw));
        }

        #[test]
        fn percent_decoding_inverts_encoding(text in "\\PC{0,30}") {
            proptest::prop_assert_eq!(percent_decode(&encode(&text)), Some(text));
        }
    }

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
}
