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
        address: format!("10.0.0.5:{port}"),
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

/// A CA, and certificates it signed for `127.0.0.1` (a server) and a client, as PEM files in
/// `dir`; and a second CA that signed nothing here.
fn write_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    for name in ["ca", "other-ca"] {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key"))
            .expect("a CA");
        std::fs::write(dir.join(format!("{name}.crt")), ca.pem()).expect("write");
        if name == "other-ca" {
            continue;
        }
        for (holder, names) in [
            ("server", vec!["127.0.0.1", "localhost"]),
            ("client", vec!["client"]),
        ] {
            let key = KeyPair::generate().expect("a key");
            let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
            let mut params = CertificateParams::new(names).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, holder);
            let certificate = params.signed_by(&key, &ca).expect("a certificate");
            std::fs::write(dir.join(format!("{holder}.crt")), certificate.pem()).expect("write");
            std::fs::write(dir.join(format!("{holder}.key")), key.serialize_pem()).expect("write");
        }
    }
}

/// `config` trusting `ca` and presenting the client certificate of `dir`.
fn over_tls(mut config: DiscoveryConfig, dir: &std::path::Path, ca: &str) -> DiscoveryConfig {
    let path = |name: &str| dir.join(name).display().to_string();
    config.registry_ca_file = path(ca);
    config.registry_cert_file = path("client.crt");
    config.registry_key_file = path("client.key");
    config
}

#[tokio::test]
async fn a_redis_over_tls_with_an_acl_user_and_client_certificates_holds_registrations() {
    if !installed("redis-server", "redis-server") {
        return;
    }
    let certificates = tempfile::tempdir().expect("a temporary directory");
    let dir = certificates.path();
    write_certificates(dir);
    let file = |name: &str| dir.join(name).display().to_string();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let args = [
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--tls-port",
        "{port}",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "{dir}",
        "--user",
        "default",
        "off",
        "--user",
        "app",
        "on",
        ">s3cret",
        "~*",
        "&*",
        "+@all",
    ];
    let server = start("redis-server", &args, None);
    // The URL, with the ACL user's password, comes from a file (REDIS_URL_FILE), which wins.
    let url_file = dir.join("redis-url");
    let url = format!("rediss://app:s3cret@127.0.0.1:{}", server.port);
    std::fs::write(&url_file, format!("{url}\n")).expect("write the URL");
    let mut config = over_tls(settings(3_000), dir, "ca.crt");
    config.redis_url = "redis://127.0.0.1:1".to_owned();
    config.redis_url_file = url_file.display().to_string();
    let registry = RedisRegistry::new(&config).expect("a registry");
    let first = instance("a", 1);
    let lease = registry
        .register(&first)
        .await
        .expect("registered over TLS");
    assert_eq!(listed(&registry).await, [first.address.as_str()]);
    registry
        .deregister(&first, lease)
        .await
        .expect("deregistered");

    // Each missing piece is refused: a CA that did not sign the server's certificate, no
    // client certificate, a wrong password, plaintext to the TLS port.
    let stranger = over_tls(config.clone(), dir, "other-ca.crt");
    let mut anonymous = config.clone();
    anonymous.registry_cert_file.clear();
    anonymous.registry_key_file.clear();
    let mut wrong_password = config.clone();
    wrong_password.redis_url_file.clear();
    wrong_password.redis_url = url.replace("s3cret", "guess");
    let mut plaintext = settings(3_000);
    plaintext.redis_url = format!("redis://127.0.0.1:{}", server.port);
    for (what, config) in [
        ("an unknown CA", stranger),
        ("no client certificate", anonymous),
        ("a wrong password", wrong_password),
        ("plaintext", plaintext),
    ] {
        let registry = RedisRegistry::new(&config).expect("a registry");
        let refused = registry.register(&instance("b", 2)).await;
        assert!(refused.is_err(), "{what} was let in");
    }

    // TLS settings without rediss://, and `#insecure`, are refused at once.
    let mut mixed = over_tls(settings(3_000), dir, "ca.crt");
    mixed.redis_url = format!("redis://127.0.0.1:{}", server.port);
    let err = RedisRegistry::new(&mixed).expect_err("TLS files with redis://");
    assert!(err.to_string().contains("rediss://"), "{err}");
    let mut insecure = config.clone();
    insecure.redis_url_file.clear();
    insecure.redis_url = format!("{url}/#insecure");
    let err = RedisRegistry::new(&insecure).expect_err("#insecure");
    assert!(err.to_string().contains("#insecure"), "{err}");
    assert!(
        !err.to_string().contains("s3cret"),
        "the password is not repeated: {err}"
    );
}

