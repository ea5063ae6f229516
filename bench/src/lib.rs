//! oms-bench: measures the OMS mesh under load against ceilings measured in
//! the same run (plain tonic, a bare sea-orm loop), so results read as
//! ratios that hold across machines. See BENCHMARKS.md.

#![forbid(unsafe_code)]

pub mod broker;
pub mod ceiling;
pub mod chaos;
pub mod cli;
pub mod compare;
pub mod db_ceiling;
pub mod driver;
pub mod fixtures;
pub mod forwarder;
pub mod http_client;
pub mod invariants;
pub mod mesh;
pub mod netem;
pub mod procfs;
pub mod replicas;
pub mod report;
pub mod scenarios;
pub mod seed;
pub mod soak;
pub mod statements;
pub mod svg;

/// Why a bench run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Starting, seeding or connecting failed.
    #[error("{0}")]
    Setup(String),
    /// An RPC or HTTP call the setup needed failed.
    #[error("{what}: {status}")]
    Call {
        what: &'static str,
        status: Box<tonic::Status>,
    },
    /// Some runs had errors or not one successful operation.
    #[error("runs that failed: {0}")]
    Failed(String),
    /// Writing the result file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl From<testkit::servers::SetupError> for BenchError {
    fn from(error: testkit::servers::SetupError) -> Self {
        Self::Setup(error.0)
    }
}

impl BenchError {
    /// Wraps a failed setup RPC.
    pub fn call(what: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::Call {
            what,
            status: Box::new(status),
        }
    }
}

/// Runs what the command line asks for.
pub async fn run(cli: cli::Cli) -> Result<(), BenchError> {
    match cli.command {
        Some(cli::Command::CeilingServer { addr }) => ceiling::serve(addr).await,
        Some(cli::Command::Forwarder { addr, product }) => forwarder::serve(addr, product).await,
        Some(cli::Command::Compare { old, new }) => {
            println!(
                "{}",
                compare::tables(&compare::load(&old)?, &compare::load(&new)?)
            );
            Ok(())
        }
        Some(cli::Command::Mesh) => scenarios::hold_mesh(cli.run).await,
        None => scenarios::run(cli.run.effective()).await,
    }
}
