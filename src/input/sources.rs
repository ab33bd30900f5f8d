//! The template and proto files the tool works from: those embedded in the binary, with a
//! user's `--templates` directory replacing some of them file by file.

use std::{fs, path::Path};

use anyhow::{anyhow, bail, Context};
use include_dir::{include_dir, Dir};

use super::tree;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The runtime crate (`runtime/` of the tool's workspace), written verbatim into every
/// project.
static RUNTIME: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/runtime");

/// Where a project holds the runtime crate.
pub const RUNTIME_DIR: &str = "runtime";

/// The runtime crate's files a project gets, by path under `runtime/`: its manifest, its
/// README, its build script, its sources and protos (not its tests, which run in the tool's
/// workspace).
pub fn runtime_files() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = all_files(&RUNTIME)
        .into_iter()
        .filter_map(|file| {
            let path = file.path().to_string_lossy().replace('\\', "/");
            let shipped = ["Cargo.toml", "README.md", "build.rs"].contains(&path.as_str())
                || path.starts_with("src/")
                || path.starts_with("proto/");
            Some((path, file.contents_utf8()?)).filter(|_| shipped)
        })
        .collect();
    files.sort();
    files
}

/// The runtime crate's version (its manifest's `package.version`), which a project records.
pub fn runtime_version() -> String {
    runtime_files()
        .into_iter()
        .find(|(path, _)| path == "Cargo.toml")
        .and_then(|(_, manifest)| manifest.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            manifest
                .get("package")?
                .get("version")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Suffix every template file carries.
pub const SUFFIX: &str = ".tera";

/// Directory of the bundled third-party protos inside `templates/`.
const BUNDLED_PROTOS_DIR: &str = "protos";

/// Directory of the templates a project's proto is rendered from, inside `templates/`.
pub const INPUT_DIR: &str = "input";

/// Template paths of earlier versions and where those templates are now, so an override at
/// an old path is named, not silently ignored.
const MOVED: &[(&str, &str)] = &[
    ("project/Cargo.toml.tera", "base/Cargo.toml.tera"),
    ("project/README.md.tera", "base/README.md.tera"),
    ("project/build.rs.tera", "base/build.rs.tera"),
    (
        "project/config/default.toml.tera",
        "base/config/default.toml.tera",
    ),
    ("project/gitignore.tera", "base/gitignore.tera"),
    (
        "project/src/auth.rs.tera",
        "features/auth/jwt/src/auth.rs.tera",
    ),
    (
        "project/src/client/mod.rs.tera",
        "base/src/client/mod.rs.tera",
    ),
    (
        "project/src/client/resilience.rs.tera",
        "base/src/client/resilience.rs.tera",
    ),
    (
        "project/src/client/service.rs.tera",
        "service/src/client/service.rs.tera",
    ),
    ("project/src/config.rs.tera", "base/src/config.rs.tera"),
    (
        "project/src/extensions.rs.tera",
        "base/src/extensions.rs.tera",
    ),
    ("project/src/lib.rs.tera", "base/src/lib.rs.tera"),
    ("project/src/main.rs.tera", "base/src/main.rs.tera"),
    (
        "project/src/metrics.rs.tera",
        "features/monitoring/prometheus/src/metrics.rs.tera",
    ),
    (
        "project/src/middleware.rs.tera",
        "base/src/middleware.rs.tera",
    ),
    ("project/src/proto.rs.tera", "base/src/proto.rs.tera"),
    ("project/src/server.rs.tera", "base/src/server.rs.tera"),
    (
        "project/src/services/_method_stub.rs.tera",
        "service/src/services/_method_stub.rs.tera",
    ),
    (
        "project/src/services/mod.rs.tera",
        "base/src/services/mod.rs.tera",
    ),
    (
        "project/src/services/resource.rs.tera",
        "service/src/services/resource.rs.tera",
    ),
    (
        "project/src/services/spec.rs.tera",
        "service/src/services/spec.rs.tera",
    ),
    (
        "project/src/services/stub.rs.tera",
        "service/src/services/stub.rs.tera",
    ),
    (
        "project/src/store/memory.rs.tera",
        "base/src/store/memory.rs.tera",
    ),
    (
        "project/src/store/mod.rs.tera",
        "base/src/store/mod.rs.tera",
    ),
    (
        "project/src/store/resource.rs.tera",
        "service/src/store/resource.rs.tera",
    ),
    (
        "project/src/telemetry.rs.tera",
        "base/src/telemetry.rs.tera",
    ),
    (
        "project/tests/common/mod.rs.tera",
        "base/tests/common/mod.rs.tera",
    ),
    (
        "project/tests/health_reflection.rs.tera",
        "base/tests/health_reflection.rs.tera",
    ),
    (
        "project/tests/middleware.rs.tera",
        "base/tests/middleware.rs.tera",
    ),
    (
        "project/tests/resource.rs.tera",
        "service/tests/resource.rs.tera",
    ),
    ("project/tests/spec.rs.tera", "service/tests/spec.rs.tera"),
    ("project/tests/stub.rs.tera", "service/tests/stub.rs.tera"),
    (
        "project/tests/tls.rs.tera",
        "features/tls/rustls/tests/tls.rs.tera",
    ),
    (
        "project/tests/tracing.rs.tera",
        "features/tracing/otlp/tests/tracing.rs.tera",
    ),
];

/// Templates whose code moved into the runtime crate, and the module it is in now, so an
/// override of one is told why it no longer applies.
const INTO_RUNTIME: &[(&str, &str)] = &[
    (
        "base/src/client/resilience.rs.tera",
        "microframework_runtime::client",
    ),
    (
        "base/src/discovery/balance.rs.tera",
        "microframework_runtime::discovery",
    ),
    (
        "base/src/store/memory.rs.tera",
        "microframework_runtime::store::memory",
    ),
    (
        "base/src/middleware.rs.tera",
        "microframework_runtime::middleware",
    ),
    (
        "features/monitoring/prometheus/src/metrics.rs.tera",
        "microframework_runtime::metrics",
    ),
    (
        "features/tls/rustls/src/tls.rs.tera",
        "microframework_runtime::tls",
    ),
    (
        "features/database/sql/src/store/database/table.rs.tera",
        "microframework_runtime::store::sql",
    ),
];

/// The source of a bundled third-party proto by import path (`google/api/http.proto`).
pub fn bundled_proto(import_path: &str) -> Option<&'static str> {
    EMBEDDED
        .get_file(format!("{BUNDLED_PROTOS_DIR}/{import_path}"))
        .and_then(|file| file.contents_utf8())
}

/// Every template's text by path under `templates/` (with `.tera`), overrides applied.
#[derive(Debug, Clone)]
pub struct TemplateSources {
    /// (path, text), sorted by path.
    pub files: Vec<(String, String)>,
    /// The overrides that replaced built-in templates: (path, text), sorted by path.
    pub overrides: Vec<(String, String)>,
}

impl TemplateSources {
    /// The embedded templates.
    pub fn embedded() -> anyhow::Result<Self> {
        let files = embedded_sources()?
            .into_iter()
            .map(|(path, text)| (path, text.to_owned()))
            .collect();
        Ok(Self {
            files,
            overrides: Vec::new(),
        })
    }

    /// The embedded templates, each replaced by the file of the same path in `dir`, if any
    /// (as written by `microframework templates export`).
    pub fn with_overrides(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut sources = Self::embedded()?;
        if let Some(dir) = dir {
            sources.overrides = read_overrides(dir, &sources.files)?;
            for (path, text) in &sources.overrides {
                if let Some(slot) = sources.files.iter_mut().find(|(name, _)| name == path) {
                    slot.1.clone_from(text);
                }
            }
        }
        Ok(sources)
    }

    /// Renders one of the input templates (`input/resource.proto`), which make the proto a
    /// project starts from.
    pub fn render_input(&self, name: &str, context: &tera::Context) -> anyhow::Result<String> {
        let path = format!("{name}{SUFFIX}");
        let (_, text) = self
            .files
            .iter()
            .find(|(p, _)| *p == path)
            .ok_or_else(|| anyhow!("no template {path}"))?;
        super::sandbox::one_off(text, context).map_err(|err| anyhow!("rendering {name}: {err}"))
    }
}

/// The embedded template files: path under `templates/` (with `.tera`) and text.
pub fn embedded_sources() -> anyhow::Result<Vec<(String, &'static str)>> {
    let mut files: Vec<(String, &'static str)> = all_files(&EMBEDDED)
        .into_iter()
        .filter_map(|file| {
            let path = file.path().to_string_lossy().replace('\\', "/");
            path.ends_with(SUFFIX).then_some((path, file))
        })
        .map(|(path, file)| {
            let text = file
                .contents_utf8()
                .ok_or_else(|| anyhow!("template {path} is not UTF-8"))?;
            Ok((path, text))
        })
        .collect::<anyhow::Result<_>>()?;
    files.sort();
    Ok(files)
}

/// The template files under `dir` that replace built-in ones (each must have a built-in
/// template's path). Only directories that hold built-in templates are walked, links are
/// followed only to files inside `dir`, and each file is read as [`tree::read`] reads project
/// files, so a directory such as `/usr`, or one whose links loop, is a short walk.
fn read_overrides(
    dir: &Path,
    builtin: &[(String, String)],
) -> anyhow::Result<Vec<(String, String)>> {
    if !dir.is_dir() {
        bail!("templates directory {} does not exist", dir.display());
    }
    // A directory is walked if a built-in template, or one that moved, lies under it.
    let walked = |relative: &str| {
        let prefix = format!("{relative}/");
        builtin.iter().any(|(path, _)| path.starts_with(&prefix))
            || MOVED.iter().any(|(old, _)| old.starts_with(&prefix))
            || INTO_RUNTIME.iter().any(|(old, _)| old.starts_with(&prefix))
    };
    let mut overrides = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(current) = pending.pop() {
        let full = dir.join(&current);
        let entries =
            fs::read_dir(&full).with_context(|| format!("cannot read {}", full.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", full.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let relative = if current.is_empty() {
                name
            } else {
                format!("{current}/{name}")
            };
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                if walked(&relative) {
                    pending.push(relative);
                }
                continue;
            }
            if !relative.ends_with(SUFFIX) {
                continue;
            }
            if !builtin.iter().any(|(name, _)| *name == relative) {
                if let Some((_, module)) = INTO_RUNTIME.iter().find(|(old, _)| *old == relative) {
                    bail!(
                        "{}: this template is gone: its code is now the runtime crate's `{module}` (runtime/ in the project), which a template cannot replace; wrap or replace it with code of your own in src/",
                        path.display()
                    );
                }
                if let Some((_, new)) = MOVED.iter().find(|(old, _)| *old == relative) {
                    bail!(
                        "{}: this template moved to {new}; move the file there (`microframework templates list` shows every path)",
                        path.display()
                    );
                }
                bail!(
                    "{}: no built-in template has this path, so it would never be used; `microframework templates list` shows the paths",
                    path.display()
                );
            }
            let text = tree::read_text(dir, &relative, "template")?;
            overrides.push((relative, text));
        }
    }
    overrides.sort();
    Ok(overrides)
}

fn all_files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut files: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        files.extend(all_files(sub));
    }
    files
}

/// Tera errors keep their cause in a chain; show all of it.
pub fn tera_error(err: &tera::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
