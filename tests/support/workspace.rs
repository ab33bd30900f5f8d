//! Generated projects as the end-to-end tests build them: members of a temporary Cargo
//! workspace, every workspace sharing one target directory.
//!
//! Cargo compiles a dependency again for every new set of its features (they are hashed into
//! the artifact), and generated projects differ in theirs: tonic with TLS or without, sqlx
//! with PostgreSQL or SQLite, redis, hickory, OpenTelemetry... So each workspace also holds
//! `e2e-deps`, an empty library depending on every crate any generated project depends on,
//! with every feature any of them enables. Cargo unifies features across the packages one
//! command builds, so every workspace asks for the same features and each dependency compiles
//! once for the whole suite. What unification could hide (a project that lacks a feature
//! another member enables) is caught by the builds that stay standalone, as a user runs them:
//! the Dockerfile test's release build of the default project.
//!
//! Clippy runs as the compiler of the build itself (cargo's `RUSTC_WORKSPACE_WRAPPER`, which
//! is how `cargo clippy` runs it, with `-D warnings`), so one compilation of every target both
//! lints it and makes the test executables; the suite then runs those executables itself, a
//! project's one after the other as `cargo test` does, and times each project's run.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use assert_cmd::Command as BinCommand;
use microframework::{
    commands::pipeline::{render_new_project, render_spec_project},
    plan::templates::Templates,
};
use serde_json::Value;

use super::{steps, FEATURE_SETS, SPEC_FIXTURES};

/// The member holding every dependency with every feature.
const DEPS_CRATE: &str = "e2e-deps";

/// The runtime crate every generated project depends on, as `runtime/`.
const RUNTIME_CRATE: &str = "microframework-runtime";

/// Held while cargo builds in the shared target directory. Cargo takes a lock of its own
/// there, so builds could not overlap anyway; this one lets a build be timed from when it
/// starts, not from when it began to wait, and keeps a binary cargo just made in place
/// until its path is noted.
static BUILDING: Mutex<()> = Mutex::new(());

/// Where every generated project is built: `MICROFRAMEWORK_E2E_TARGET`, or `target/e2e`.
pub fn shared_target_dir() -> PathBuf {
    std::env::var_os("MICROFRAMEWORK_E2E_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e"))
}

/// A generated project, a member of a [`Workspace`].
#[derive(Clone, Debug)]
pub struct Project {
    /// Its directory.
    pub dir: PathBuf,
    /// Its package name.
    pub name: String,
}

impl Deref for Project {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl AsRef<Path> for Project {
    fn as_ref(&self) -> &Path {
        &self.dir
    }
}

/// What a build made of one member.
#[derive(Debug, Default)]
struct Artifacts {
    /// Test executables in the order `cargo test` runs them: the library's unit tests, the
    /// binaries', then each integration test.
    tests: Vec<(TestKind, String, PathBuf)>,
    /// Binaries by name.
    binaries: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TestKind {
    Library,
    Binary,
    Integration,
}

/// One project's test run.
#[derive(Debug)]
pub struct TestRun {
    /// Tests passed, over every executable.
    pub passed: usize,
    /// What the executables wrote to stderr.
    pub stderr: String,
}

/// A Cargo workspace of generated projects (see the module's documentation).
pub struct Workspace {
    label: String,
    root: PathBuf,
    /// Removed with the workspace.
    _temp: Option<tempfile::TempDir>,
    members: Mutex<Vec<Project>>,
    artifacts: Mutex<BTreeMap<PathBuf, Artifacts>>,
    /// What cargo made of the members: removed when the workspace is dropped, since it is
    /// most of the suite's disk use while the dependencies stay shared.
    outputs: Mutex<BTreeSet<PathBuf>>,
}

impl Workspace {
    /// An empty workspace in a temporary directory; `label` names it in the steps table.
    pub fn new(label: &str) -> Self {
        let temp = tempfile::Builder::new()
            .prefix(&format!("e2e-{label}-"))
            .tempdir()
            .expect("a temporary directory");
        Self {
            label: label.to_owned(),
            root: temp.path().to_path_buf(),
            _temp: Some(temp),
            members: Mutex::default(),
            artifacts: Mutex::default(),
            outputs: Mutex::default(),
        }
    }

