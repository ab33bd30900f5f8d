//! The README and the guides under `docs/`: every relative link leads somewhere, the README
//! stays a first screen, and each feature guide lists every setting its feature declares,
//! as the generated projects' READMEs render them.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use microframework::{
    commands::pipeline::render_new_project,
    model::features::{
        AuthKind, DatabaseKind, DeployKind, DiscoveryKind, Features, MonitoringKind, TlsKind,
        TracingKind,
    },
    plan::templates::Templates,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README, the runtime's README and every Markdown file under `docs/`.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("docs/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![root().join("README.md"), root().join("runtime/README.md")];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

/// The Markdown outside fenced code blocks, line by line with line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((index + 1, line));
        }
    }
    out
}

/// The targets of inline links, `[text](target)`, outside code spans.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(line[i + 2..i + 2 + end].to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

#[test]
fn every_relative_link_points_at_an_existing_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = fs::read_to_string(&document).expect("a document is readable");
        let shown = document.strip_prefix(root()).unwrap_or(&document).display();
        for (line_number, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = match target.split_once('#') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let path = if file.is_empty() {
                    document.clone()
                } else {
                    document.parent().expect("a parent").join(file)
                };
                if !path.exists() {
                    broken.push(format!("{shown}:{line_number}: {target}: no such file"));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!("{shown}:{line_number}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 40,
        "only {checked} relative links found: is the parser broken?"
    );
}

#[test]
fn the_link_parser_and_anchors_follow_github() {
    assert_eq!(
        link_targets("see [a](docs/a.md#x), `[b](c)` and [d](https://e)"),
        ["docs/a.md#x", "https://e"]
    );
    assert_eq!(slug(" Reference: `new`"), "reference-new");
    assert_eq!(
        slug(" Figures (2026-12-05 and 06, 2-core machine)"),
        "figures-2026-12-05-and-06-2-core-machine"
    );
    assert!(anchors("# A\n## A\n```\n# not a heading\n```\n").contains("a-1"));
    assert!(!anchors("```\n# not a heading\n```\n").contains("not-a-heading"));
}

#[test]
fn the_readme_is_a_first_screen_with_an_install_step_and_the_two_commands() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 150,
        "README.md has {lines} lines; keep it to 150 and move detail to docs/"
    );
    for needed in [
        "cargo install --locked --path .",
        "scripts/test",
        "scripts/test --quick",
    ] {
        assert!(readme.contains(needed), "README.md does not say `{needed}`");
    }
    // .ci/run must run the command the README gives for the tests.
    let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("exec scripts/test\n"),
        ".ci/run does not run scripts/test"
    );
}

/// The guide that documents a setting, by its key.
fn guide_of(key: &str) -> &'static str {
    match key.split('.').next().unwrap_or(key) {
        "environment" | "grpc" | "reflection" | "log" | "store" => "docs/features/server.md",
        "client" => "docs/features/client.md",
        "auth" => "docs/features/auth.md",
        "tls" => "docs/features/tls.md",
        "metrics" => "docs/features/metrics.md",
        "tracing" => "docs/features/tracing.md",
        "discovery" => "docs/features/discovery.md",
        "database" => "docs/features/database.md",
        other => panic!("no guide is chosen for the settings of `{other}`: add one to guide_of"),
    }
}

#[test]
fn each_feature_guide_lists_every_setting_as_projects_render_it() {
    let every = Features {
        auth: AuthKind::Jwt,
        tls: TlsKind::Rustls,
        monitoring: MonitoringKind::Prometheus,
        tracing: TracingKind::Otlp,
        discovery: DiscoveryKind::Etcd,
        deploy: DeployKind::All,
        database: DatabaseKind::Postgres,
        ..Features::default()
    };
    let sets = [
        every,
        Features {
            discovery: DiscoveryKind::Redis,
            database: DatabaseKind::Sqlite,
            ..every
        },
        Features {
            discovery: DiscoveryKind::Dns,
            ..every
        },
        Features {
            discovery: DiscoveryKind::Static,
            ..every
        },
    ];
    let templates = Templates::embedded().expect("templates parse");
    let mut missing = Vec::new();
    let mut rows = 0;
    for features in &sets {
        let (_, files) = render_new_project("user-service", features, &templates).expect("renders");
        let readme = files
            .iter()
            .find(|file| file.path == "README.md")
            .expect("a project has a README");
        let table = readme
            .contents
            .split("## Configuration\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has a configuration section");
        for row in table.lines().filter(|line| line.starts_with("| `")) {
            rows += 1;
            let key = row[3..].split('`').next().expect("a key");
            let guide = guide_of(key);
            let text = fs::read_to_string(root().join(guide)).expect("the guide exists");
            if !text.lines().any(|line| line == row) {
                missing.push(format!("{guide}: {row}"));
            }
        }
    }
    assert!(
        rows > 80,
        "only {rows} settings found: is the README's table parsed?"
    );
    assert!(
        missing.is_empty(),
        "settings missing from their guide, or changed since (copy the rows as they are):\n{}",
        missing.join("\n")
    );
}
