//! This process's counters, read from its Prometheus text: a service a
//! test runs in process counts into the test's own recorder.

/// The sum of counter `name` over its series whose labels contain `label`
/// (e.g. `limit="calls"`; `""` for every series).
pub fn counter(name: &str, label: &str) -> u64 {
    oms_telemetry::metrics::render()
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_summed_over_its_matching_series_only() {
        oms_telemetry::metrics::install();
        metrics::counter!("testkit_probe_total", "kind" => "a").increment(2);
        metrics::counter!("testkit_probe_total", "kind" => "b").increment(3);
        metrics::counter!("testkit_probe_total_other").increment(7);
        assert_eq!(counter("testkit_probe_total", ""), 5);
        assert_eq!(counter("testkit_probe_total", "kind=\"b\""), 3);
        assert_eq!(counter("testkit_probe_absent_total", ""), 0);
    }
}
