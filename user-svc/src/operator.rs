//! The operator commands of the user-svc binary besides the shared ones:
//! `keygen` (a new signing key) and `client-secret` (a new OAuth2 client).

use std::process::ExitCode;

use oms_runtime::cli::Command;

/// `keygen` and `client-secret`, for the runtime's command line.
pub(crate) fn commands() -> Vec<Command<'static>> {
    vec![
        Command::new(
            "keygen",
            "print a new Ed25519 signing key (PKCS#8 PEM) for OMS_JWT_SIGNING_KEYS",
            keygen,
        ),
        Command::with_args(
            "client-secret",
            "<client_id> <scope>…",
            "print a new client secret and the OMS_SERVICE_CLIENTS entry holding its hash",
            client_secret,
        ),
    ]
}

fn keygen() -> ExitCode {
    match crate::keys::generate().and_then(|key| crate::keys::to_pem(&key)) {
        Ok(pem) => {
            print!("{pem}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("user-svc keygen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client_secret(args: &[String]) -> ExitCode {
    let Some((client_id, scopes)) = args.split_first() else {
        eprintln!("usage: user-svc client-secret <client_id> <scope>…");
        return ExitCode::from(2);
    };
    let secret = match crate::clients::random_secret() {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("user-svc client-secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let client = crate::clients::ServiceClient::new(client_id, &secret, &scopes);
    println!("secret (give to the client only): {secret}");
    let entry = serde_json::json!({
        "client_id": client.client_id,
        "secret_sha256": client.secret_sha256,
        "scopes": client.scopes,
    });
    println!("OMS_SERVICE_CLIENTS entry: {entry}");
    ExitCode::SUCCESS
}
