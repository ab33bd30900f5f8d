//! `microframework check`: exit 1 when the generated files drifted from what `gen` writes,
//! or a proto method has no implementation; for CI.

use std::path::Path;

use anyhow::bail;

use crate::{
    cli::FeatureArgs,
    commands::gen::{plan_regeneration, project_dir, OUTDATED_LAYOUT},
    plan::Ownership,
    reconcile::Change,
    report::{short_diff, Verbosity},
};

/// Runs `microframework check`: exit 0 when the tool-owned files are as `gen` would write
/// them and every proto method is implemented; otherwise an error listing what is not.
/// Proto style findings are warnings, or problems with `strict`.
pub fn run(project: Option<&Path>, strict: bool, verbosity: Verbosity) -> anyhow::Result<()> {
    let dir = project_dir(project);
    let regeneration = plan_regeneration(&dir, &FeatureArgs::default(), false)?;
    if regeneration.outdated_kubernetes_layout && verbosity != Verbosity::Quiet {
        eprintln!("warning: {OUTDATED_LAYOUT}");
    }
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
                "{}: lacks dependencies the project's features need, or its runtime features differ from them (run `microframework gen`)\n{}",
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
            | Change::AddDependencies
            | Change::ReplaceUserOwned => {}
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
