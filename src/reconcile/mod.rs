//! Reconcile stage: compares a rendered project with the one on disk. Tool-owned files are
//! rewritten unless the user edited one, missing files are written, user-owned files are
//! left alone except for stubs inserted for new methods and dependencies merged into
//! `Cargo.toml`, and tool-owned files no longer planned are removed.

pub mod manifest;

use std::{collections::BTreeSet, path::Path};

use crate::{
    input::{
        lint,
        project_file::{fingerprint, ProjectFile, PROJECT_FILE},
        tree::{self, OnDisk},
    },
    model::{
        features::{database::Database, DatabaseKind, Features, Kind},
        Method, Project, Service,
    },
    plan::{templates::Templates, Ownership},
    render::RenderedFile,
};

/// What regenerating does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The file does not exist yet.
    Create,
    /// A tool-owned file the tool wrote last; its new contents differ.
    Update,
    /// Already as it would be written.
    Unchanged,
    /// A user-owned file that exists: never touched.
    KeepUserOwned,
    /// A tool-owned file that differs from what the tool last wrote: the user edited it.
    EditedToolOwned,
    /// A user-owned handler that gets stubs for methods added to the proto, inserted at its
    /// marker line; everything else in it stays byte for byte.
    InsertStubs,
    /// The user's `Cargo.toml`, which lacks dependencies or features the project's features
    /// need: they are added, and the runtime's features set to the chosen parts'; nothing
    /// else changes.
    AddDependencies,
    /// A tool-owned file the project's features no longer need, unedited since the tool wrote
    /// it: deleted.
    Remove,
    /// A user-owned file that `gen --upgrade-deploy` replaces (a Kubernetes overlay of the
    /// previous layout); the old one is kept beside it as `<name>.orig`.
    ReplaceUserOwned,
}

/// The user-owned manifest that `gen` may add dependencies to.
const MANIFEST: &str = "Cargo.toml";

/// The template of one stub method, shared by new handlers and `gen`'s inserted stubs.
pub const METHOD_STUB_TEMPLATE: &str = "service/src/services/_method_stub.rs";

/// The line in every generated handler above which `gen` inserts stubs for new methods.
pub const INSERT_MARKER: &str =
    "// microframework: methods added to the proto are inserted above this line";

/// One file of the regenerated project and what happens to it.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// The file as the tool would write it.
    pub file: RenderedFile,
    /// What happens to it.
    pub change: Change,
    /// Its contents on disk, if it exists.
    pub on_disk: Option<String>,
}

/// A method of the proto that a user-owned handler does not implement, or the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodGap {
    /// The handler file.
    pub file: String,
    /// The Rust method name.
    pub method: String,
}

/// Everything regeneration would do.
#[derive(Debug, Clone)]
pub struct Regeneration {
    /// Every file, in path order.
    pub files: Vec<FileChange>,
    /// Proto methods a handler lacks.
    pub missing_methods: Vec<MethodGap>,
    /// Handler methods no longer in the proto.
    pub removed_methods: Vec<MethodGap>,
    /// Style findings in the user's root protos (none for a spec's proto, which is the tool's).
    pub lint_findings: Vec<lint::Finding>,
    /// Handlers (user-owned) whose `from_config` no longer matches its caller because the
    /// database was switched: (file, whether it now receives the database).
    pub rewired_handlers: Vec<(String, bool)>,
    /// Migrations (user-owned) written for the database the project used before a switch to
    /// another: (file, the database they were written for, the one the project uses now).
    pub foreign_migrations: Vec<(String, &'static str, &'static str)>,
    /// Whether `deploy/k8s` keeps a layout older than the current one (the user's overlays
    /// are written for it); `gen --upgrade-deploy` moves it.
    pub outdated_kubernetes_layout: bool,
}

/// Compares the project rendered from `dir`'s own inputs with what is on disk.
pub fn compare(
    dir: &Path,
    record: &ProjectFile,
    project: &Project,
    files: Vec<RenderedFile>,
    lint_findings: Vec<lint::Finding>,
    templates: &Templates,
) -> anyhow::Result<Regeneration> {
    let mut files: Vec<FileChange> = files
        .into_iter()
        .map(|file| classify(dir, record, file))
        .collect::<anyhow::Result<_>>()?;
    add_dependencies(&mut files)?;
    remove_unplanned(dir, record, &mut files)?;
    let (missing_methods, removed_methods) = method_gaps(dir, project)?;
    insert_stubs(project, &missing_methods, &mut files, templates)?;
    let database_before = Features::from_record(&record.features)?.database;
    let rewired_handlers = rewired_handlers(dir, database_before, project);
    let foreign_migrations = foreign_migrations(database_before, project, &files);
    Ok(Regeneration {
        files,
        missing_methods,
        removed_methods,
        lint_findings,
        rewired_handlers,
        foreign_migrations,
        outdated_kubernetes_layout: false,
    })
}

