//! The command line every binary shares, checked from outside: `--help`,
//! `--version` and unknown arguments, as an operator would type them.

use std::process::Command;

/// Runs `binary` with `args` and nothing configured; returns the exit
/// code, stdout and stderr.
pub fn run_binary(binary: &str, args: &[&str]) -> (i32, String, String) {
    let output = match Command::new(binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!("cannot run {binary}: {e}"),
    };
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `--help` and `-h` print a usage naming every command in `commands` and
/// the variable `a_var` among those read, and exit 0 without serving;
/// `--version` prints the version; an unknown argument exits 2 with the
/// usage on stderr.
pub fn assert_cli_basics(binary: &str, name: &str, commands: &[&str], a_var: &str) {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run_binary(binary, &[flag]);
        assert_eq!(code, 0, "{name} {flag}: {err}");
        assert!(
            out.starts_with(&format!("{name} ")),
            "{name} {flag}:\n{out}"
        );
        for command in commands {
            assert!(
                out.contains(&format!("{name} {command}")),
                "{name} {flag} does not list {command}:\n{out}"
            );
        }
        assert!(
            out.contains(a_var),
            "{name} {flag} does not list {a_var}:\n{out}"
        );
        assert!(out.contains("README.md"), "{name} {flag}:\n{out}");
    }
    let (code, out, _) = run_binary(binary, &["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("{name} {}", env!("CARGO_PKG_VERSION")));
    let (code, out, err) = run_binary(binary, &["--frobnicate"]);
    assert_eq!(code, 2, "an unknown argument is an error: {out}{err}");
    assert!(
        err.contains("unknown argument") && err.contains("Usage:"),
        "{err}"
    );
}
