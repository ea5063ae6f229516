//! The settings every property test of the workspace runs with.

/// The settings of every property test in the workspace: `cases` inputs
/// per property, and no failure files: a failure prints its minimal case,
/// and nothing is written into the work tree.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
