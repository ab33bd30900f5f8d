//! `microframework gen` and `microframework check`: render a project again from what
//! `microframework.toml` records, then compare with the disk. Tool-owned files are rewritten
//! (unless the user edited one), missing files are written, user-owned files are left alone.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use similar::TextDiff;

use crate::{
    cli::FeatureArgs,
    input::{self, ProtoInput},
    lint, manifest,
    model::{KnownServices, Method, MethodKind, Project, Service},
    new::{render_compiled, render_spec_project},
    plan::Ownership,
    project_file::{fingerprint, ProjectFile, SourceKind, PROJECT_FILE, SPEC_FILE},
    render::RenderedFile,
    report::{Progress, Verbosity},
    templates::Templates,
    write::write_file_atomically,
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
    /// need: they are added, nothing else changes.
    AddDependencies,
    /// A tool-owned file the project's features no longer need, unedited since the tool wrote
    /// it: deleted.
    Remove,
}

/// The user-owned manifest that `gen` may add dependencies to.
const MANIFEST: &str = "Cargo.toml";

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
}

/// Renders the project in `dir` again and compares it with the disk.
pub fn plan_regeneration(dir: &Path, features: &FeatureArgs) -> anyhow::Result<Regeneration> {
    let mut record = ProjectFile::load(dir)?;
    record.features = features.apply(record.features);
    let templates = Templates::with_overrides(
        record
            .templates_dir
            .as_ref()
            .map(|d| dir.join(d))
            .as_deref(),
    )?;
    let (project, files, lint_findings) = render_existing(dir, &record, &templates)?;
    let mut files: Vec<FileChange> = files
        .into_iter()
        .map(|file| classify(dir, &record, file))
        .collect();
    add_dependencies(&mut files)?;
    remove_unplanned(dir, &record, &mut files);
    let (missing_methods, removed_methods) = method_gaps(dir, &project);
    insert_stubs(&project, &missing_methods, &mut files);
    Ok(Regeneration {
        files,
        missing_methods,
        removed_methods,
        lint_findings,
    })
}

/// Renders the project from its own inputs; also lints the user's root protos.
fn render_existing(
    dir: &Path,
    record: &ProjectFile,
    templates: &Templates,
) -> anyhow::Result<(Project, Vec<RenderedFile>, Vec<lint::Finding>)> {
    if record.source == SourceKind::Spec {
        let path = dir.join(SPEC_FILE);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("cannot read the project's spec {}", path.display()))?;
        let (project, files) =
            render_spec_project(&record.name, &path, &text, &record.features, templates)?;
        return Ok((project, files, Vec::new()));
    }
    let input = ProtoInput {
        roots: record.proto_roots.clone(),
        includes: vec![dir.join("proto")],
        ..ProtoInput::default()
    };
    let compiled = input::compile(&input)?;
    let known = if record.source == SourceKind::Default {
        KnownServices::default_of(&record.name)
    } else {
        KnownServices::default()
    };
    let roots: Vec<_> = compiled
        .descriptors
        .file
        .iter()
        .filter(|file| record.proto_roots.iter().any(|root| root == file.name()))
        .collect();
    let findings = lint::lint(&roots);
    let (project, files) = render_compiled(
        &record.name,
        &compiled,
        &known,
        record.source,
        &record.features,
        templates,
    )?;
    Ok((project, files, findings))
}

fn classify(dir: &Path, record: &ProjectFile, file: RenderedFile) -> FileChange {
    let on_disk = fs::read_to_string(dir.join(&file.path)).ok();
    let change = match (&on_disk, file.ownership) {
        (None, _) => Change::Create,
        (Some(_), Ownership::UserOwned) => Change::KeepUserOwned,
        (Some(text), Ownership::ToolOwned) if *text == file.contents => Change::Unchanged,
        (Some(_), Ownership::ToolOwned) if file.path == PROJECT_FILE => Change::Update,
        (Some(text), Ownership::ToolOwned) => {
            if record.files.get(&file.path) == Some(&fingerprint(text)) {
                Change::Update
            } else {
                Change::EditedToolOwned
            }
        }
    };
    FileChange {
        file,
        change,
        on_disk,
    }
}

