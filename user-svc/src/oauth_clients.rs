//! OpenID Connect clients (`OMS_OAUTH_CLIENTS`): the applications that may
//! sign users in with the authorization code flow, each public (a browser
//! or native app, PKCE only) or confidential (a server, with a secret),
//! with the exact redirect URIs it registered and the scopes it may ask
//! for. Checked once at start-up: a bad entry stops user-svc with a
//! message naming the client and what is wrong.

use serde::Deserialize;

/// The scopes an OpenID Connect client may ask for (OIDC Core §5.4, and
/// `offline_access` for a refresh token, §11).
pub use oms_runtime::auth::OIDC_SCOPES;

/// The most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// The longest redirect URI (what a browser sends back must fit a URL).
const MAX_REDIRECT_URI_LEN: usize = 2_000;
/// The most clients the variable may hold.
const MAX_CLIENTS: usize = 100;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// No secret (a browser or native app): PKCE binds its code.
    Public,
    /// With a secret (a server): `client_secret_basic` or `_post`.
    Confidential,
}

/// One registered client. The secret is held only as its SHA-256, as for
/// service clients.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// e.g. `console`.
    pub client_id: String,
    /// Public or confidential.
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Lower-case hex SHA-256 of the secret: confidential clients only.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    /// Matched exactly (RFC 9700 §4.1.3): no wildcards, no prefixes.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to, matched
    /// exactly like `redirect_uris` (which are allowed too).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes it may be granted (`openid` among them).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_type", &self.client_type)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A public client (no secret) with these redirect URIs and scopes.
    pub fn public(client_id: &str, redirect_uris: &[String], scopes: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_type: ClientType::Public,
            secret_sha256: None,
            redirect_uris: redirect_uris.to_vec(),
            post_logout_redirect_uris: Vec::new(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether `secret` is this client's: a confidential client's, compared
    /// in constant time; a public client has none and proves nothing with
    /// one.
    pub fn secret_matches(&self, secret: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        match (&self.client_type, &self.secret_sha256) {
            (ClientType::Confidential, Some(hash)) => crate::clients::sha256_hex(secret)
                .as_bytes()
                .ct_eq(hash.as_bytes())
                .into(),
            _ => false,
        }
    }

    /// Whether RP-initiated logout may end at `uri`.
    pub fn logs_out_to(&self, uri: &str) -> bool {
        self.redirects_to(uri) || self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether `uri` is one this client registered, character for
    /// character.
    pub fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| registered == uri)
    }
}

/// Parses `OMS_OAUTH_CLIENTS`: a JSON array of `{"client_id", "type":
/// "public"|"confidential", "secret_sha256" (confidential only),
/// "redirect_uris", "scopes"}`.
pub fn parse(raw: &str) -> Result<Vec<OAuthClient>, String> {
    let clients: Vec<OAuthClient> = serde_json::from_str(raw).map_err(|e| {
        format!(
            r#"expected [{{"client_id":"console","type":"public","redirect_uris":["https://oms.example.com/console/callback"],"scopes":["openid","email"]}}]: {e}"#
        )
    })?;
    if clients.len() > MAX_CLIENTS {
        return Err(format!("{} clients; at most {MAX_CLIENTS}", clients.len()));
    }
    for (n, client) in clients.iter().enumerate() {
        check(client)?;
        if clients[..n].iter().any(|c| c.client_id == client.client_id) {
            return Err(format!("client {} is registered twice", client.client_id));
        }
    }
    Ok(clients)
}

fn check(client: &OAuthClient) -> Result<(), String> {
    let id = &client.client_id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "client_id {id:?} must be 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    match (&client.client_type, &client.secret_sha256) {
        (ClientType::Public, Some(_)) => {
            return Err(format!(
                "client {id}: a public client has no secret (drop secret_sha256, or make it confidential)"
            ));
        }
        (ClientType::Confidential, None) => {
            return Err(format!(
                "client {id}: a confidential client needs secret_sha256"
            ));
        }
        (ClientType::Confidential, Some(hex))
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            return Err(format!(
                "client {id}: secret_sha256 must be 64 lower-case hex digits"
            ));
        }
        _ => {}
    }
    if client.redirect_uris.is_empty() || client.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "client {id}: 1 to {MAX_REDIRECT_URIS} redirect_uris, not {}",
            client.redirect_uris.len()
        ));
    }
    for uri in &client.redirect_uris {
        redirect_uri(uri).map_err(|why| format!("client {id}: redirect URI {uri:?} {why}"))?;
    }
    if client.post_logout_redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "client {id}: at most {MAX_REDIRECT_URIS} post_logout_redirect_uris"
        ));
    }
    for uri in &client.post_logout_redirect_uris {
        redirect_uri(uri)
            .map_err(|why| format!("client {id}: post-logout redirect URI {uri:?} {why}"))?;
    }
    if let Some(unknown) = client
        .scopes
        .iter()
        .find(|s| !OIDC_SCOPES.contains(&s.as_str()))
    {
        return Err(format!(
            "client {id}: unknown scope {unknown} (known: {})",
            OIDC_SCOPES.join(", ")
        ));
    }
    if !client.scopes.iter().any(|s| s == "openid") {
        return Err(format!("client {id}: scopes must include openid"));
    }
    Ok(())
}

