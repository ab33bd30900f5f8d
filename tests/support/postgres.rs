//! A throwaway PostgreSQL server from Debian's `postgresql` package, on a free loopback port
//! in a temporary directory, for the generated projects' database tests. PostgreSQL refuses
//! to run as root: as root, it runs as the package's `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running (or stopped) PostgreSQL server whose data lives until this is dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    running: bool,
}

impl Postgres {
    /// Initialises a cluster (role `app`, trust authentication on loopback) and starts it.
    pub fn start() -> Self {
        let bin = server_bin()
            .expect("PostgreSQL's server is missing: scripts/test installs it (Debian postgresql)");
        let dir = tempfile::Builder::new()
            .prefix("e2e-postgres")
            .tempdir()
            .expect("a temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            bin,
            dir,
            port,
            running: false,
        };
        if is_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .expect("chown runs");
            assert!(owned.success(), "chown the data dir to postgres");
        }
        let data = server.data();
        let initdb = server.bin.join("initdb");
        server.run(
            &initdb,
            &["-D", &data, "-A", "trust", "-U", "app", "--no-sync"],
        );
        server.start_again();
        server
    }

    /// The URL of its `postgres` database as `app`.
    pub fn url(&self) -> String {
        format!("postgres://app@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the stopped server on the same port and data.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        self.run(
            &pg_ctl,
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        self.running = true;
    }

    /// Stops the server at once (`-m fast`: open connections are closed).
    pub fn stop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        self.run(&pg_ctl, &["-D", &data, "-m", "fast", "-w", "stop"]);
        self.running = false;
    }

    /// Waits until the port takes connections.
    pub fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &Path, args: &[&str]) {
        let output = as_server_user(program)
            .args(args)
            .output()
            .expect("PostgreSQL's tools run");
        assert!(
            output.status.success(),
            "{} {}: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = as_server_user(&self.bin.join("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// The newest installed server's `bin/` (Debian: `/usr/lib/postgresql/<major>/bin`).
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// `program`, run as `postgres` when this runs as root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
