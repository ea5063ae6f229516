//! The user-svc binary: configuration from env, then [`user_svc::serve`]
//! until SIGTERM or Ctrl-C.
//!
//! Subcommands for operators:
//! - `user-svc keygen` prints a new Ed25519 signing key (PKCS#8 PEM) for
//!   `OMS_JWT_SIGNING_KEYS`;
//! - `user-svc client-secret <client_id> <scope>…` prints a new random
//!   client secret and the `OMS_SERVICE_CLIENTS` entry holding its hash;
//! - `user-svc healthcheck` exits 0 if the server on `USER_SVC_ADDR`
//!   reports SERVING (container health checks);
//! - `user-svc env-vars` lists the environment variables it reads;
//! - `user-svc migrate` brings the schema up to date and exits (a
//!   deployment's one-off job).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("keygen") => keygen(),
        Some("client-secret") => client_secret(&args[1..]),
        Some("migrate") => kit::startup::run("user-svc", |env| async move {
            let config = user_svc::Config::from_env(&env, "DATABASE_URL")?;
            kit::db::connect_and_migrate::<user_svc::migration::Migrator>(
                &config.database_url,
                Default::default(),
            )
            .await?;
            tracing::info!(service = "user-svc", "the schema is up to date");
            Ok(())
        }),
        Some("env-vars") => kit::startup::list_env_vars(|env| {
            user_svc::Config::from_env(env, "DATABASE_URL").map(drop)
        }),
        Some("healthcheck") => {
            kit::healthcheck::run("user-svc", kit::healthcheck::Probe::Grpc, |env| {
                user_svc::Config::from_env(env, "DATABASE_URL").map(|c| c.addr)
            })
        }
        Some(other) => {
            eprintln!(
                "user-svc: unknown subcommand {other:?} (expected keygen, client-secret, migrate, healthcheck or env-vars, or none to serve)"
            );
            ExitCode::from(2)
        }
        None => kit::startup::run("user-svc", |env| async move {
            let config = user_svc::Config::from_env(&env, "DATABASE_URL")?;
            let listener = kit::server::bind(config.addr, user_svc::ADDR_VAR).await?;
            user_svc::serve(config, listener, kit::shutdown::signal()).await
        }),
    }
}

fn keygen() -> ExitCode {
    match user_svc::keys::generate().and_then(|key| user_svc::keys::to_pem(&key)) {
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
    let secret = match user_svc::clients::random_secret() {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("user-svc client-secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let client = user_svc::clients::ServiceClient::new(client_id, &secret, &scopes);
    println!("secret (give to the client only): {secret}");
    println!(
        "OMS_SERVICE_CLIENTS entry: {{\"client_id\":{:?},\"secret_sha256\":\"{}\",\"scopes\":{:?}}}",
        client.client_id, client.secret_sha256, client.scopes
    );
    ExitCode::SUCCESS
}
