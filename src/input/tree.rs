//! The project tree as untrusted input. `check` runs in CI on pull requests from strangers and
//! `gen` on projects made elsewhere, so whatever a tree holds (a path recorded in
//! `microframework.toml`, a symbolic link, a device, a file in another encoding), the tool
//! reads, writes and removes only what lies inside the project: every path it uses is a
//! relative path of plain components, whatever exists of it resolves (symbolic links
//! followed) under the project's root, and what it reads is a regular file of bounded size.

use std::{
    fs,
    io::{self, Read},
    path::{Component, Path, PathBuf},
};

use anyhow::{anyhow, bail, Context};

/// The largest project file the tool reads: generated files are under 100 KB, a user's
/// handler or proto seldom over 1 MB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A project file as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    /// Nothing at that path.
    Missing,
    /// A regular file holding UTF-8 text.
    Text(String),
    /// A regular file that is not UTF-8 text: the tool never wrote it, so it is the user's.
    NotText,
}

/// `path` (`/`-separated, as recorded or planned) as a path inside the project: relative,
/// made only of plain names (no `..`, `.`, root or drive).
pub fn inside_project(path: &str) -> anyhow::Result<&Path> {
    let relative = Path::new(path);
    // Each `/`-separated part is checked as written: `Path::components` drops an inner `.`.
    let plain = !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if !plain {
        bail!(
            "\"{}\" is not a path inside the project",
            path.escape_default()
        );
    }
    Ok(relative)
}

/// `root` joined with `path`, once it is known to stay inside the project: the deepest part
/// of it that exists resolves, symbolic links followed, under the root's own resolved path,
/// and no part of it is a dangling symbolic link.
pub fn resolve(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let relative = inside_project(path)?;
    let root_real =
        fs::canonicalize(root).with_context(|| format!("cannot read {}", root.display()))?;
    let full = root.join(relative);
    let mut existing = full.as_path();
    loop {
        match fs::canonicalize(existing) {
            Ok(real) if real.starts_with(&root_real) => return Ok(full),
            Ok(_) => bail!(
                "{} leads outside the project through a symbolic link; microframework reads, writes and removes files only inside the project",
                existing.display()
            ),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if fs::symlink_metadata(existing).is_ok() {
                    bail!(
                        "{} is a symbolic link to nothing; microframework does not write through it",
                        existing.display()
                    );
                }
                match existing.parent() {
                    Some(parent) if parent.starts_with(root) => existing = parent,
                    _ => return Ok(full),
                }
            }
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", existing.display()))
            }
        }
    }
}

/// Reads the project file at `path` (see [`resolve`]). A directory, device, pipe or socket
/// there, or a file over [`MAX_FILE_BYTES`], is an error; a file in another encoding is
/// [`OnDisk::NotText`], never missing, so it is never taken for a file to write.
pub fn read(root: &Path, path: &str) -> anyhow::Result<OnDisk> {
    let full = resolve(root, path)?;
    let metadata = match fs::metadata(&full) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", full.display())),
    };
    if !metadata.is_file() {
        bail!(
            "{} is not a regular file (a directory, device, pipe or socket); microframework expects a file there",
            full.display()
        );
    }
    let too_large = || {
        anyhow!(
            "{} is larger than {} MiB; microframework does not read it",
            full.display(),
            MAX_FILE_BYTES / (1024 * 1024)
        )
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    fs::File::open(&full)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", full.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(String::from_utf8(bytes).map_or(OnDisk::NotText, OnDisk::Text))
}

/// Reads the project file at `path` as text, as [`read`] does; a file that is missing or not
/// UTF-8 is an error naming it and the reason (`what` says what the file is to the user).
pub fn read_text(root: &Path, path: &str, what: &str) -> anyhow::Result<String> {
    match read(root, path)? {
        OnDisk::Text(text) => Ok(text),
        OnDisk::Missing => bail!("{what} {} is missing", root.join(path).display()),
        OnDisk::NotText => bail!(
            "{what} {} is not UTF-8 text; convert it to UTF-8",
            root.join(path).display()
        ),
    }
}

