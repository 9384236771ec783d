//! Metrics through the `metrics` facade, compiled to nothing without the
//! `metrics` feature. Names are documented in the crate docs.

use std::time::Duration;

#[cfg(feature = "metrics")]
mod names {
    pub(super) const VALIDATIONS: &str = "tower_principal_jwt_validations_total";
    pub(super) const FETCHES: &str = "tower_principal_jwt_jwks_fetches_total";
    pub(super) const FETCH_DURATION: &str = "tower_principal_jwt_jwks_fetch_duration_seconds";
    pub(super) const KEYS: &str = "tower_principal_jwt_jwks_keys";
    pub(super) const AGE: &str = "tower_principal_jwt_jwks_age_seconds";
}

/// One validation finished with `outcome` (`"valid"` or a reason name).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn validation(issuer: &str, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(names::VALIDATIONS, "issuer" => issuer.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// One fetch of `source` finished with `result` after `elapsed`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn fetch(source: &str, result: &'static str, elapsed: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(names::FETCHES, "source" => source.to_owned(), "result" => result)
            .increment(1);
        metrics::histogram!(names::FETCH_DURATION, "source" => source.to_owned())
            .record(elapsed.as_secs_f64());
    }
}

/// The cache of `source` holds `keys` keys, refreshed `age` ago.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn cache(source: &str, keys: usize, age: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!(names::KEYS, "source" => source.to_owned()).set(keys as f64);
        metrics::gauge!(names::AGE, "source" => source.to_owned()).set(age.as_secs_f64());
    }
}

#[cfg(test)]
#[cfg(feature = "metrics")]
mod tests {
    use std::sync::Mutex;

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

    use super::*;

    /// Records which metrics are registered, with their labels.
    #[derive(Default)]
    struct Names(Mutex<Vec<String>>);

    impl Names {
        fn note(&self, key: &Key) {
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            let entry = format!("{}{{{}}}", key.name(), labels.join(","));
            self.0.lock().unwrap().push(entry);
        }
    }

    impl metrics::Recorder for Names {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.note(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.note(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.note(key);
            Histogram::noop()
        }
    }

    #[test]
    fn metric_names_and_labels_are_the_documented_ones() {
        let names = Names::default();
        metrics::with_local_recorder(&names, || {
            validation("https://idp/", "expired");
            fetch("https://idp/", "not_modified", Duration::from_millis(3));
            cache("https://idp/", 3, Duration::from_secs(1));
        });
        assert_eq!(
            names.0.into_inner().unwrap(),
            [
                "tower_principal_jwt_validations_total{issuer=https://idp/,outcome=expired}",
                "tower_principal_jwt_jwks_fetches_total{source=https://idp/,result=not_modified}",
                "tower_principal_jwt_jwks_fetch_duration_seconds{source=https://idp/}",
                "tower_principal_jwt_jwks_keys{source=https://idp/}",
                "tower_principal_jwt_jwks_age_seconds{source=https://idp/}",
            ]
        );
    }
}
