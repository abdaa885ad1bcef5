//! `NLEBENCH_*` variables that are no setting of nlebench: a misspelt one would otherwise be
//! ignored without a word, so each gets a warning naming the closest setting.

use clap::CommandFactory;

use crate::args::Cli;

/// Variables read outside the flags: by nlebench itself, by its test suite and CI, and by
/// the compose files of `deploy/podman`.
const OTHER: [&str; 14] = [
    "NLEBENCH_LOG",
    "NLEBENCH_PASSWORD",
    "NLEBENCH_TEST_DATABASE_URL",
    "NLEBENCH_TEST_REDIS_URL",
    "NLEBENCH_RELIABILITY_OUT",
    "NLEBENCH_TEST_CONTAINERS",
    "NLEBENCH_TEST_MLFLOW",
    "NLEBENCH_TEST_LMEVAL",
    "NLEBENCH_TEST_TMPFS",
    "NLEBENCH_SOAK_SECS",
    "NLEBENCH_TEST_FAULT_ABORT_MODEL",
    "NLEBENCH_PG_PORT",
    "NLEBENCH_REDIS_PORT",
    "NLEBENCH_WEB_PORT",
];

/// Every variable name nlebench knows: each flag's and [`OTHER`].
fn known() -> Vec<String> {
    fn walk(c: &clap::Command, out: &mut Vec<String>) {
        out.extend(
            c.get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
        for sub in c.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out: Vec<String> = OTHER.iter().map(|s| s.to_string()).collect();
    walk(&Cli::command(), &mut out);
    out.sort();
    out.dedup();
    out
}

/// A warning for each `NLEBENCH_*` name in `names` that nlebench does not read.
pub fn warnings(names: impl Iterator<Item = String>) -> Vec<String> {
    let known = known();
    let mut out: Vec<String> = names
        .filter(|n| n.starts_with("NLEBENCH_") && !known.contains(n))
        .map(|n| {
            let near = known
                .iter()
                .map(|k| (strsim::levenshtein(&n, k), k))
                .filter(|(d, _)| *d <= 3)
                .min();
            match near {
                Some((_, k)) => format!("{n} is not a setting of nlebench and is ignored; did you mean {k}?"),
                None => format!(
                    "{n} is not a setting of nlebench and is ignored (the settings are in `nlebench --help` and the README's configuration table)"
                ),
            }
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_and_unknown_variables_are_named_and_known_ones_are_not() {
        let names = [
            "NLEBENCH_HEARTBEAT_SEC",
            "NLEBENCH_DATABASE_URL",
            "NLEBENCH_WORKER_NAME",
            "NLEBENCH_TEST_DATABASE_URL",
            "NLEBENCH_LOG",
            "NLEBENCH_SOMETHING_ELSE",
            "PATH",
        ];
        let w = warnings(names.iter().map(|s| s.to_string()));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("NLEBENCH_HEARTBEAT_SEC ")
                && w[0].contains("did you mean NLEBENCH_HEARTBEAT_SECS?"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with("NLEBENCH_SOMETHING_ELSE ") && !w[1].contains("did you mean"),
            "{w:?}"
        );
    }
}
