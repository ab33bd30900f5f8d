//! Mutation fuzzing of what a stranger controls: `microframework.toml` (through `gen`, which
//! writes), service specs and protos (through the whole render pipeline), in-process and
//! bounded in time. Every mutated input must give a result or an error: no panic, no error on
//! more than one line, and nothing written outside the project whatever the record says.
//!
//! `MICROFRAMEWORK_FUZZ_SECONDS` (default 5) is each target's budget and
//! `MICROFRAMEWORK_FUZZ_SEED` picks the run; a failure prints the seed and the input.

use std::{
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use microframework::{
    cli::FeatureArgs,
    commands::{
        gen,
        pipeline::{render_new_project, render_proto_project, render_spec_project},
    },
    input::ProtoInput,
    model::features::Features,
    plan::templates::Templates,
    report::Verbosity,
    write::create_project,
};

/// A small, seedable generator (xorshift64*): the same seed gives the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces that reach the parsers' corners: delimiters, quotes, paths out of the project,
/// huge and negative numbers, control characters and non-ASCII text.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "\"",
    "'",
    "=",
    ";",
    ",",
    ".",
    "\n",
    "\t",
    "\0",
    "\u{1b}[31m",
    "::error::",
    "..",
    "../",
    "/",
    "/etc/passwd",
    "../../victim.txt",
    "-1",
    "0",
    "4294967296",
    "99999999999999999999",
    "1e309",
    "true",
    "é",
    "𝔘",
    "\\",
    "\\u0000",
    "#",
    "//",
    "/*",
    "*/",
    "[[resources]]",
    "[files]",
    "[features]",
    "name = \"../x\"",
    "templates_dir = \"/usr\"",
    "\"../victim.txt\" = \"cbf29ce484222325\"",
    "service",
    "message",
    "rpc",
    "stream",
    "returns",
    "import \"",
    "option",
    "map<",
    "oneof",
    "repeated",
    "syntax = \"proto2\";",
    "extend",
    "group",
    "{{",
    "}}",
    "{%",
    "%}",
];

/// `seed` with one to four random edits at character boundaries.
fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(text.len() + 1);
        match rng.below(5) {
            0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, token.chars());
            }
            1 if at < text.len() => {
                let end = (at + 1 + rng.below(40)).min(text.len());
                text.drain(at..end);
            }
            2 if at < text.len() => {
                let end = (at + 1 + rng.below(200)).min(text.len());
                let copy: Vec<char> = text[at..end].to_vec();
                let to = rng.below(text.len() + 1);
                text.splice(to..to, copy);
            }
            3 if at < text.len() => {
                text[at] = char::from(b' ' + rng.below(95) as u8);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, token.chars());
                let again = rng.below(text.len() + 1);
                text.splice(again..again, token.chars());
            }
        }
    }
    text.into_iter().collect()
}

fn budget() -> Duration {
    let seconds = std::env::var("MICROFRAMEWORK_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("MICROFRAMEWORK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// Runs `target` on mutations of `seeds` until the budget is spent; each outcome must be a
/// result or an error that says something.
fn fuzz(name: &str, seeds: &[String], mut target: impl FnMut(&str) -> anyhow::Result<()>) {
    let seed = seed();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut runs, mut refused) = (0, 0);
    while started.elapsed() < budget() {
        let chosen = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, chosen);
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let context = || format!("{name}, MICROFRAMEWORK_FUZZ_SEED={seed}, input:\n{input}");
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                refused += 1;
                let message = format!("{err:#}");
                assert!(!message.trim().is_empty(), "an empty error: {}", context());
            }
            Err(_) => panic!("panicked on {}", context()),
        }
        runs += 1;
    }
    eprintln!(
        "{name}: {runs} mutated inputs ({refused} refused) in {budget:?}, seed {seed}",
        budget = budget()
    );
    assert!(runs > 0);
}

fn read_fixtures(dir: &str, extension: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut pending = vec![root];
    let mut found = Vec::new();
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(fs::read_to_string(&path).unwrap());
            }
        }
    }
    assert!(!found.is_empty(), "no .{extension} under {dir}");
    found
}

#[test]
fn mutated_specs_are_rendered_or_refused() {
    let templates = Templates::embedded().unwrap();
    let seeds: Vec<String> = read_fixtures("fixtures/specs", "toml");
    fuzz("specs", &seeds, |text| {
        render_spec_project(
            "fuzz-spec",
            Path::new("spec.toml"),
            text,
            &Features::default(),
            &templates,
        )
        .map(|_| ())
    });
}

#[test]
fn mutated_protos_are_rendered_or_refused() {
    let templates = Templates::embedded().unwrap();
    let seeds = read_fixtures("fixtures/protos", "proto");
    fuzz("protos", &seeds, |text| {
        let mut input = ProtoInput::default();
        input.memory.insert("fuzz/v1/fuzz.proto", text);
        input.roots.push("fuzz/v1/fuzz.proto".to_owned());
        render_proto_project("fuzz-proto", &input, &Features::default(), &templates).map(|_| ())
    });
}

/// Every path under `dir` except those under `skip`.
fn listing(dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.starts_with(skip) {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn mutated_records_never_reach_outside_the_project() {
    let templates = Templates::embedded().unwrap();
    let work = tempfile::tempdir().unwrap();
    // The project sits two levels down, beside files a hostile record would aim at.
    let project = work.path().join("team/fuzz-record");
    fs::create_dir_all(work.path().join("team")).unwrap();
    fs::write(work.path().join("victim.txt"), "").unwrap();
    fs::write(work.path().join("team/victim.txt"), "").unwrap();
    let (_, files) = render_new_project("fuzz-record", &Features::default(), &templates).unwrap();
    create_project(&project, &files).unwrap();
    let record_path = project.join("microframework.toml");
    let pristine = fs::read_to_string(&record_path).unwrap();
    let outside = listing(work.path(), &project);
    let mut rng = Rng(seed());
    fuzz("microframework.toml", &[pristine], |text| {
        fs::write(&record_path, text).unwrap();
        let dry_run = rng.below(4) == 0;
        let force = rng.below(2) == 0;
        let outcome = gen::run(
            Some(&project),
            dry_run,
            force,
            rng.below(2) == 0,
            &FeatureArgs::default(),
            Verbosity::Quiet,
        );
        assert_eq!(listing(work.path(), &project), outside, "gen wrote outside");
        assert_eq!(fs::read(work.path().join("victim.txt")).unwrap(), b"");
        outcome
    });
}
