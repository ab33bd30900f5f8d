//! The Redis and etcd registries against real servers: `redis-server` (Debian package
//! `redis-server`) and `etcd` (`etcd-server`), each started on a free loopback port in a
//! temporary directory and killed at the end. A test skips, saying so, when its server is not
//! installed (`scripts/test` installs both before it runs these).
#![cfg(all(feature = "redis", feature = "etcd"))]

use std::{
    io::Write as _,
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use microframework_runtime::discovery::{
    etcd::EtcdRegistry, redis::RedisRegistry, DiscoveryConfig, Instance, Registry, Resolved,
};

/// A server process, killed when dropped, with its directory removed.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

fn installed(binary: &str, package: &str) -> bool {
    let found = Command::new(binary).arg("--version").output().is_ok();
    if !found {
        // Past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {binary} is not installed (apt-get install {package})"
        );
    }
    found
}

/// Starts `binary` with `args` (which may name `{port}`, `{peer}` and `{dir}`), waiting until
/// it listens on the port, on `port` or a free one.
fn start(binary: &str, args: &[&str], port: Option<u16>) -> Server {
    let port = port.unwrap_or_else(free_port);
    let peer = free_port().to_string();
    let dir = std::env::temp_dir().join(format!("runtime-{binary}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            arg.replace("{port}", &port.to_string())
                .replace("{peer}", &peer)
                .replace("{dir}", &dir.display().to_string())
        })
        .collect();
    let child = Command::new(binary)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("start {binary}: {err}"));
    let server = Server { child, dir, port };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{binary} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

const REDIS: &[&str] = &[
    "--bind",
    "127.0.0.1",
    "--port",
    "{port}",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "{dir}",
];

const ETCD: &[&str] = &[
    "--name",
    "test",
    "--data-dir",
    "{dir}",
    "--listen-client-urls",
    "http://127.0.0.1:{port}",
    "--advertise-client-urls",
    "http://127.0.0.1:{port}",
    "--listen-peer-urls",
    "http://127.0.0.1:{peer}",
    "--initial-advertise-peer-urls",
    "http://127.0.0.1:{peer}",
    "--initial-cluster",
    "test=http://127.0.0.1:{peer}",
];

fn instance(id: &str, port: u16) -> Instance {
    Instance {
        service: "users".to_owned(),
        id: id.to_owned(),
        address: format!("http://10.0.0.5:{port}"),
    }
}

async fn listed(registry: &impl Registry) -> Vec<String> {
    registry.resolve("users").await.expect("resolved").addresses
}

fn settings(ttl_ms: u64) -> DiscoveryConfig {
    DiscoveryConfig {
        ttl_ms,
        heartbeat_ms: ttl_ms / 3,
        ..DiscoveryConfig::default()
    }
}