/// Reads a file the user named on the command line (a spec): a regular UTF-8 file of at most
/// [`MAX_FILE_BYTES`], so a link to `/dev/zero` or a pipe is an error, not an endless read.
pub fn read_named(path: &Path, what: &str) -> anyhow::Result<String> {
    let metadata =
        fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    if metadata.len() > MAX_FILE_BYTES {
        bail!(
            "{what} {} is larger than {} MiB; microframework does not read it",
            path.display(),
            MAX_FILE_BYTES / (1024 * 1024)
        );
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// Checks every entry under the project directory `dir` (relative to `root`) before another
/// library reads it by name: a symbolic link must resolve inside the project, and every
/// entry must be a directory or a regular file. Links to directories are not walked into
/// (they are checked where they point), so the walk ends.
pub fn check_subtree(root: &Path, dir: &str) -> anyhow::Result<()> {
    let root_real =
        fs::canonicalize(root).with_context(|| format!("cannot read {}", root.display()))?;
    let start = resolve(root, dir)?;
    let mut pending = vec![start];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", current.display()))
            }
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read {}", current.display()))?
                .path();
            let metadata = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if metadata.file_type().is_symlink() {
                let real = fs::canonicalize(&path).map_err(|_| {
                    anyhow!(
                        "{} is a symbolic link to nothing; remove it",
                        path.display()
                    )
                })?;
                if !real.starts_with(&root_real) {
                    bail!(
                        "{} leads outside the project through a symbolic link; microframework reads files only inside the project (copy what it points at into the project instead)",
                        path.display()
                    );
                }
                let target = fs::metadata(&real)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if !target.is_file() && !target.is_dir() {
                    bail!("{} is not a regular file or a directory", path.display());
                }
            } else if metadata.is_dir() {
                pending.push(path);
            } else if !metadata.is_file() {
                bail!(
                    "{} is not a regular file (a device, pipe or socket); remove it",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn only_plain_relative_paths_are_inside_the_project() {
        for path in ["src/main.rs", "a", "deploy/k8s/base/service.yaml"] {
            assert!(inside_project(path).is_ok(), "{path}");
        }
        for path in [
            "",
            "../victim.txt",
            "/tmp/x/empty.lock",
            "src/../../x",
            "./src/main.rs",
            "src/./main.rs",
            "a\0b",
        ] {
            let err = inside_project(path).unwrap_err();
            assert!(
                err.to_string().contains("not a path inside the project"),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn a_link_out_of_the_project_is_refused_and_one_inside_it_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir(root.join("docs")).unwrap();
        fs::write(root.join("docs/readme.md"), "inside").unwrap();
        symlink(outside.path(), root.join("deploy")).unwrap();
        symlink(outside.path().join("secret"), root.join("build.rs")).unwrap();
        symlink(root.join("docs/readme.md"), root.join("README.md")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling")).unwrap();

        for path in ["deploy/new.yaml", "deploy/secret", "build.rs", "dangling"] {
            let err = read(root, path).unwrap_err().to_string();
            assert!(
                err.contains("symbolic link") && !err.contains("s3cret"),
                "{path}: {err}"
            );
            assert!(resolve(root, path).is_err(), "{path}");
        }
        assert_eq!(
            read(root, "README.md").unwrap(),
            OnDisk::Text("inside".into())
        );
        assert_eq!(read(root, "src/new.rs").unwrap(), OnDisk::Missing);
        assert_eq!(
            resolve(root, "src/new.rs").unwrap(),
            root.join("src/new.rs")
        );
    }

    #[test]
    fn special_large_and_foreign_files_are_told_apart_from_missing_ones() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir(root.join("dir")).unwrap();
        fs::write(root.join("latin1.md"), b"caf\xe9\n").unwrap();
        let large = fs::File::create(root.join("large.rs")).unwrap();
        large.set_len(MAX_FILE_BYTES + 1).unwrap();
        symlink("/dev/zero", root.join("zero")).unwrap();

        assert_eq!(read(root, "latin1.md").unwrap(), OnDisk::NotText);
        let err = read(root, "dir").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read(root, "large.rs").unwrap_err().to_string();
        assert!(err.contains("larger than 8 MiB"), "{err}");
        let err = read(root, "zero").unwrap_err().to_string();
        assert!(err.contains("outside the project"), "{err}");
    }

    #[test]
    fn a_subtree_with_a_link_out_or_a_pipe_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("proto/a")).unwrap();
        fs::write(root.join("proto/a/x.proto"), "syntax = \"proto3\";").unwrap();
        symlink(root.join("proto/a"), root.join("proto/loop")).unwrap();
        check_subtree(root, "proto").unwrap();
        check_subtree(root, "absent").unwrap();

        symlink(outside.path(), root.join("proto/out")).unwrap();
        let err = check_subtree(root, "proto").unwrap_err().to_string();
        assert!(err.contains("outside the project"), "{err}");
        fs::remove_file(root.join("proto/out")).unwrap();

        let made = std::process::Command::new("mkfifo")
            .arg(root.join("proto/a/pipe.proto"))
            .status()
            .unwrap();
        assert!(made.success());
        let err = check_subtree(root, "proto").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
