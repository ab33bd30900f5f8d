//! Write stage: puts rendered files on disk so that a failure never leaves a half-written
//! project behind.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::{input::tree, render::RenderedFile};

/// Creates a new project directory at `target` holding exactly `files`.
///
/// `target` must not exist, or be an empty directory. Everything is written into a temporary
/// sibling directory first, which is renamed into place only when complete.
pub fn create_project(target: &Path, files: &[RenderedFile]) -> anyhow::Result<()> {
    if target.exists() {
        if !target.is_dir() {
            bail!(
                "{} already exists and is not a directory; choose another name or --output",
                target.display()
            );
        }
        let mut entries =
            fs::read_dir(target).with_context(|| format!("cannot read {}", target.display()))?;
        if entries.next().is_some() {
            bail!("{} already exists and is not empty; nothing was written (choose another name or --output)", target.display());
        }
    }
    let parent = parent_dir(target);
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".microframework-new-")
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })?;
    for file in files {
        // A template override's `to` could name any path: only the project's are written.
        let path = staging.path().join(tree::inside_project(&file.path)?);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let staged = staging.keep();
    if let Err(err) = fs::rename(&staged, target) {
        // Nothing of ours may stay behind when the final step fails.
        let _ = fs::remove_dir_all(&staged);
        return Err(err)
            .with_context(|| format!("cannot move the new project into {}", target.display()));
    }
    Ok(())
}

/// Writes one file atomically: a temporary file in the same directory, renamed over `path`.
pub fn write_file_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut staged = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut staged, contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    staged
        .persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Ownership;

    fn file(path: &str, contents: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            ownership: Ownership::ToolOwned,
            contents: contents.into(),
        }
    }

    #[test]
    fn writes_every_file_and_leaves_no_staging_directory() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("demo");
        create_project(&target, &[file("a.txt", "a"), file("src/b.rs", "b")]).unwrap();
        assert_eq!(fs::read_to_string(target.join("src/b.rs")).unwrap(), "b");
        let names: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["demo"]);
    }

    #[test]
    fn an_empty_directory_is_filled() {
        let root = tempfile::tempdir().unwrap();
        create_project(root.path(), &[file("a.txt", "a")]).unwrap();
        assert!(root.path().join("a.txt").exists());
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_untouched() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("keep.txt"), "mine").unwrap();
        let err = create_project(root.path(), &[file("keep.txt", "theirs")]).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(
            fs::read_to_string(root.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