#[tokio::test]
async fn etcd_over_tls_with_client_certificates_and_a_user_holds_registrations() {
    if !installed("etcd", "etcd-server") || !installed("etcdctl", "etcd-client") {
        return;
    }
    let certificates = tempfile::tempdir().expect("a temporary directory");
    let dir = certificates.path();
    write_certificates(dir);
    let file = |name: &str| dir.join(name).display().to_string();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let args = [
        "--name",
        "test",
        "--data-dir",
        "{dir}",
        "--listen-client-urls",
        "https://127.0.0.1:{port}",
        "--advertise-client-urls",
        "https://127.0.0.1:{port}",
        "--listen-peer-urls",
        "http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:{peer}",
        "--initial-cluster",
        "test=http://127.0.0.1:{peer}",
        "--cert-file",
        &cert,
        "--key-file",
        &key,
        "--trusted-ca-file",
        &ca,
        "--client-cert-auth",
    ];
    let server = start("etcd", &args, None);
    let endpoint = format!("https://127.0.0.1:{}", server.port);
    // A root user with a password, then auth on: a request without a token is refused.
    let (client_cert, client_key) = (file("client.crt"), file("client.key"));
    for command in [&["user", "add", "root:rootpw"][..], &["auth", "enable"]] {
        let done = Command::new("etcdctl")
            .args([
                "--endpoints",
                &endpoint,
                "--cacert",
                &ca,
                "--cert",
                &client_cert,
            ])
            .args(["--key", &client_key])
            .args(command)
            .output()
            .expect("etcdctl runs");
        assert!(done.status.success(), "etcdctl {command:?}: {done:?}");
    }

    let mut config = over_tls(settings(3_000), dir, "ca.crt");
    config.etcd_endpoints = endpoint.clone();
    config.etcd_username = "root".to_owned();
    let password_file = dir.join("etcd-password");
    std::fs::write(&password_file, "rootpw\n").expect("write the password");
    config.etcd_password = "wrong".to_owned();
    config.etcd_password_file = password_file.display().to_string();
    let registry = EtcdRegistry::new(&config).expect("a registry");
    let first = instance("a", 1);
    let lease = registry
        .register(&first)
        .await
        .expect("registered over TLS as root");
    assert_eq!(listed(&registry).await, [first.address.as_str()]);
    assert!(registry.keep_alive(&first, lease).await.expect("renewed"));
    registry
        .deregister(&first, lease)
        .await
        .expect("deregistered");

    let stranger = over_tls(config.clone(), dir, "other-ca.crt");
    let mut anonymous = config.clone();
    anonymous.registry_cert_file.clear();
    anonymous.registry_key_file.clear();
    let mut nobody = config.clone();
    nobody.etcd_username.clear();
    let mut wrong_password = config.clone();
    wrong_password.etcd_password_file.clear();
    for (what, config) in [
        ("an unknown CA", stranger),
        ("no client certificate", anonymous),
        ("no user", nobody),
        ("a wrong password", wrong_password),
    ] {
        let registry = EtcdRegistry::new(&config).expect("a registry");
        let refused = registry.register(&instance("b", 2)).await;
        assert!(refused.is_err(), "{what} was let in");
    }

    // https:// without a CA, and TLS files with http://, are refused at once.
    let mut no_ca = config.clone();
    no_ca.registry_ca_file.clear();
    let err = EtcdRegistry::new(&no_ca).expect_err("no CA");
    assert!(err.to_string().contains("registry_ca_file"), "{err}");
    let mut plaintext = config.clone();
    plaintext.etcd_endpoints = endpoint.replace("https", "http");
    let err = EtcdRegistry::new(&plaintext).expect_err("TLS files with http://");
    assert!(err.to_string().contains("https://"), "{err}");
}
