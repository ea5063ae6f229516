//! The command line of every binary: subcommands, `--help`, `--version`,
//! and exit code 2 with the usage for anything it does not know. Each
//! binary describes its commands; parsing and usage text live here once.

use std::fmt::Write as _;
use std::process::ExitCode;

use oms_config::{ConfigError, Env};

/// What a command does with the arguments after its name.
pub type Run<'a> = Box<dyn FnOnce(&[String]) -> ExitCode + 'a>;

/// One subcommand of a binary.
pub struct Command<'a> {
    /// What the operator types, e.g. `migrate`.
    pub name: &'static str,
    /// Its arguments as shown in the usage, e.g. `<client_id> <scope>…`.
    pub args: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    /// Whether it takes arguments after its name (others refuse any).
    pub takes_args: bool,
    /// Runs it with the arguments after its name.
    pub run: Run<'a>,
}

impl<'a> Command<'a> {
    /// A command that takes no arguments.
    pub fn new(
        name: &'static str,
        about: &'static str,
        run: impl FnOnce() -> ExitCode + 'a,
    ) -> Self {
        Self {
            name,
            args: "",
            about,
            takes_args: false,
            run: Box::new(move |_| run()),
        }
    }

    /// A command with arguments, shown as `args` in the usage.
    pub fn with_args(
        name: &'static str,
        args: &'static str,
        about: &'static str,
        run: impl FnOnce(&[String]) -> ExitCode + 'a,
    ) -> Self {
        Self {
            name,
            args,
            about,
            takes_args: true,
            run: Box::new(run),
        }
    }
}

/// A binary's command line.
pub struct Program<'a> {
    /// The binary's name, e.g. `order-svc`.
    pub name: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// Its commands.
    pub commands: Vec<Command<'a>>,
    /// The command that runs with no arguments (e.g. `serve`).
    pub default_command: &'static str,
    /// Loads the configuration with nothing set, so the usage can list
    /// every variable the binary reads.
    pub env_vars: fn(&Env) -> Result<(), ConfigError>,
}

impl Program<'_> {
    /// Parses `args` (without the program name) and runs what they ask.
    pub fn run(self, args: &[String]) -> ExitCode {
        let (first, rest) = match args.split_first() {
            Some((first, rest)) => (first.as_str(), rest),
            None => (self.default_command, &[][..]),
        };
        match first {
            "-h" | "--help" | "help" => {
                print!("{}", self.usage());
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("{} {}", self.name, env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => {}
        }
        let usage = self.usage();
        let name = self.name;
        let Some(command) = self.commands.into_iter().find(|c| c.name == first) else {
            eprintln!("{name}: unknown argument {first:?}\n\n{usage}");
            return ExitCode::from(2);
        };
        if rest.iter().any(|a| a == "-h" || a == "--help") {
            print!("{usage}");
            return ExitCode::SUCCESS;
        }
        if !command.takes_args && !rest.is_empty() {
            eprintln!("{name}: {first} takes no arguments (got {rest:?})\n\n{usage}");
            return ExitCode::from(2);
        }
        (command.run)(rest)
    }

    /// The text `--help` prints.
    pub fn usage(&self) -> String {
        let mut text = format!(
            "{} {} — {}\n\nUsage:\n",
            self.name,
            env!("CARGO_PKG_VERSION"),
            self.summary
        );
        let width = self
            .commands
            .iter()
            .map(|c| self.name.len() + 1 + c.name.len() + 1 + c.args.chars().count())
            .max()
            .unwrap_or(0);
        for command in &self.commands {
            let line = [self.name, command.name, command.args]
                .iter()
                .filter(|part| !part.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let default = if command.name == self.default_command {
                " (the default: what runs with no arguments)"
            } else {
                ""
            };
            // `{:width$}` pads by characters, as counted above.
            let _ = writeln!(text, "  {line:width$}  {}{default}", command.about);
        }
        let _ = writeln!(
            text,
            "  {:width$}  this text; --version prints the version",
            format!("{} --help", self.name)
        );
        text.push_str("\nEnvironment variables read (unset = default):\n");
        let env = Env::from_pairs(std::iter::empty::<(String, String)>());
        let vars = match (self.env_vars)(&env) {
            Ok(()) => listed_vars(&env),
            Err(e) => vec![format!("(cannot list them: {e})")],
        };
        for var in vars {
            let _ = writeln!(text, "  {var}");
        }
        text.push_str("\nEvery variable is described in README.md (section \"Configuration\").\n");
        text
    }
}

/// The variables `env` was asked for, plus the ones the log filter,
/// telemetry and the runtime read outside the configuration loaders,
/// sorted.
fn listed_vars(env: &Env) -> Vec<String> {
    let _ = oms_telemetry::TelemetryConfig::from_env(env, "");
    let _ = env.worker_threads();
    let mut vars = env.asked();
    vars.push("RUST_LOG".to_owned());
    vars.sort();
    vars.dedup();
    vars
}

/// The `env-vars` subcommand: prints every environment variable the binary
/// reads, one per line. Deployment files are checked against this list.
pub fn print_env_vars(read: fn(&Env) -> Result<(), ConfigError>) -> ExitCode {
    let env = Env::from_pairs(std::iter::empty::<(String, String)>());
    // Defaults must load; if not, the list would be incomplete.
    if let Err(e) = read(&env) {
        eprintln!("cannot load the default configuration: {e}");
        return ExitCode::FAILURE;
    }
    for var in listed_vars(&env) {
        println!("{var}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn program<'a>(served: &'a Cell<bool>, got: &'a Cell<usize>) -> Program<'a> {
        Program {
            name: "demo",
            summary: "a demo",
            commands: vec![
                Command::new("serve", "serve", || {
                    served.set(true);
                    ExitCode::SUCCESS
                }),
                Command::with_args("echo", "<word>…", "count words", |args| {
                    got.set(args.len());
                    ExitCode::SUCCESS
                }),
            ],
            default_command: "serve",
            env_vars: |env| env.get("DEMO_ADDR").map(drop),
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn help_and_version_answer_without_running_anything() {
        let (served, got) = (Cell::new(false), Cell::new(0));
        for flag in ["--help", "-h", "--version", "-V"] {
            assert_eq!(
                program(&served, &got).run(&args(&[flag])),
                ExitCode::SUCCESS
            );
        }
        assert!(!served.get());
        let usage = program(&served, &got).usage();
        assert!(usage.contains("demo echo <word>…"), "{usage}");
        assert!(usage.contains("DEMO_ADDR"), "{usage}");
        assert!(usage.contains("RUST_LOG"), "{usage}");
    }

    #[test]
    fn no_arguments_serve_and_unknown_ones_exit_2() {
        let (served, got) = (Cell::new(false), Cell::new(0));
        assert_eq!(program(&served, &got).run(&[]), ExitCode::SUCCESS);
        assert!(served.get());
        served.set(false);
        assert_eq!(
            program(&served, &got).run(&args(&["--frobnicate"])),
            ExitCode::from(2)
        );
        assert_eq!(
            program(&served, &got).run(&args(&["serve", "extra"])),
            ExitCode::from(2)
        );
        assert!(!served.get());
        program(&served, &got).run(&args(&["echo", "a", "b"]));
        assert_eq!(got.get(), 2);
    }
}