/// Adds a `Remove` change for each tool-owned file the tool wrote before and no longer plans
/// (after a feature is switched off); a file edited since is left alone.
fn remove_unplanned(dir: &Path, record: &ProjectFile, files: &mut Vec<FileChange>) {
    for (path, written) in &record.files {
        if files.iter().any(|f| f.file.path == *path) {
            continue;
        }
        let Ok(on_disk) = fs::read_to_string(dir.join(path)) else {
            continue;
        };
        if fingerprint(&on_disk) != *written {
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
fn method_gaps(dir: &Path, project: &Project) -> (Vec<MethodGap>, Vec<MethodGap>) {
    let mut missing = Vec::new();
    let mut removed = Vec::new();
    for service in &project.services {
        let file = handler_path(service);
        let Ok(text) = fs::read_to_string(dir.join(&file)) else {
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
    (missing, removed)
}

/// Turns each handler that lacks methods, and still has its marker, into an `InsertStubs`
/// change whose contents are the file with stubs inserted above the marker.
fn insert_stubs(project: &Project, missing: &[MethodGap], files: &mut [FileChange]) {
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
                stubs.push_str(&stub_method(service, method));
            }
        }
        if stubs.is_empty() {
            continue;
        }
        change.file.contents = format!("{}{stubs}{}", &text[..line_start], &text[line_start..]);
        change.change = Change::InsertStubs;
    }
}

/// A stub for one method that compiles whatever the handler file imports: every type is
/// written out in full.
fn stub_method(service: &Service, method: &Method) -> String {
    let full = |ty: &str| match ty.strip_prefix("pb::") {
        Some(rest) => format!("crate::{}::{rest}", service.proto_module),
        None => ty.to_owned(),
    };
    let (input, output) = (full(&method.input), full(&method.output));
    let request = match method.kind {
        MethodKind::ClientStreaming | MethodKind::Bidirectional => {
            format!("tonic::Streaming<{input}>")
        }
        MethodKind::Unary | MethodKind::ServerStreaming => input,
    };
    let mut text = String::new();
    let response = match method.kind {
        MethodKind::ServerStreaming | MethodKind::Bidirectional => {
            if !method.stream_type_is_camel {
                text.push_str("    #[allow(non_camel_case_types)]\n");
            }
            text.push_str(&format!(
                "    type {} = std::pin::Pin<\n        Box<dyn tokio_stream::Stream<Item = Result<{output}, tonic::Status>> + Send + 'static>,\n    >;\n\n",
                method.stream_type
            ));
            format!("Self::{}", method.stream_type)
        }
        MethodKind::Unary | MethodKind::ClientStreaming => output,
    };
    for line in &method.doc {
        text.push_str(&format!("    /// {line}\n").replace("///  ", "/// "));
    }
    text.push_str(&format!(
        "    async fn {}(\n        &self,\n        _request: tonic::Request<{request}>,\n    ) -> Result<tonic::Response<{response}>, tonic::Status> {{\n        Err(tonic::Status::unimplemented(\n            \"{} is not implemented yet\",\n        ))\n    }}\n\n",
        method.rust_name, method.route
    ));
    text
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

/// A short unified diff from the disk to the new contents.
fn short_diff(change: &FileChange, max_lines: usize) -> String {
    let old = change.on_disk.as_deref().unwrap_or_default();
    let diff = TextDiff::from_lines(old, change.file.contents.as_str())
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{} (on disk)", change.file.path),
            &format!("{} (generated)", change.file.path),
        )
        .to_string();
    let mut lines: Vec<&str> = diff.lines().collect();
    if lines.len() > max_lines {
        let hidden = lines.len() - max_lines;
        lines.truncate(max_lines);
        return format!("{}\n... {hidden} more diff lines\n", lines.join("\n"));
    }
    format!("{}\n", lines.join("\n"))
}

fn project_dir(project: Option<&Path>) -> PathBuf {
    project.map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs `microframework gen`.
pub fn run_gen(
    project: Option<&Path>,
    dry_run: bool,
    force: bool,
    features: &FeatureArgs,
    verbosity: Verbosity,
) -> anyhow::Result<()> {
    let dir = project_dir(project);
    let progress = Progress::new(if dry_run { Verbosity::Quiet } else { verbosity });
    progress.step("Rendering the project again");
    let planned = plan_regeneration(&dir, features);
    progress.finish();
    let regeneration = planned?;
    if dry_run {
        print!("{}", describe_plan(&regeneration));
        return Ok(());
    }
    let edited: Vec<&str> = regeneration
        .files
        .iter()
        .filter(|f| f.change == Change::EditedToolOwned)
        .map(|f| f.file.path.as_str())
        .collect();
    if !edited.is_empty() && !force {
        bail!(
            "{} changed since microframework wrote {}; nothing was written. Move the change into a file you own (a handler in src/services/, or a new module) and run `microframework gen` again, or pass --force to overwrite {}",
            edited.join(", "),
            if edited.len() == 1 { "it" } else { "them" },
            if edited.len() == 1 { "it" } else { "them" },
        );
    }
    let mut written = 0;
    for change in &regeneration.files {
        let write = match change.change {
            Change::Create | Change::Update | Change::InsertStubs | Change::AddDependencies => true,
            Change::EditedToolOwned => force,
            Change::Unchanged | Change::KeepUserOwned | Change::Remove => false,
        };
        if change.change == Change::Remove {
            let path = dir.join(&change.file.path);
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            written += 1;
            if verbosity == Verbosity::Verbose {
                eprintln!("  removed {}", change.file.path);
            }
        } else if write {
            write_file_atomically(&dir.join(&change.file.path), &change.file.contents)?;
            written += 1;
            if verbosity == Verbosity::Verbose {
                eprintln!("  wrote {}", change.file.path);
            }
        }
    }
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "Regenerated {}: {written} files written or removed.",
            dir.display()
        );
        for gap in &regeneration.missing_methods {
            let inserted = regeneration
                .files
                .iter()
                .any(|f| f.file.path == gap.file && f.change == Change::InsertStubs);
            if inserted {
                eprintln!("  {}: inserted a stub for `{}`", gap.file, gap.method);
            } else {
                eprintln!(
                    "  {}: `{}` is in the proto but not implemented, and the file has no marker line to insert a stub at",
                    gap.file, gap.method
                );
            }
        }
        for gap in &regeneration.removed_methods {
            eprintln!(
                "  {}: `{}` is no longer in the proto; it was left in place",
                gap.file, gap.method
            );
        }
    }
    Ok(())
}

/// The plan of a dry run: one line per file, with a diff for updates.
pub fn describe_plan(regeneration: &Regeneration) -> String {
    let mut text = String::new();
    for change in &regeneration.files {
        let label = match change.change {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
            Change::KeepUserOwned => "skip-user-owned",
            Change::EditedToolOwned => "edited-by-user (refused without --force)",
            Change::InsertStubs => "insert-stub",
            Change::AddDependencies => "add-dependencies",
            Change::Remove => "remove",
        };
        text.push_str(&format!("{label:<16} {}\n", change.file.path));
        if matches!(
            change.change,
            Change::Update
                | Change::EditedToolOwned
                | Change::InsertStubs
                | Change::AddDependencies
        ) {
            text.push_str(&short_diff(change, 60));
        }
    }
    for gap in &regeneration.missing_methods {
        text.push_str(&format!("missing-method   {}: {}\n", gap.file, gap.method));
    }
    for gap in &regeneration.removed_methods {
        text.push_str(&format!("removed-method   {}: {}\n", gap.file, gap.method));
    }
    text
}

/// Runs `microframework check`: exit 0 when the tool-owned files are as `gen` would write
/// them and every proto method is implemented; otherwise an error listing what is not.
/// Proto style findings are warnings, or problems with `strict`.
pub fn run_check(project: Option<&Path>, strict: bool, verbosity: Verbosity) -> anyhow::Result<()> {
    let dir = project_dir(project);
    let regeneration = plan_regeneration(&dir, &FeatureArgs::default())?;
    let mut problems = Vec::new();
    for finding in &regeneration.lint_findings {
        if strict {
            problems.push(format!("proto/{finding}"));
        } else if verbosity != Verbosity::Quiet {
            eprintln!("warning: proto/{finding}");
        }
    }
    for change in &regeneration.files {
        if change.change == Change::AddDependencies {
            problems.push(format!(
                "{}: lacks dependencies the project's features need (run `microframework gen`)\n{}",
                change.file.path,
                short_diff(change, 20)
            ));
        }
        if change.file.ownership != Ownership::ToolOwned {
            continue;
        }
        match change.change {
            Change::Create => problems.push(format!(
                "{}: missing (run `microframework gen`)",
                change.file.path
            )),
            Change::Update | Change::EditedToolOwned => {
                problems.push(format!(
                    "{}: differs from what `microframework gen` writes\n{}",
                    change.file.path,
                    short_diff(change, 20)
                ));
            }
            Change::Remove => problems.push(format!(
                "{}: no longer generated for the project's features (run `microframework gen`)",
                change.file.path
            )),
            Change::Unchanged
            | Change::KeepUserOwned
            | Change::InsertStubs
            | Change::AddDependencies => {}
        }
    }
    for gap in &regeneration.missing_methods {
        problems.push(format!(
            "{}: `{}` is in the proto but not implemented",
            gap.file, gap.method
        ));
    }
    if problems.is_empty() {
        if verbosity != Verbosity::Quiet {
            eprintln!(
                "{}: generated files are up to date and every method is implemented.",
                dir.display()
            );
        }
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!(
        "{} problem{} found by check",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
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
