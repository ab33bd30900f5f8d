//! Snapshots of the rendered default project: every file of `new user-service`, pinned; the
//! files of every feature's kinds; the shared files with every feature on; and which files
//! each of the 384 combinations of features has. Review changes with `cargo insta review`.

use microframework::{
    commands::pipeline::render_new_project,
    model::features::{
        AuthKind, DatabaseKind, DeployKind, DiscoveryKind, Features, Kind, KubernetesLayout,
        MonitoringKind, TlsKind, TracingKind,
    },
    plan::templates::Templates,
    render::RenderedFile,
};

/// Every feature off.
const NONE: Features = Features {
    auth: AuthKind::None,
    tls: TlsKind::None,
    monitoring: MonitoringKind::None,
    tracing: TracingKind::None,
    discovery: DiscoveryKind::Static,
    deploy: DeployKind::None,
    database: DatabaseKind::Memory,
    kubernetes_layout: KubernetesLayout::V2,
};

fn render(features: &Features) -> Vec<RenderedFile> {
    let templates = Templates::embedded().expect("templates parse");
    let (_, files) = render_new_project("user-service", features, &templates).expect("renders");
    files
}

fn snapshot_name(prefix: &str, path: &str) -> String {
    format!("{prefix}{}", path.replace(['/', '.'], "_"))
}

#[test]
fn default_project_files() {
    let templates = Templates::embedded().expect("templates parse");
    let (_, files) =
        render_new_project("user-service", &Features::default(), &templates).expect("renders");
    let listing: Vec<String> = files
        .iter()
        .map(|file| format!("{:?} {}", file.ownership, file.path))
        .collect();
    insta::assert_snapshot!("listing", listing.join("\n"));
    // The runtime crate's files are its sources verbatim, tested in its own crate: the
    // listing shows them, a snapshot of each would only copy them. The record's fingerprints
    // of them change with every edit of the runtime: left out too.
    for file in files
        .iter()
        .filter(|file| !file.path.starts_with("runtime/"))
    {
        let name = file.path.replace(['/', '.'], "_");
        let contents: String = file
            .contents
            .split_inclusive('\n')
            .filter(|line| file.path != "microframework.toml" || !line.starts_with("\"runtime/"))
            .collect();
        insta::assert_snapshot!(name, &contents);
    }
}

#[test]
fn each_feature_kind_brings_its_files() {
    let bare: Vec<String> = render(&NONE).into_iter().map(|f| f.path).collect();
    let kinds = [
        (
            "auth_jwt",
            Features {
                auth: AuthKind::Jwt,
                ..NONE
            },
        ),
        (
            "tls_rustls",
            Features {
                tls: TlsKind::Rustls,
                ..NONE
            },
        ),
        (
            "monitoring_prometheus",
            Features {
                monitoring: MonitoringKind::Prometheus,
                ..NONE
            },
        ),
        (
            "tracing_otlp",
            Features {
                tracing: TracingKind::Otlp,
                ..NONE
            },
        ),
        (
            "deploy_all",
            Features {
                deploy: DeployKind::All,
                ..NONE
            },
        ),
        (
            "database_postgres",
            Features {
                database: DatabaseKind::Postgres,
                ..NONE
            },
        ),
        (
            "database_sqlite",
            Features {
                database: DatabaseKind::Sqlite,
                ..NONE
            },
        ),
    ];
    for (label, features) in kinds {
        let own: Vec<RenderedFile> = render(&features)
            .into_iter()
            .filter(|file| !bare.contains(&file.path))
            .collect();
        assert!(!own.is_empty(), "{label} adds files");
        for file in own {
            insta::assert_snapshot!(
                snapshot_name(&format!("{label}__"), &file.path),
                &file.contents
            );
        }
    }
}

#[test]
fn every_discovery_backend_has_its_files() {
    for &(discovery, name, _) in DiscoveryKind::KINDS {
        let features = Features { discovery, ..NONE };
        let files: Vec<RenderedFile> = render(&features)
            .into_iter()
            .filter(|file| {
                let shared = ["src/discovery/mod.rs", "src/discovery/balance.rs"];
                (file.path.starts_with("src/discovery/") || file.path == "tests/discovery.rs")
                    && !shared.contains(&file.path.as_str())
            })
            .collect();
        assert!(files.len() >= 2, "{name}: {} files", files.len());
        for file in files {
            insta::assert_snapshot!(
                snapshot_name(&format!("discovery_{name}__"), &file.path),
                &file.contents
            );
        }
    }
}

#[test]
fn shared_files_compose_every_feature() {
    let every = Features {
        auth: AuthKind::Jwt,
        tls: TlsKind::Rustls,
        monitoring: MonitoringKind::Prometheus,
        tracing: TracingKind::Otlp,
        discovery: DiscoveryKind::Etcd,
        deploy: DeployKind::All,
        database: DatabaseKind::Postgres,
        kubernetes_layout: KubernetesLayout::V2,
    };
    let shared = [
        ".github/workflows/ci.yml",
        "Dockerfile",
        "deploy/k8s/base/configmap.yaml",
        "deploy/k8s/base/deployment.yaml",
        "deploy/k8s/base/networkpolicy.yaml",
        "deploy/systemd/user-service.service",
        "docker-compose.yml",
        "Cargo.toml",
        "README.md",
        "config/default.toml",
        "src/client/mod.rs",
        "src/client/resilience.rs",
        "src/config.rs",
        "src/lib.rs",
        "src/main.rs",
        "src/server.rs",
        "src/telemetry.rs",
        "tests/common/mod.rs",
    ];
    for (label, features) in [("every_feature__", every), ("no_feature__", NONE)] {
        for file in render(&features)
            .iter()
            .filter(|f| shared.contains(&f.path.as_str()))
        {
            insta::assert_snapshot!(snapshot_name(label, &file.path), &file.contents);
        }
    }
}

#[test]
fn the_files_of_every_combination() {
    let templates = Templates::embedded().expect("templates parse");
    let all = Features::all_combinations();
    // Rendered on every core: hundreds of projects.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = all.len().div_ceil(threads);
    let listing: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = all
            .chunks(chunk)
            .map(|combinations| {
                let templates = &templates;
                scope.spawn(move || {
                    combinations
                        .iter()
                        .map(|features| {
                            let (_, files) =
                                render_new_project("user-service", features, templates)
                                    .expect("renders");
                            let paths: Vec<String> = files.into_iter().map(|f| f.path).collect();
                            format!("{}:\n  {}", features.label(), paths.join("\n  "))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a worker"))
            .collect()
    });
    insta::assert_snapshot!("combinations", listing.join("\n"));
}