#[tokio::test]
async fn redis_registrations_are_listed_renewed_expire_and_come_back_after_a_restart() {
    if !installed("redis-server", "redis-server") {
        return;
    }
    let server = start("redis-server", REDIS, None);
    let mut config = settings(1_000);
    config.redis_url = format!("redis://127.0.0.1:{}", server.port);
    let registry = RedisRegistry::new(&config).expect("a registry");
    let (first, second) = (instance("a", 1), instance("b", 2));
    let lease = registry.register(&first).await.expect("registered");
    registry.register(&second).await.expect("registered");
    assert_eq!(
        listed(&registry).await,
        [first.address.clone(), second.address.clone()]
    );

    // The second leaves; the first keeps renewing, past its TTL.
    registry
        .deregister(&second, lease)
        .await
        .expect("deregistered");
    for _ in 0..4 {
        assert!(registry.keep_alive(&first, lease).await.expect("renewed"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(listed(&registry).await, [first.address.as_str()]);

    // No heartbeat for longer than the TTL: gone.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(listed(&registry).await, Vec::<String>::new());

    // Redis restarts empty on the same port: the next heartbeat registers again (the shared
    // connection failed once and is made again).
    let port = server.port;
    drop(server);
    let _restarted = start("redis-server", REDIS, Some(port));
    let mut renewed = registry.keep_alive(&first, lease).await;
    if renewed.is_err() {
        renewed = registry.keep_alive(&first, lease).await;
    }
    assert!(renewed.expect("renewed after the restart"));
    assert_eq!(listed(&registry).await, [first.address.as_str()]);
}

#[tokio::test]
async fn etcd_leases_are_listed_watched_renewed_and_revoked() {
    if !installed("etcd", "etcd-server") {
        return;
    }
    let server = start("etcd", ETCD, None);
    let mut config = settings(3_000);
    config.etcd_endpoints = format!("http://127.0.0.1:{}", server.port);
    let registry = EtcdRegistry::new(&config).expect("a registry");
    let first = instance("a", 1);
    let lease = registry.register(&first).await.expect("registered");
    let resolved = registry.resolve("users").await.expect("resolved");
    assert_eq!(resolved.addresses, [first.address.as_str()]);
    assert!(resolved.revision > 0, "{resolved:?}");

    // A watch from that revision hears of the second instance at once, not after `refresh`.
    let watching = {
        let registry = registry.clone();
        let since: Resolved = resolved.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            registry
                .changed("users", &since, Duration::from_secs(30))
                .await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = instance("b", 2);
    let second_lease = registry.register(&second).await.expect("registered");
    let heard = tokio::time::timeout(Duration::from_secs(10), watching).await;
    let heard = heard.expect("the watch ends").expect("the watch task");
    assert!(heard < Duration::from_secs(10), "{heard:?}");
    assert_eq!(listed(&registry).await.len(), 2);

    // Renewed while etcd knows the lease; revoked on deregistering, which removes the key,
    // and a revoked lease is reported unknown so that the caller registers again.
    assert!(registry.keep_alive(&first, lease).await.expect("renewed"));
    registry
        .deregister(&second, second_lease)
        .await
        .expect("revoked");
    assert_eq!(listed(&registry).await, [first.address.as_str()]);
    let renewed = registry.keep_alive(&second, second_lease).await;
    assert!(!renewed.expect("an answer"), "a revoked lease is unknown");
}

/// Whatever is written under a service's keys, a read returns at most `MAX_INSTANCES`
/// entries, and of Redis values no more than an address can be.
#[tokio::test]
async fn registry_reads_are_bounded_in_count_and_size() {
    use microframework_runtime::discovery::MAX_INSTANCES;

    let listed_count = MAX_INSTANCES + 76;
    if installed("redis-server", "redis-server") {
        let server = start("redis-server", REDIS, None);
        let mut config = settings(60_000);
        config.redis_url = format!("redis://127.0.0.1:{}", server.port);
        let registry = RedisRegistry::new(&config).expect("a registry");
        let mut huge = instance("huge", 1);
        huge.address = "h".repeat(1 << 20);
        registry.register(&huge).await.expect("registered");
        for n in 0..listed_count {
            registry
                .register(&instance(&format!("i{n}"), u16::try_from(n + 1).unwrap()))
                .await
                .expect("registered");
        }
        let addresses = listed(&registry).await;
        assert!(!addresses.is_empty());
        assert!(addresses.len() <= MAX_INSTANCES, "{}", addresses.len());
        let longest = addresses.iter().map(String::len).max().unwrap();
        assert!(longest <= 512, "a value of {longest} bytes was read");
    }
    if installed("etcd", "etcd-server") {
        let server = start("etcd", ETCD, None);
        let mut config = settings(60_000);
        config.etcd_endpoints = format!("http://127.0.0.1:{}", server.port);
        let registry = EtcdRegistry::new(&config).expect("a registry");
        for n in 0..listed_count {
            registry
                .register(&instance(&format!("i{n}"), u16::try_from(n + 1).unwrap()))
                .await
                .expect("registered");
        }
        let count = listed(&registry).await.len();
        assert_eq!(count, MAX_INSTANCES, "{count} entries read");
    }
}