    /// The directory members are generated in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `microframework new NAME --type=grpc --quiet EXTRA...` in the workspace and adds
    /// the project.
    pub fn generate(&self, name: &str, extra: &[String]) -> Project {
        BinCommand::cargo_bin("microframework")
            .expect("binary is built")
            .current_dir(&self.root)
            .args(["new", name, "--type=grpc", "--quiet"])
            .args(extra)
            .assert()
            .success();
        self.adopt(&self.root.join(name))
    }

    /// Adds the project in `dir`, a directory of the workspace's, as a member.
    pub fn adopt(&self, dir: &Path) -> Project {
        assert!(
            dir.starts_with(&self.root),
            "{} is outside the workspace",
            dir.display()
        );
        let manifest: toml::Table = read(&dir.join("Cargo.toml"))
            .parse()
            .expect("the project's Cargo.toml parses");
        let name = manifest["package"]["name"]
            .as_str()
            .expect("a package name")
            .to_owned();
        let project = Project {
            dir: dir.to_path_buf(),
            name,
        };
        self.members.lock().unwrap().push(project.clone());
        project
    }

    /// Builds every member's targets (libraries, binaries, tests) with clippy as the compiler
    /// and `-D warnings`, then runs their doc tests: what `cargo clippy --all-targets -- -D
    /// warnings` and the build half of `cargo test` do, in one compilation.
    pub fn build(&self) {
        let members = self.members.lock().unwrap().clone();
        self.write_manifests(&members);
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let label = format!("build {}: {}", self.label, names.join(", "));
        let building = BUILDING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        // The runtime crate's own tests run in the tool's workspace, not here.
        let skip_runtime = ["--exclude", RUNTIME_CRATE];
        let build = [
            ["test", "--workspace", "--all-targets", "--no-run"].as_slice(),
            &skip_runtime,
        ];
        let output = self.cargo_unlocked(&self.root, &build.concat(), &[]);
        self.record_build(&members, &output.stdout);
        let doc = [
            ["test", "--workspace", "--doc", "--quiet"].as_slice(),
            &skip_runtime,
        ]
        .concat();
        self.cargo_unlocked(&self.root, &doc, &[]);
        steps::record(&label, started.elapsed());
        drop(building);
        save_seed_lockfile(&self.root);
    }

    /// Runs cargo in `dir` as the suite builds (what it builds of the members replaces what
    /// the last build made): the shared target directory, no debug info or
    /// incremental state (a tonic test executable with full debug info is some 100 MB, and
    /// every project has several), protoc disabled, clippy as the members' compiler. Fails
    /// the test, with cargo's output, if cargo fails.
    pub fn cargo(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let _building = BUILDING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let output = self.cargo_unlocked(dir, args, env);
        let members = self.members.lock().unwrap().clone();
        self.record_build(&members, &output.stdout);
        output
    }

    /// [`Workspace::cargo`], for a caller holding [`BUILDING`].
    fn cargo_unlocked(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = args.to_vec();
        let builds = matches!(args[0], "build" | "check" | "test");
        if builds {
            args.insert(1, "--message-format=json-render-diagnostics");
        }
        let output = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(dir)
            .envs(build_env())
            .env("RUSTC_WORKSPACE_WRAPPER", clippy_driver())
            .env(
                "CLIPPY_ARGS",
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
            )
            .env_remove("RUSTFLAGS")
            .envs(env.iter().copied())
            .output()
            .expect("cargo runs");
        assert_success(&format!("cargo {}", args.join(" ")), dir, &output);
        output
    }