/// A redirect URI a client may register (RFC 6749 §3.1.2, RFC 8252 §7,
/// RFC 9700 §2.1): absolute, no fragment, no user info, no wildcard;
/// `https`, or `http` to a loopback address (a native app's local
/// listener), or a private-use scheme with a dot (`com.example.app:/cb`).
fn redirect_uri(raw: &str) -> Result<(), &'static str> {
    if raw.len() > MAX_REDIRECT_URI_LEN {
        return Err("is longer than 2000 characters");
    }
    if raw.contains('*') {
        return Err("has a wildcard: redirect URIs are matched exactly");
    }
    let url = url::Url::parse(raw).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("has a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has user info");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err("is plain http to a host that is not loopback: use https"),
        },
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(
            "has a scheme that is neither https, http to loopback, nor a private-use one (com.example.app)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(fields: &str) -> Result<Vec<OAuthClient>, String> {
        parse(&format!(r#"[{{"client_id":"app",{fields}}}]"#))
    }

    #[test]
    fn public_and_confidential_clients_are_registered() {
        let hash = crate::clients::sha256_hex("s3cret");
        let clients = parse(&format!(
            r#"[{{"client_id":"console","type":"public","redirect_uris":["http://localhost:8080/console/callback","http://127.0.0.1:8080/console/callback"],"scopes":["openid","email","offline_access"]}},
                {{"client_id":"reports","type":"confidential","secret_sha256":"{hash}","redirect_uris":["https://reports.example.com/cb?x=1","com.example.reports:/cb"],"scopes":["openid","profile"]}}]"#
        ))
        .unwrap();
        assert_eq!(clients.len(), 2);
        assert!(clients[0].redirects_to("http://localhost:8080/console/callback"));
        // Exact: no prefix, no trailing slash, no other port.
        for near in [
            "http://localhost:8080/console/callback/",
            "http://localhost:8080/console/callback?next=x",
            "http://localhost:8081/console/callback",
            "http://localhost:8080/console",
        ] {
            assert!(!clients[0].redirects_to(near), "{near}");
        }
        assert_eq!(clients[1].client_type, ClientType::Confidential);
    }

    #[test]
    fn each_bad_registration_names_the_client_and_the_fault() {
        let hash = crate::clients::sha256_hex("s3cret");
        let public = r#""type":"public","scopes":["openid"]"#;
        for (fields, says) in [
            (format!(r#"{public},"redirect_uris":["https://a.example/*"]"#), "wildcard"),
            (format!(r#"{public},"redirect_uris":["https://a.example/cb#x"]"#), "fragment"),
            (format!(r#"{public},"redirect_uris":["http://a.example/cb"]"#), "not loopback"),
            (format!(r#"{public},"redirect_uris":["/cb"]"#), "absolute"),
            (format!(r#"{public},"redirect_uris":["https://u:p@a.example/cb"]"#), "user info"),
            (format!(r#"{public},"redirect_uris":["javascript:alert(1)"]"#), "scheme"),
            (format!(r#"{public},"redirect_uris":[]"#), "redirect_uris"),
            (
                format!(r#""type":"public","secret_sha256":"{hash}","redirect_uris":["https://a.example/cb"],"scopes":["openid"]"#),
                "no secret",
            ),
            (
                r#""type":"confidential","redirect_uris":["https://a.example/cb"],"scopes":["openid"]"#.to_owned(),
                "needs secret_sha256",
            ),
            (
                r#""type":"public","redirect_uris":["https://a.example/cb"],"scopes":["email"]"#.to_owned(),
                "include openid",
            ),
            (
                r#""type":"public","redirect_uris":["https://a.example/cb"],"scopes":["openid","admin"]"#.to_owned(),
                "unknown scope admin",
            ),
            (
                r#""type":"public","redirect_uris":["https://a.example/cb"],"scopes":["openid"],"grants":["password"]"#.to_owned(),
                "unknown field",
            ),
        ] {
            let error = one(&fields).unwrap_err();
            assert!(error.contains(says), "{fields}: {error}");
            assert!(error.contains("app") || says == "unknown field", "{error}");
        }
        let twice = r#"[{"client_id":"a","type":"public","redirect_uris":["https://a.example/cb"],"scopes":["openid"]},
                        {"client_id":"a","type":"public","redirect_uris":["https://b.example/cb"],"scopes":["openid"]}]"#;
        assert!(parse(twice).unwrap_err().contains("twice"));
        let bad_id = r#"[{"client_id":"a b","type":"public","redirect_uris":["https://a.example/cb"],"scopes":["openid"]}]"#;
        assert!(parse(bad_id).unwrap_err().contains("client_id"));
    }
}
