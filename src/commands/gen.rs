//! `microframework gen`: render the project again from what `microframework.toml` records,
//! compare it with the disk, and write what changed.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::{
    cli::FeatureArgs,
    commands::pipeline::render_existing,
    input::{
        project_file::{fingerprint, ProjectFile, PROJECT_FILE},
        tree,
    },
    model::features::Features,
    plan::templates::Templates,
    plan::Ownership,
    reconcile::{self, Change, FileChange, Regeneration},
    render::record::record_text,
    report::{describe_plan, Progress, Verbosity},
    write::{remove_stale_temporaries, write_file_atomically},
};

/// Renders the project in `dir` again, with `features` switched, and compares it with the
/// disk.
pub fn plan_regeneration(dir: &Path, features: &FeatureArgs) -> anyhow::Result<Regeneration> {
    let record = ProjectFile::load(dir)?;
    let features = features.apply(Features::from_record(&record.features)?);
    // `ProjectFile::load` checked that the directory is a path inside the project.
    let overrides = match &record.templates_dir {
        Some(recorded) => Some((tree::resolve(dir, recorded)?, recorded.as_str())),
        None => None,
    };
    let templates = Templates::with_overrides(
        overrides
            .as_ref()
            .map(|(path, recorded)| (path.as_path(), *recorded)),
    )?;
    let (project, files, lint_findings) = render_existing(dir, &record, &features, &templates)?;
    reconcile::compare(dir, &record, &project, files, lint_findings, &templates)
}

/// The project directory: `--project`, or the current one.
pub fn project_dir(project: Option<&Path>) -> PathBuf {
    project.map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs `microframework gen`.
pub fn run(
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
    // A `gen` that was killed may have left temporary files beside the files it wrote.
    let mut dirs: Vec<&str> = regeneration
        .files
        .iter()
        .map(|change| change.file.path.rsplit_once('/').map_or("", |(dir, _)| dir))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for relative in dirs {
        let path = if relative.is_empty() {
            dir.clone()
        } else {
            tree::resolve(&dir, relative)?
        };
        remove_stale_temporaries(&path);
    }
    let writes = |change: &FileChange| match change.change {
        Change::Create | Change::Update | Change::InsertStubs | Change::AddDependencies => true,
        Change::EditedToolOwned => force,
        Change::Unchanged | Change::KeepUserOwned | Change::Remove => false,
    };
    let (record, files): (Vec<_>, Vec<_>) = regeneration
        .files
        .iter()
        .partition(|change| change.file.path == PROJECT_FILE);
    // The record is written first with the fingerprints the changed files have now, and
    // again last without them: a `gen` killed in between leaves a project whose next `gen`
    // recognises every file, whichever version it holds, and finishes.
    let changing: Vec<&FileChange> = files
        .iter()
        .copied()
        .filter(|change| writes(change) || change.change == Change::Remove)
        .collect();
    let journaled = !changing.is_empty();
    if let (Some(planned), true) = (record.first(), journaled) {
        let mut interim: ProjectFile = toml::from_str(&planned.file.contents)
            .context("cannot read back the planned microframework.toml")?;
        interim.unfinished = changing
            .iter()
            .filter(|change| change.file.ownership == Ownership::ToolOwned)
            .filter_map(|change| {
                Some((
                    change.file.path.clone(),
                    fingerprint(change.on_disk.as_ref()?),
                ))
            })
            .collect();
        write_file_atomically(&tree::resolve(&dir, PROJECT_FILE)?, &record_text(&interim)?)?;
    }
    let mut written = 0;
    for change in files.into_iter().chain(record) {
        // The interim record is replaced by the planned one, even if that equals the old.
        let write = writes(change) || (journaled && change.file.path == PROJECT_FILE);
        if change.change == Change::Remove {
            let path = tree::resolve(&dir, &change.file.path)?;
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            remove_empty_parents(&dir, &path);
            written += 1;
            if verbosity == Verbosity::Verbose {
                eprintln!("  removed {}", change.file.path);
            }
        } else if write {
            let path = tree::resolve(&dir, &change.file.path)?;
            write_file_atomically(&path, &change.file.contents)?;
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
        for (file, receives) in &regeneration.rewired_handlers {
            let change = if *receives {
                "now passes the database: `from_config(config: &Config, database: &Database)`"
            } else {
                "no longer passes a database: `from_config(config: &Config)`"
            };
            eprintln!("  {file}: yours, so unchanged, but the server {change}; change its signature to match");
        }
        for (file, written_for, now) in &regeneration.foreign_migrations {
            eprintln!(
                "  {file}: yours, so unchanged, but written for {written_for}: rewrite it for {now}, or delete it and run `gen` again for the tool's version, before the server starts"
            );
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

/// Removes the directories that removing `file` left empty, up to the project's root; a
/// directory with anything else in it stays.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut parent = file.parent();
    while let Some(dir) = parent {
        if dir == root || !dir.starts_with(root) || fs::remove_dir(dir).is_err() {
            break;
        }
        parent = dir.parent();
    }
}