    /// Runs `project`'s test executables from the last build, in its directory, with `env`;
    /// fails the test with the executable's output if one fails.
    pub fn test(&self, project: &Project, env: &[(&str, &str)]) -> TestRun {
        let executables: Vec<(TestKind, String, PathBuf)> = self
            .artifacts
            .lock()
            .unwrap()
            .get(&project.dir)
            .unwrap_or_else(|| panic!("{} was not built", project.name))
            .tests
            .clone();
        assert!(!executables.is_empty(), "{} has no tests", project.name);
        let started = Instant::now();
        let mut run = TestRun {
            passed: 0,
            stderr: String::new(),
        };
        for (_, target, executable) in &executables {
            let output = Command::new(executable)
                .current_dir(&project.dir)
                .env("CARGO_MANIFEST_DIR", &project.dir)
                .env("CARGO_PKG_NAME", &project.name)
                .envs(env.iter().copied())
                .output()
                .unwrap_or_else(|err| panic!("cannot run {}: {err}", executable.display()));
            let what = format!("{}'s tests `{target}`", project.name);
            assert_success(&what, &project.dir, &output);
            run.passed += passed(&output.stdout);
            run.stderr
                .push_str(&String::from_utf8_lossy(&output.stderr));
        }
        // Each project's test executables (18 MB each, 2 GB over the suite) are run once per
        // build: they go, so the suite fits on a small disk; a later build links them again.
        if let Some(artifacts) = self.artifacts.lock().unwrap().get_mut(&project.dir) {
            artifacts.tests.clear();
        }
        for (_, _, executable) in &executables {
            let _ = std::fs::remove_file(executable);
        }
        let label = format!("tests {} ({})", project.name, self.label);
        steps::record(&label, started.elapsed());
        steps::record_passed(&label, run.passed);
        run
    }

