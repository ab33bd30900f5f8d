//! Generated Rust is rustfmt-clean whatever the project name: names change line lengths, and the
//! templates are written so rustfmt has nothing to change for short, long and keyword names.

use std::process::Command;

mod support;

use microframework::{
    commands::pipeline::{render_new_project, render_proto_project, render_spec_project},
    input::ProtoInput,
    model::features::{DatabaseKind, DeployKind, DiscoveryKind, Features},
    plan::templates::Templates,
    render::RenderedFile,
};

/// Writes the Rust files of a rendered project to a temporary directory and runs
/// `rustfmt --check` on them.
fn assert_rustfmt_clean(label: &str, files: &[RenderedFile]) {
    let dir = tempfile::tempdir().unwrap();
    let mut rust_files = Vec::new();
    for file in files.iter().filter(|f| f.path.ends_with(".rs")) {
        let path = dir.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &file.contents).unwrap();
        rust_files.push(path);
    }
    let output = Command::new("rustfmt")
        .args(["--check", "--edition", "2021"])
        .args(&rust_files)
        .output()
        .expect("rustfmt runs (rustup component add rustfmt)");
    assert!(
        output.status.success(),
        "{label}: rustfmt would change the generated code:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn generated_rust_is_rustfmt_clean_for_every_proto_fixture() {
    let templates = Templates::embedded().expect("templates parse");
    for fixture in support::PROTO_FIXTURES {
        let input = ProtoInput::from_files(&fixture.root_paths(), &fixture.include_paths())
            .expect("fixture paths");
        for (label, features) in support::FEATURE_SETS {
            let (_, files) = render_proto_project(fixture.name, &input, features, &templates)
                .unwrap_or_else(|err| panic!("{}: {err:#}", fixture.name));
            assert_rustfmt_clean(&format!("{} with {label}", fixture.name), &files);
        }
    }
}

#[test]
fn generated_rust_is_rustfmt_clean_for_every_spec_fixture() {
    let templates = Templates::embedded().expect("templates parse");
    for fixture in support::SPEC_FIXTURES {
        let text = std::fs::read_to_string(fixture.path()).expect("a spec");
        for (label, features) in support::FEATURE_SETS {
            let (_, files) =
                render_spec_project(fixture.name, &fixture.path(), &text, features, &templates)
                    .unwrap_or_else(|err| panic!("{}: {err:#}", fixture.name));
            assert_rustfmt_clean(&format!("{} with {label}", fixture.name), &files);
        }
    }
}

#[test]
fn generated_rust_is_rustfmt_clean_for_many_names() {
    let templates = Templates::embedded().expect("templates parse");
    let names = [
        "ab",
        "user-service",
        "billing",
        "type-service",
        "order-history-service",
        "inventory-reservation-service",
        "telemetry",
        "server",
        "client",
    ];
    for name in names {
        for (label, features) in support::FEATURE_SETS {
            let (_, files) = render_new_project(name, features, &templates).expect("renders");
            assert_rustfmt_clean(&format!("{name} with {label}"), &files);
        }
    }
}

#[test]
fn every_combination_of_features_is_rustfmt_clean() {
    let templates = Templates::embedded().expect("templates parse");
    // Every combination of the other features with static discovery, and each other
    // discovery kind with the default features (the fixture tests' feature sets add etcd with
    // every feature on, Redis and DNS): 32 + 3 of the 128 with deployment files and without
    // SQLite, whose Rust differs from PostgreSQL's in lines the feature sets' "sqlite" covers.
    let all = Features::all_combinations();
    assert_eq!(
        all.len(),
        384,
        "2 kinds of each of 5 features, 3 of the database, 4 of discovery"
    );
    // Deployment files hold no Rust: the combinations with them are enough.
    let combinations: Vec<Features> = all
        .into_iter()
        .filter(|features| features.deploy == DeployKind::All)
        .filter(|features| features.database != DatabaseKind::Sqlite)
        .filter(|features| {
            features.discovery == DiscoveryKind::Static
                || *features
                    == (Features {
                        discovery: features.discovery,
                        ..Features::default()
                    })
        })
        .collect();
    assert_eq!(combinations.len(), 35);
    let fixture = &support::PROTO_FIXTURES[0];
    let input = ProtoInput::from_files(&fixture.root_paths(), &fixture.include_paths())
        .expect("fixture paths");
    for features in combinations {
        let (_, files) =
            render_new_project("user-service", &features, &templates).expect("renders");
        assert_rustfmt_clean(&format!("user-service with {}", features.label()), &files);
        let (_, files) = render_proto_project(fixture.name, &input, &features, &templates)
            .unwrap_or_else(|err| panic!("{}: {err:#}", fixture.name));
        assert_rustfmt_clean(
            &format!("{} with {}", fixture.name, features.label()),
            &files,
        );
    }
}