/// The migrations the tool would write, kept because they are the user's, that were written
/// for the other SQL database when the project switches between PostgreSQL and SQLite: their
/// SQL is the other's (`BIGINT GENERATED ... AS IDENTITY` against `AUTOINCREMENT`).
fn foreign_migrations(
    before: DatabaseKind,
    project: &Project,
    files: &[FileChange],
) -> Vec<(String, &'static str, &'static str)> {
    let (Some(was), Some(now)) = (Database::of(before), project.database.as_ref()) else {
        return Vec::new();
    };
    if was.kind == now.kind {
        return Vec::new();
    }
    files
        .iter()
        .filter(|f| f.change == Change::KeepUserOwned && f.file.path.starts_with("migrations/"))
        .filter(|f| f.on_disk.as_deref() != Some(f.file.contents.as_str()))
        .map(|f| (f.file.path.clone(), was.title, now.title))
        .collect()
}

/// The existing handlers built by `from_config` whose signature the database switch changes:
/// with a database, the server passes it (`from_config(config, database)`); without, not. The
/// default service's handler is built from its store instead, which the tool picks.
fn rewired_handlers(dir: &Path, before: DatabaseKind, project: &Project) -> Vec<(String, bool)> {
    let now = project.database.is_some();
    if before.is_chosen() == now {
        return Vec::new();
    }
    project
        .services
        .iter()
        .filter(|s| s.resource.is_none() && !s.replaces_health)
        .map(|s| format!("src/services/{}.rs", s.module))
        .filter(|file| !matches!(tree::read(dir, file), Ok(OnDisk::Missing) | Err(_)))
        .map(|file| (file, now))
        .collect()
}

/// What happens to `file`, from what is at its path. A file that is there but is not UTF-8
/// text was never written by the tool: the user's if they own the path, else an edit.
fn classify(dir: &Path, record: &ProjectFile, file: RenderedFile) -> anyhow::Result<FileChange> {
    let found = tree::read(dir, &file.path)?;
    let change = match (&found, file.ownership) {
        (OnDisk::Missing, _) => Change::Create,
        (_, Ownership::UserOwned) => Change::KeepUserOwned,
        (OnDisk::NotText, Ownership::ToolOwned) => Change::EditedToolOwned,
        (OnDisk::Text(text), Ownership::ToolOwned) if *text == file.contents => Change::Unchanged,
        (OnDisk::Text(_), Ownership::ToolOwned) if file.path == PROJECT_FILE => Change::Update,
        (OnDisk::Text(text), Ownership::ToolOwned) => {
            let found = fingerprint(text);
            if record.files.get(&file.path) == Some(&found)
                || record.unfinished.get(&file.path) == Some(&found)
            {
                Change::Update
            } else {
                Change::EditedToolOwned
            }
        }
    };
    let on_disk = match found {
        OnDisk::Text(text) => Some(text),
        OnDisk::Missing | OnDisk::NotText => None,
    };
    Ok(FileChange {
        file,
        change,
        on_disk,
    })
}

/// Adds a `Remove` change for each tool-owned file the tool wrote before and no longer plans
/// (after a feature is switched off); a file edited since is left alone.
fn remove_unplanned(
    dir: &Path,
    record: &ProjectFile,
    files: &mut Vec<FileChange>,
) -> anyhow::Result<()> {
    let recorded: BTreeSet<&String> = record
        .files
        .keys()
        .chain(record.unfinished.keys())
        .collect();
    for path in recorded {
        if files.iter().any(|f| f.file.path == *path) {
            continue;
        }
        let OnDisk::Text(on_disk) = tree::read(dir, path)? else {
            continue;
        };
        let found = fingerprint(&on_disk);
        if record.files.get(path) != Some(&found) && record.unfinished.get(path) != Some(&found) {
            continue;
        }
        let file = RenderedFile {
            path: path.clone(),
            ownership: Ownership::ToolOwned,
            contents: String::new(),
        };
        let at = files.partition_point(|f| f.file.path < *path);
        files.insert(
            at,
            FileChange {
                file,
                change: Change::Remove,
                on_disk: Some(on_disk),
            },
        );
    }
    Ok(())
}