    /// [`Workspace::test`] for several projects, three at a time: their tests mostly wait on
    /// servers and timers. Returns the runs in the order given.
    pub fn test_all(&self, runs: &[(&Project, &[(&str, &str)])]) -> Vec<TestRun> {
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Option<TestRun>>> = Mutex::new(runs.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..runs.len().min(3) {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((project, env)) = runs.get(index) else {
                        break;
                    };
                    let run = self.test(project, env);
                    done.lock().unwrap()[index] = Some(run);
                });
            }
        });
        done.into_inner()
            .unwrap()
            .into_iter()
            .map(|run| run.expect("every run finished"))
            .collect()
    }

    /// `cargo fmt --check` in `project`.
    pub fn fmt_check(&self, project: &Project) {
        let output = Command::new(env!("CARGO"))
            .args(["fmt", "--check"])
            .current_dir(&project.dir)
            .output()
            .expect("cargo fmt runs");
        assert_success("cargo fmt --check", &project.dir, &output);
    }

    /// The binary `name` of `project` (the package's own by default) from the last build.
    pub fn binary(&self, project: &Project) -> PathBuf {
        self.artifacts
            .lock()
            .unwrap()
            .get(&project.dir)
            .and_then(|artifacts| artifacts.binaries.get(&project.name).cloned())
            .unwrap_or_else(|| panic!("{} has no built binary", project.name))
    }

    /// The root manifest naming every member, and the dependencies' member.
    fn write_manifests(&self, members: &[Project]) {
        let mut paths: Vec<String> = members
            .iter()
            .map(|member| {
                member
                    .dir
                    .strip_prefix(&self.root)
                    .expect("members are inside the workspace")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        paths.push(DEPS_CRATE.to_owned());
        paths.push(RUNTIME_CRATE.to_owned());
        let mut workspace = toml::Table::new();
        workspace.insert("resolver".into(), "2".into());
        workspace.insert(
            "members".into(),
            toml::Value::Array(paths.into_iter().map(toml::Value::from).collect()),
        );
        let mut root = toml::Table::new();
        root.insert("workspace".into(), toml::Value::Table(workspace));
        write(&self.root.join("Cargo.toml"), &root.to_string());

        // One runtime crate for the workspace: each project holds its own copy in runtime/,
        // and cargo allows one package of a name and version per workspace. The copies are
        // the same embedded files (the container-image test builds a project's own).
        let runtime = self.root.join(RUNTIME_CRATE);
        for (path, contents) in microframework::input::sources::runtime_files() {
            let file = runtime.join(path);
            std::fs::create_dir_all(file.parent().expect("a parent"))
                .expect("the runtime's member");
            write(&file, contents);
        }
        let runtime_path = runtime.to_string_lossy().into_owned();
        for member in members {
            let manifest_path = member.dir.join("Cargo.toml");
            let mut manifest: toml::Table = read(&manifest_path)
                .parse()
                .expect("the project's Cargo.toml parses");
            // Both lines: the dependency, and the dev-dependency that adds `testing`.
            let mut changed = false;
            for table in ["dependencies", "dev-dependencies"] {
                let dependency = manifest
                    .get_mut(table)
                    .and_then(toml::Value::as_table_mut)
                    .and_then(|dependencies| dependencies.get_mut(RUNTIME_CRATE))
                    .and_then(toml::Value::as_table_mut);
                if let Some(dependency) = dependency {
                    if dependency.get("path").and_then(toml::Value::as_str) != Some(&runtime_path) {
                        dependency.insert("path".into(), runtime_path.clone().into());
                        changed = true;
                    }
                }
            }
            if changed {
                write(&manifest_path, &manifest.to_string());
            }
        }
        let mut union = DependencyUnion::suite().clone();
        for member in members {
            union.add_manifest(&read(&member.dir.join("Cargo.toml")));
        }
        if let Some(dependency) = union.normal.get_mut(RUNTIME_CRATE) {
            dependency.path = Some(runtime_path);
        }
        let deps = self.root.join(DEPS_CRATE);
        std::fs::create_dir_all(deps.join("src")).expect("the dependencies' member");
        write(&deps.join("Cargo.toml"), &union.manifest());
        write(
            &deps.join("src/lib.rs"),
            "//! Depends on every crate of the generated projects, with every feature they enable.\n",
        );
        // A build script, so that the build dependencies' features count too.
        write(&deps.join("build.rs"), "fn main() {}\n");
        let lockfile = self.root.join("Cargo.lock");
        if !lockfile.exists() {
            // Resolved once for the suite: the same versions everywhere, and no index queries.
            let _ = std::fs::copy(seed_lockfile(), lockfile);
        }
    }

    /// Notes the members' artifacts and outputs among cargo's JSON messages.
    fn record_build(&self, members: &[Project], stdout: &[u8]) {
        let mut built: BTreeMap<PathBuf, Artifacts> = BTreeMap::new();
        let mut outputs = self.outputs.lock().unwrap();
        for line in String::from_utf8_lossy(stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(member) = message["manifest_path"]
                .as_str()
                .map(Path::new)
                .and_then(Path::parent)
                .and_then(|dir| members.iter().find(|member| member.dir == dir))
            else {
                continue;
            };
            match message["reason"].as_str() {
                Some("compiler-artifact") => {
                    let files = message["filenames"].as_array().into_iter().flatten();
                    let executable = message["executable"].as_str().map(PathBuf::from);
                    let Some(executable) = executable else {
                        outputs.extend(files.filter_map(Value::as_str).map(PathBuf::from));
                        continue;
                    };
                    // A binary is also linked to `debug/NAME`, which the next project of that
                    // name takes over: keep its own file.
                    let executable = unique_file(&executable, &self.root);
                    outputs.insert(executable.clone());
                    let target = &message["target"];
                    let name = target["name"].as_str().unwrap_or_default().to_owned();
                    let kinds: Vec<&str> = target["kind"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let artifacts = built.entry(member.dir.clone()).or_default();
                    let kind = if kinds.contains(&"test") {
                        TestKind::Integration
                    } else if kinds.contains(&"bin") {
                        TestKind::Binary
                    } else {
                        TestKind::Library
                    };
                    if message["profile"]["test"].as_bool() == Some(true) {
                        artifacts.tests.push((kind, name, executable));
                    } else if kind == TestKind::Binary {
                        artifacts.binaries.insert(name, executable);
                    }
                }
                Some("build-script-executed") => {
                    if let Some(out_dir) = message["out_dir"].as_str() {
                        outputs.insert(PathBuf::from(out_dir));
                    }
                }
                _ => {}
            }
        }
        for artifacts in built.values_mut() {
            artifacts.tests.sort();
        }
        self.artifacts.lock().unwrap().extend(built);
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for output in self.outputs.get_mut().unwrap().iter() {
            if output.is_dir() {
                let _ = std::fs::remove_dir_all(output);
            } else {
                let _ = std::fs::remove_file(output);
            }
        }
    }
}

/// The file of `executable` that no later build replaces: for a binary cargo copied up to
/// `debug/NAME`, its hard link in `debug/deps/` (named with the build's hash), else a copy in
/// the workspace. Test executables are already there.
fn unique_file(executable: &Path, workspace: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;

    let Some(dir) = executable.parent() else {
        return executable.to_path_buf();
    };
    if dir.ends_with("deps") {
        return executable.to_path_buf();
    }
    let metadata = std::fs::metadata(executable)
        .unwrap_or_else(|err| panic!("{}: {err}", executable.display()));
    let linked = std::fs::read_dir(dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|entry| {
            entry
                .metadata()
                .is_ok_and(|other| other.ino() == metadata.ino() && other.dev() == metadata.dev())
        });
    match linked {
        Some(entry) => entry.path(),
        None => {
            let copies = workspace.join("bin");
            std::fs::create_dir_all(&copies).expect("a directory for binaries");
            let copy = copies.join(executable.file_name().expect("a file name"));
            std::fs::copy(executable, &copy)
                .unwrap_or_else(|err| panic!("{}: {err}", executable.display()));
            copy
        }
    }
}

/// The environment every build of a generated project gets, workspace or standalone.
pub fn build_env() -> [(&'static str, std::ffi::OsString); 5] {
    [
        ("CARGO_TARGET_DIR", shared_target_dir().into_os_string()),
        ("CARGO_INCREMENTAL", "0".into()),
        ("CARGO_PROFILE_DEV_DEBUG", "false".into()),
        ("CARGO_PROFILE_DEV_STRIP", "debuginfo".into()),
        ("PROTOC", "/bin/false".into()),
    ]
}

/// Fails the test with the output of `what` if it failed.
pub fn assert_success(what: &str, dir: &Path, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.starts_with("{\"reason\""))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The tests a test executable reports passed.
fn passed(stdout: &[u8]) -> usize {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .sum()
}

/// clippy's compiler driver, beside the toolchain's rustc.
fn clippy_driver() -> PathBuf {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .expect("rustc runs");
            let driver = Path::new(String::from_utf8_lossy(&sysroot.stdout).trim())
                .join("bin/clippy-driver");
            assert!(
                driver.exists(),
                "{} is missing: rustup component add clippy",
                driver.display()
            );
            driver
        })
        .clone()
}

fn seed_lockfile() -> PathBuf {
    shared_target_dir().join("e2e-seed.lock")
}

/// Keeps the workspace's resolved Cargo.lock for the next workspaces.
fn save_seed_lockfile(root: &Path) {
    let seed = seed_lockfile();
    if seed.exists() {
        return;
    }
    let partial = seed.with_extension(format!("lock.{}", std::process::id()));
    if std::fs::copy(root.join("Cargo.lock"), &partial).is_ok() {
        let _ = std::fs::rename(&partial, &seed);
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

/// One dependency as the union asks for it.
#[derive(Clone, Debug)]
struct Dependency {
    version: String,
    /// A crate of the project's own (the runtime crate).
    path: Option<String>,
    package: Option<String>,
    default_features: bool,
    features: BTreeSet<String>,
}

/// Every dependency of a set of manifests, with every feature any of them enables: normal
/// and dev-dependencies together (tests build both), build dependencies apart (cargo resolves
/// the host's features separately).
#[derive(Clone, Debug, Default)]
struct DependencyUnion {
    normal: BTreeMap<String, Dependency>,
    build: BTreeMap<String, Dependency>,
}

impl DependencyUnion {
    /// The union over the Cargo.toml of a new project and of each spec fixture's, with each
    /// feature set of the suite: every dependency any generated project has, so that every
    /// workspace asks for the same.
    fn suite() -> &'static Self {
        static SUITE: OnceLock<DependencyUnion> = OnceLock::new();
        SUITE.get_or_init(|| {
            let templates = Templates::embedded().expect("templates parse");
            let mut union = Self::default();
            for (label, features) in FEATURE_SETS {
                let (_, files) = render_new_project("deps-probe", features, &templates)
                    .unwrap_or_else(|err| panic!("{label}: {err:#}"));
                union.add_rendered(&files);
                for fixture in SPEC_FIXTURES {
                    let text = read(&fixture.path());
                    let (_, files) = render_spec_project(
                        fixture.name,
                        &fixture.path(),
                        &text,
                        features,
                        &templates,
                    )
                    .unwrap_or_else(|err| panic!("{}: {err:#}", fixture.name));
                    union.add_rendered(&files);
                }
            }
            union
        })
    }

    fn add_rendered(&mut self, files: &[microframework::render::RenderedFile]) {
        let manifest = files
            .iter()
            .find(|file| file.path == "Cargo.toml")
            .expect("a Cargo.toml");
        self.add_manifest(&manifest.contents);
    }

    /// Adds a manifest's dependencies; a dependency already present keeps its version.
    fn add_manifest(&mut self, text: &str) {
        let manifest: toml::Table = text.parse().expect("a Cargo.toml parses");
        let tables = [
            ("dependencies", false),
            ("dev-dependencies", false),
            ("build-dependencies", true),
        ];
        for (table, host) in tables {
            let Some(dependencies) = manifest.get(table).and_then(toml::Value::as_table) else {
                continue;
            };
            for (name, spec) in dependencies {
                let into = if host {
                    &mut self.build
                } else {
                    &mut self.normal
                };
                let parsed = Dependency::parse(spec);
                match into.get_mut(name) {
                    Some(known) => {
                        known.default_features |= parsed.default_features;
                        known.features.extend(parsed.features);
                    }
                    None => {
                        into.insert(name.clone(), parsed);
                    }
                }
            }
        }
        // `dep/feature` in the package's own features.
        let features = manifest.get("features").and_then(toml::Value::as_table);
        for enabled in features.into_iter().flat_map(|table| table.values()) {
            for entry in enabled.as_array().into_iter().flatten() {
                let Some((dependency, feature)) = entry.as_str().and_then(|e| e.split_once('/'))
                else {
                    continue;
                };
                let dependency = dependency.trim_end_matches('?');
                if let Some(known) = self.normal.get_mut(dependency) {
                    known.features.insert(feature.to_owned());
                }
            }
        }
    }

    /// The dependencies' member's Cargo.toml.
    fn manifest(&self) -> String {
        let table = |dependencies: &BTreeMap<String, Dependency>| {
            let mut table = toml::Table::new();
            for (name, dependency) in dependencies {
                table.insert(name.clone(), dependency.spec());
            }
            toml::Value::Table(table)
        };
        let mut package = toml::Table::new();
        package.insert("name".into(), DEPS_CRATE.into());
        package.insert("version".into(), "0.0.0".into());
        package.insert("edition".into(), "2021".into());
        package.insert("publish".into(), false.into());
        let mut manifest = toml::Table::new();
        manifest.insert("package".into(), toml::Value::Table(package));
        manifest.insert("dependencies".into(), table(&self.normal));
        manifest.insert("build-dependencies".into(), table(&self.build));
        manifest.to_string()
    }
}

impl Dependency {
    fn parse(spec: &toml::Value) -> Self {
        match spec {
            toml::Value::String(version) => Self {
                version: version.clone(),
                path: None,
                package: None,
                default_features: true,
                features: BTreeSet::new(),
            },
            toml::Value::Table(table) => Self {
                version: table
                    .get("version")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("*")
                    .to_owned(),
                path: table
                    .get("path")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                package: table
                    .get("package")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                default_features: table
                    .get("default-features")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(true),
                features: table
                    .get("features")
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(toml::Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            },
            other => panic!("a dependency given as {other}"),
        }
    }

    fn spec(&self) -> toml::Value {
        let mut table = toml::Table::new();
        match &self.path {
            Some(path) => table.insert("path".into(), path.clone().into()),
            None => table.insert("version".into(), self.version.clone().into()),
        };
        if let Some(package) = &self.package {
            table.insert("package".into(), package.clone().into());
        }
        table.insert("default-features".into(), self.default_features.into());
        table.insert(
            "features".into(),
            toml::Value::Array(self.features.iter().cloned().map(Into::into).collect()),
        );
        toml::Value::Table(table)
    }
}
