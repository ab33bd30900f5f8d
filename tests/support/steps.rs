//! Where the suite's time goes: each slow step (a generated project's build, its test run, a
//! checker) appends its seconds to the file `MICROFRAMEWORK_STEPS` names, and `scripts/test`
//! prints the slowest at its end. Without that variable nothing is written.

use std::io::Write;
use std::time::{Duration, Instant};

/// Appends `<kind>\t<value>\t<label>` to the steps file, one write per line so that parallel
/// tests and test binaries never interleave within a line.
fn append(kind: &str, value: &str, label: &str) {
    let Some(path) = std::env::var_os("MICROFRAMEWORK_STEPS") else {
        return;
    };
    let line = format!("{kind}\t{value}\t{}\n", label.replace(['\t', '\n'], " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!("cannot record a step in {}: {err}", path.to_string_lossy());
    }
}

/// Records that `label` took `took`.
pub fn record(label: &str, took: Duration) {
    append("step", &format!("{:.1}", took.as_secs_f64()), label);
}

/// Runs `work` and records how long it took under `label`.
pub fn timed<T>(label: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = work();
    record(label, started.elapsed());
    result
}

/// Records that a generated project's test run (`label`) passed `passed` tests.
pub fn record_passed(label: &str, passed: usize) {
    append("passed", &passed.to_string(), label);
}
