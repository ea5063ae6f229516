//! The shape every service binary shares. A service says what it is and
//! how to read its configuration, serve and migrate; [`main`] turns that
//! into the command line (`serve`, `migrate`, `env-vars`, `healthcheck`,
//! `--help`, `--version`, plus the service's own commands), so each
//! `main.rs` is a few lines.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use sea_orm_migration::MigratorTrait;

use crate::StartupError;
use crate::app::Application as _;
use crate::cli::{Command, Program};
use crate::healthcheck::Probe;
use oms_config::{ConfigError, DatabaseUrl, Env};

/// A boxed future of a subcommand's work.
pub type Work = Pin<Box<dyn Future<Output = Result<(), StartupError>> + Send>>;

/// What a binary tells the shared shape about itself.
pub trait Service {
    /// Its name in logs and usage, e.g. `order-svc`.
    const NAME: &'static str;
    /// One line on what it does, for `--help`.
    const SUMMARY: &'static str;
    /// What `healthcheck` asks.
    const PROBE: Probe;
    /// Its configuration, read once at start-up.
    type Config: Send + 'static;
    /// What it builds and runs (`serve`): listeners, storage, background work.
    type App: crate::app::Application<Config = Self::Config>;

    /// Reads the configuration of the standalone binary.
    fn config(env: &Env) -> Result<Self::Config, ConfigError>;

    /// The `migrate` subcommand, for a service that owns a database: its
    /// work from the configuration (see [`migrate_with`]). `None` offers no
    /// such command.
    const MIGRATE: Option<fn(Self::Config) -> Work> = None;

    /// Commands of this service alone (user-svc's `keygen`).
    fn extra_commands() -> Vec<Command<'static>> {
        Vec::new()
    }
}

/// The `migrate` subcommand of gRPC service `S`: its database brought up
/// to date with its migrations (`const MIGRATE = Some(migrate::<Self>)`).
pub fn migrate<S: crate::app::GrpcService>(config: S::Config) -> Work {
    migrate_with::<S::Migrator>(S::INFO.name, S::base(&config).database_url.clone())
}

/// The work of a `migrate` subcommand: brings the schema of `url` up to
/// date with `M`'s migrations and exits.
pub fn migrate_with<M: MigratorTrait>(name: &'static str, url: DatabaseUrl) -> Work {
    Box::pin(async move {
        oms_store::db::connect_and_migrate::<M>(&url, Default::default()).await?;
        tracing::info!(service = name, "the schema is up to date");
        Ok(())
    })
}

/// The whole `main` of a service binary.
pub fn main<S: Service>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    program::<S>().run(&args)
}

/// The command line of a service binary (public for tests of the usage).
pub fn program<S: Service>() -> Program<'static> {
    let mut commands = vec![Command::new(
        "serve",
        "serve until SIGTERM or Ctrl-C",
        || {
            crate::startup::run(S::NAME, |env| async move {
                let app = S::App::build(S::config(&env)?).await?;
                app.run_until_stopped(Box::pin(crate::shutdown::signal()))
                    .await
            })
        },
    )];
    if let Some(migrate) = S::MIGRATE {
        commands.push(Command::new(
            "migrate",
            "bring the database schema up to date and exit (a deployment's one-off job)",
            move || {
                crate::startup::run(
                    S::NAME,
                    |env| async move { migrate(S::config(&env)?).await },
                )
            },
        ));
    }
    commands.push(Command::new(
        "healthcheck",
        "exit 0 if the server at the listen address serves (container health checks)",
        || {
            crate::healthcheck::run(S::NAME, S::PROBE, |env| {
                S::config(env).map(|c| S::App::listen_addr(&c))
            })
        },
    ));
    commands.push(Command::new(
        "env-vars",
        "list the environment variables it reads, one per line",
        || crate::cli::print_env_vars(|env| S::config(env).map(drop)),
    ));
    commands.extend(S::extra_commands());
    Program {
        name: S::NAME,
        summary: S::SUMMARY,
        commands,
        default_command: "serve",
        env_vars: |env| S::config(env).map(drop),
    }
}
