//! Write stage: puts rendered files on disk so that a failure never leaves a half-written
//! project behind.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
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
    // The temporary directory is made 0700; the project gets the mode any new directory
    // gets, as its subdirectories did.
    let probe = staging.path().join(".mode");
    fs::create_dir(&probe).with_context(|| format!("cannot create {}", probe.display()))?;
    let mode = fs::metadata(&probe)
        .with_context(|| format!("cannot read {}", probe.display()))?
        .permissions();
    fs::remove_dir(&probe).with_context(|| format!("cannot remove {}", probe.display()))?;
    fs::set_permissions(staging.path(), mode)
        .with_context(|| format!("cannot set the mode of {}", staging.path().display()))?;
    let staged = staging.keep();
    if let Err(err) = fs::rename(&staged, target) {
        // Nothing of ours may stay behind when the final step fails.
        let _ = fs::remove_dir_all(&staged);
        return Err(err)
            .with_context(|| format!("cannot move the new project into {}", target.display()));
    }
    Ok(())
}

/// The start of the name of every temporary file `gen` writes beside the file it replaces;
/// a `gen` that was killed can leave one, and the next `gen` removes it.
pub const TEMPORARY_PREFIX: &str = ".microframework-";

/// The end of the name of those temporary files.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// Writes one file atomically: a temporary file in the same directory, renamed over `path`.
/// The file keeps the mode it had; a new one gets the mode the user's umask gives new files
/// (a temporary file's own 0600 would keep a container's non-root user from reading it).
pub fn write_file_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let previous = fs::metadata(path).ok().map(|m| m.permissions());
    let (staged, mut file) = create_temporary(&dir)?;
    let written = std::io::Write::write_all(&mut file, contents.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| match previous {
            Some(permissions) => fs::set_permissions(&staged, permissions),
            None => Ok(()),
        })
        .and_then(|()| fs::rename(&staged, path));
    if let Err(err) = written {
        let _ = fs::remove_file(&staged);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// A new temporary file in `dir`, created as any new file is (so the umask sets its mode).
fn create_temporary(dir: &Path) -> anyhow::Result<(PathBuf, fs::File)> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let name = format!(
            "{TEMPORARY_PREFIX}{}-{}{TEMPORARY_SUFFIX}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot create a temporary file in {}", dir.display())
                })
            }
        }
    }
}

/// Removes the temporary files a killed `gen` left in `dir` (its own files only: regular
/// files named like [`write_file_atomically`]'s); returns how many.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.starts_with(TEMPORARY_PREFIX)
            && name.ends_with(TEMPORARY_SUFFIX)
            && entry.file_type().is_ok_and(|kind| kind.is_file());
        if ours && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
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
