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
        tree::{self, OnDisk},
    },
    model::features::{DeployKind, Features, KubernetesLayout},
    plan::templates::Templates,
    plan::Ownership,
    reconcile::{self, Change, FileChange, Regeneration},
    render::record::record_text,
    report::{describe_plan, Progress, Verbosity},
    write::{remove_stale_temporaries, write_file_atomically},
};

/// What `gen` and `check` say about a project whose `deploy/k8s` keeps layout 1.
pub const OUTDATED_LAYOUT: &str = "deploy/k8s keeps the layout of an earlier microframework: its base holds placeholder Secrets, which every `kubectl apply -k` writes back over the real ones, and a replica count that resets the autoscaler's. `microframework gen --upgrade-deploy` moves the Secrets into the overlays; it rewrites deploy/k8s/overlays/dev/kustomization.yaml and deploy/k8s/overlays/prod/kustomization.yaml, keeping yours beside them as kustomization.yaml.orig to carry your changes over.";

/// Renders the project in `dir` again, with `features` switched, and compares it with the
/// disk; with `upgrade_deploy`, in the current Kubernetes layout, whose overlays replace the
/// user's.
pub fn plan_regeneration(
    dir: &Path,
    features: &FeatureArgs,
    upgrade_deploy: bool,
) -> anyhow::Result<Regeneration> {
    let record = ProjectFile::load(dir)?;
    let mut features = features.apply(Features::from_record(&record.features)?);
    let recorded = recorded_layout(dir, &record)?;
    features.kubernetes_layout = if upgrade_deploy {
        KubernetesLayout::default()
    } else {
        recorded
    };
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
    let mut regeneration =
        reconcile::compare(dir, &record, &project, files, lint_findings, &templates)?;
    if features.kubernetes_layout != recorded {
        for change in &mut regeneration.files {
            if KubernetesLayout::OVERLAYS.contains(&change.file.path.as_str())
                && change.change == Change::KeepUserOwned
                && change.on_disk.as_deref() != Some(change.file.contents.as_str())
            {
                change.change = Change::ReplaceUserOwned;
            }
        }
    }
    regeneration.outdated_kubernetes_layout = features.deploy == DeployKind::All
        && features.kubernetes_layout != KubernetesLayout::default();
    Ok(regeneration)
}

/// The Secrets the tool's version of a user's overlay generates and the user's lacks (a
/// database switched on after `new`): (file, Secret).
fn missing_generated_secrets(regeneration: &Regeneration) -> Vec<(&str, String)> {
    let mut missing = Vec::new();
    for change in &regeneration.files {
        let (Change::KeepUserOwned, Some(on_disk)) = (change.change, &change.on_disk) else {
            continue;
        };
        if !KubernetesLayout::OVERLAYS.contains(&change.file.path.as_str()) {
            continue;
        }
        let Some((_, generated)) = change.file.contents.split_once("\nsecretGenerator:\n") else {
            continue;
        };
        for line in generated.lines() {
            if let Some(secret) = line.strip_prefix("  - name: ") {
                if !on_disk.contains(&format!("name: {secret}\n")) {
                    missing.push((change.file.path.as_str(), secret.to_owned()));
                }
            }
        }
    }
    missing
}

/// The Kubernetes layout the project has: the recorded one, else (a project written before
/// layouts were recorded) the first if it has overlays, which are written for it.
fn recorded_layout(dir: &Path, record: &ProjectFile) -> anyhow::Result<KubernetesLayout> {
    if let Some(number) = record.deploy_layout {
        return KubernetesLayout::from_number(number);
    }
    for overlay in KubernetesLayout::OVERLAYS {
        if !matches!(tree::read(dir, overlay)?, OnDisk::Missing) {
            return Ok(KubernetesLayout::V1);
        }
    }
    Ok(KubernetesLayout::default())
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
    upgrade_deploy: bool,
    features: &FeatureArgs,
    verbosity: Verbosity,
) -> anyhow::Result<()> {
    let dir = project_dir(project);
    let progress = Progress::new(if dry_run { Verbosity::Quiet } else { verbosity });
    progress.step("Rendering the project again");
    let planned = plan_regeneration(&dir, features, upgrade_deploy);
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
    // The user's overlays that an upgrade replaces are kept beside them, never over a file.
    for change in &regeneration.files {
        if change.change == Change::ReplaceUserOwned {
            let kept = format!("{}.orig", change.file.path);
            if !matches!(tree::read(&dir, &kept)?, OnDisk::Missing) {
                bail!(
                    "{kept} exists, and `gen --upgrade-deploy` keeps the old {} there; nothing was written. Move it away and run the command again",
                    change.file.path
                );
            }
        }
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
        Change::Create
        | Change::Update
        | Change::InsertStubs
        | Change::AddDependencies
        | Change::ReplaceUserOwned => true,
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
            if let (Change::ReplaceUserOwned, Some(old)) = (change.change, &change.on_disk) {
                let kept = tree::resolve(&dir, &format!("{}.orig", change.file.path))?;
                write_file_atomically(&kept, old)?;
            }
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
        if regeneration.outdated_kubernetes_layout {
            eprintln!("warning: {OUTDATED_LAYOUT}");
        }
        for (file, secret) in missing_generated_secrets(&regeneration) {
            eprintln!(
                "  {file}: yours, so unchanged, but the pods now read the Secret `{secret}`, which it does not generate: add it to its secretGenerator as `microframework new` writes it"
            );
        }
        for change in &regeneration.files {
            if change.change == Change::ReplaceUserOwned {
                eprintln!(
                    "  {}: rewritten for the current layout; yours is {}.orig: carry your changes (image, patches) over",
                    change.file.path, change.file.path
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