/// Turns the user's manifest into an `AddDependencies` change when it lacks what the
/// generated one has.
fn add_dependencies(files: &mut [FileChange]) -> anyhow::Result<()> {
    let Some(change) = files.iter_mut().find(|f| f.file.path == MANIFEST) else {
        return Ok(());
    };
    let Some(on_disk) = &change.on_disk else {
        return Ok(());
    };
    if let Some((merged, _)) = manifest::add_missing(on_disk, &change.file.contents)? {
        change.file.contents = merged;
        change.change = Change::AddDependencies;
    }
    Ok(())
}

/// The user-owned handler file of a service (as the handler templates name it).
fn handler_path(service: &Service) -> String {
    format!(
        "src/services/{}.rs",
        service.module.trim_start_matches("r#")
    )
}

/// Proto methods missing from each service's handler file, and handler methods the proto no
/// longer has. Handlers are found by file name; methods by `fn <name>(`.
fn method_gaps(dir: &Path, project: &Project) -> anyhow::Result<(Vec<MethodGap>, Vec<MethodGap>)> {
    let mut missing = Vec::new();
    let mut removed = Vec::new();
    for service in &project.services {
        let file = handler_path(service);
        let OnDisk::Text(text) = tree::read(dir, &file)? else {
            continue;
        };
        let expected: BTreeSet<&str> = service
            .methods
            .iter()
            .map(|m| m.rust_name.as_str())
            .collect();
        for method in &expected {
            if !text.contains(&format!("fn {method}(")) {
                missing.push(MethodGap {
                    file: file.clone(),
                    method: method.to_string(),
                });
            }
        }
        for found in async_fn_names(&text) {
            if found != "from_config" && !expected.contains(found.as_str()) {
                removed.push(MethodGap {
                    file: file.clone(),
                    method: found,
                });
            }
        }
    }
    Ok((missing, removed))
}

/// Turns each handler that lacks methods, and still has its marker, into an `InsertStubs`
/// change whose contents are the file with stubs inserted above the marker.
fn insert_stubs(
    project: &Project,
    missing: &[MethodGap],
    files: &mut [FileChange],
    templates: &Templates,
) -> anyhow::Result<()> {
    for change in files.iter_mut() {
        let Some(text) = &change.on_disk else {
            continue;
        };
        let Some(marker) = text.find(INSERT_MARKER) else {
            continue;
        };
        let line_start = text[..marker].rfind('\n').map_or(0, |i| i + 1);
        let mut stubs = String::new();
        for gap in missing.iter().filter(|gap| gap.file == change.file.path) {
            let found = project.services.iter().find_map(|service| {
                let method = service.methods.iter().find(|m| m.rust_name == gap.method)?;
                (handler_path(service) == gap.file).then_some((service, method))
            });
            if let Some((service, method)) = found {
                stubs.push_str(&stub_method(service, method, templates)?);
            }
        }
        if stubs.is_empty() {
            continue;
        }
        change.file.contents = format!("{}{stubs}{}", &text[..line_start], &text[line_start..]);
        change.change = Change::InsertStubs;
    }
    Ok(())
}

/// A stub for one method, from the template that writes a new handler's stubs, rendered
/// `standalone`: every type is written out in full, so it compiles whatever the handler
/// file imports.
fn stub_method(
    service: &Service,
    method: &Method,
    templates: &Templates,
) -> anyhow::Result<String> {
    let mut context = tera::Context::new();
    context.insert("service", service);
    context.insert("method", method);
    context.insert("standalone", &true);
    let text = templates.render(METHOD_STUB_TEMPLATE, &context)?;
    Ok(format!("{}\n\n", text.trim_matches('\n')))
}

/// Names of the `async fn`s defined in Rust source, in order.
fn async_fn_names(text: &str) -> Vec<String> {
    text.match_indices("async fn ")
        .map(|(at, found)| {
            text[at + found.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '#')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_fn_names_are_found() {
        let text = "impl S {\n    async fn get_user(&self) {}\n    async fn r#type(&self) {}\n    fn helper() {}\n}\n";
        assert_eq!(async_fn_names(text), ["get_user", "r#type"]);
    }
}
