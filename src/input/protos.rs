//! Input stage: proto sources are parsed by protox into descriptors. Nothing downstream reads
//! proto text.
//!
//! Imports resolve, in order, from: sources held in memory (the rendered default proto or a
//! spec's proto), the user's include directories, the third-party protos bundled in the binary
//! (google/api, google/rpc, google/type, grpc health and reflection), and protox's own
//! google/protobuf well-known types.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use anyhow::{bail, Context};
use miette::Diagnostic;
use prost_types::FileDescriptorSet;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::input::{
    project_file, sources,
    tree::{self, OnDisk},
};

/// Proto sources held in memory, by import path (`user/v1/user.proto`).
#[derive(Debug, Clone, Default)]
pub struct ProtoSources {
    files: BTreeMap<String, String>,
}

impl ProtoSources {
    /// Adds a source file under its import path.
    pub fn insert(&mut self, import_path: impl Into<String>, source: impl Into<String>) {
        self.files.insert(import_path.into(), source.into());
    }

    fn get(&self, import_path: &str) -> Option<&str> {
        self.files.get(import_path).map(String::as_str)
    }
}

impl FileResolver for ProtoSources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The most bytes of proto source one compilation reads from disk: protox and the model take
/// about 200 times a proto's size in memory, and the largest public protos are a few MB.
pub const MAX_PROTO_BYTES: u64 = 8 * 1024 * 1024;

/// The deepest nesting of braces, brackets and parentheses a proto may have: real protos
/// nest a few levels, and protox's recursive parser overflows the stack on thousands.
pub const MAX_NESTING: usize = 64;

/// One include directory, read with the rules of [`tree`]: a file is found only if it lies
/// inside the directory (symbolic links followed), is a regular UTF-8 file within the size
/// limits and nests no deeper than [`MAX_NESTING`].
struct IncludeDir {
    dir: PathBuf,
    read: Arc<AtomicU64>,
}

impl FileResolver for IncludeDir {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let shown = || self.dir.join(name).display().to_string();
        if tree::inside_project(name).is_err() {
            return Err(protox::Error::file_not_found(name));
        }
        let source = match tree::read(&self.dir, name) {
            Ok(OnDisk::Missing) => return Err(protox::Error::file_not_found(name)),
            Ok(OnDisk::Text(source)) => source,
            Ok(OnDisk::NotText) => {
                return Err(protox::Error::new(format!(
                    "{}: not UTF-8 text, so not a .proto file",
                    shown()
                )))
            }
            Err(err) => return Err(protox::Error::new(format!("{err:#}"))),
        };
        let total =
            self.read.fetch_add(source.len() as u64, Ordering::Relaxed) + source.len() as u64;
        if total > MAX_PROTO_BYTES {
            return Err(protox::Error::new(format!(
                "{}: the protos imported so far pass {} MiB, the most microframework compiles at once",
                shown(),
                MAX_PROTO_BYTES / (1024 * 1024)
            )));
        }
        check_nesting(&source).map_err(|(line, column)| {
            protox::Error::new(format!(
                "{}:{line}:{column}: nested more than {MAX_NESTING} levels deep; microframework does not compile protos nested this deep",
                shown()
            ))
        })?;
        File::from_source(name, &source)
    }
}

/// The line and column where `source` first nests deeper than [`MAX_NESTING`], if it does.
/// Strings and comments are skipped, so a brace inside them does not count.
pub fn check_nesting(source: &str) -> Result<(), (usize, usize)> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                at = memchr_newline(bytes, at);
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at = source[at + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| at + 2 + end + 2);
                continue;
            }
            quote @ (b'"' | b'\'') => {
                at += 1;
                while at < bytes.len() && bytes[at] != quote && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' | b'<' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(line_column(source, at));
                }
            }
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |offset| from + offset)
}

/// The third-party protos embedded in the binary.
struct BundledProtos;

impl FileResolver for BundledProtos {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match sources::bundled_proto(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// What to compile: root files (by import path) and where their imports are found.
#[derive(Debug, Clone, Default)]
pub struct ProtoInput {
    /// Import paths of the root files, whose services the project serves.
    pub roots: Vec<String>,
    /// Sources held in memory.
    pub memory: ProtoSources,
    /// The user's include directories, searched in order.
    pub includes: Vec<PathBuf>,
    /// Whether the in-memory sources were made by the tool from a spec (so the tool owns
    /// their copies), rather than being the user's API.
    pub memory_is_derived: bool,
}

impl ProtoInput {
    /// Root proto files on disk and include directories (`-I`). A root outside every include
    /// directory brings its own directory as an extra include, so `--proto api.proto` works.
    pub fn from_files(roots: &[PathBuf], includes: &[PathBuf]) -> anyhow::Result<Self> {
        let mut input = Self::default();
        for dir in includes {
            if !dir.is_dir() {
                bail!("include directory {} does not exist", dir.display());
            }
            input.includes.push(dir.clone());
        }
        for root in roots {
            check_text_file(root)?;
            let name = match import_name(root, &input.includes) {
                Some(name) => name,
                None => {
                    let parent = match root.parent() {
                        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                        _ => PathBuf::from("."),
                    };
                    input.includes.push(parent);
                    import_name(root, &input.includes).with_context(|| {
                        format!("{}: cannot derive an import path", root.display())
                    })?
                }
            };
            if !input.roots.contains(&name) {
                input.roots.push(name);
            }
        }
        Ok(input)
    }

    /// Where a file of this import path was found, for messages; `None` when not the user's.
    fn display_path(&self, name: &str) -> Option<String> {
        if self.memory.get(name).is_some() {
            return Some(name.to_owned());
        }
        self.includes
            .iter()
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .map(|path| path.display().to_string())
    }

    fn user_source(&self, name: &str) -> anyhow::Result<Option<String>> {
        if let Some(source) = self.memory.get(name) {
            return Ok(Some(source.to_owned()));
        }
        for dir in &self.includes {
            if tree::inside_project(name).is_err() {
                break;
            }
            match tree::read(dir, name)? {
                OnDisk::Text(source) => return Ok(Some(source)),
                OnDisk::Missing => {}
                OnDisk::NotText => bail!("{}: not UTF-8 text", dir.join(name).display()),
            }
        }
        Ok(None)
    }
}

/// Whether a compiled file belongs to the user or is a bundled third-party file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From the user's files (or rendered by the tool from a name or spec).
    User,
    /// One of the third-party protos embedded in the binary.
    Bundled,
    /// Made by the tool from a service spec, and remade from it.
    Derived,
}

/// A compiled proto file the generated project needs a copy of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoFile {
    /// Import path: `user/v1/user.proto`.
    pub name: String,
    /// The source text.
    pub source: String,
    /// Where it came from.
    pub origin: Origin,
}

/// What protox made of the input.
#[derive(Debug, Clone)]
pub struct CompiledProtos {
    /// Import paths of the root files, whose services the project serves.
    pub roots: Vec<String>,
    /// Descriptors of the roots and their imports, dependencies first, with source info.
    pub descriptors: FileDescriptorSet,
    /// Every compiled file except protox's bundled google/protobuf ones, in dependency order.
    pub files: Vec<ProtoFile>,
    /// How to name each root in messages: its path on disk where it has one.
    pub root_display: BTreeMap<String, String>,
}

impl CompiledProtos {
    /// The root file `name` as the user knows it (its path on disk where it has one).
    pub fn display_root<'a>(&'a self, name: &'a str) -> &'a str {
        self.root_display.get(name).map_or(name, String::as_str)
    }
}

/// Compiles the input's roots and everything they import.
pub fn compile(input: &ProtoInput) -> anyhow::Result<CompiledProtos> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(input.memory.clone());
    let read = Arc::new(AtomicU64::new(0));
    for dir in &input.includes {
        resolver.add(IncludeDir {
            dir: dir.clone(),
            read: Arc::clone(&read),
        });
    }
    resolver.add(BundledProtos);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    for root in &input.roots {
        if let Err(err) = compiler.open_file(root) {
            bail!("{}", describe(&err, input));
        }
    }
    let descriptors = compiler.file_descriptor_set();
    let mut files = Vec::new();
    for file in &descriptors.file {
        let name = file.name();
        let bundled = sources::bundled_proto(name);
        let (source, origin) = match input.user_source(name)? {
            Some(source) if input.memory_is_derived && input.memory.get(name).is_some() => {
                (source, Origin::Derived)
            }
            // A project's own copy of a bundled file, as `new` wrote it, is still bundled.
            Some(source) if bundled.is_some() && without_header(&source) == bundled => (
                without_header(&source).unwrap_or_default().to_owned(),
                Origin::Bundled,
            ),
            Some(source) => (source, Origin::User),
            None => match bundled {
                Some(source) => (source.to_owned(), Origin::Bundled),
                None => continue,
            },
        };
        files.push(ProtoFile {
            name: name.to_owned(),
            source,
            origin,
        });
    }
    let root_display = input
        .roots
        .iter()
        .filter_map(|root| Some((root.clone(), input.display_path(root)?)))
        .collect();
    Ok(CompiledProtos {
        root_display,
        roots: input.roots.clone(),
        descriptors,
        files,
    })
}

/// The text after the tool's "do not edit" header line, if it has one.
fn without_header(source: &str) -> Option<&str> {
    source
        .strip_prefix("// ")
        .and_then(project_file::strip_header)
        .and_then(|rest| rest.strip_prefix('\n'))
}

/// One paragraph: the file with line and column where protox has them, the problem, and a
/// hint where one helps.
fn describe(err: &protox::Error, input: &ProtoInput) -> String {
    let message = err.to_string();
    let mut text = match err.file() {
        Some(name) => {
            let shown = input.display_path(name).unwrap_or_else(|| name.to_owned());
            let position = error_offset(err).and_then(|offset| {
                let source = input.user_source(name).ok().flatten()?;
                Some(line_column(&source, offset))
            });
            match position {
                Some((line, column)) => format!("{shown}:{line}:{column}: {message}"),
                None if message.contains(name) => message.clone(),
                None => format!("{shown}: {message}"),
            }
        }
        None => message.clone(),
    };
    if message.starts_with("import '") && message.ends_with("not found") {
        let searched: Vec<String> = input
            .includes
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        text.push_str(&format!(
            " (searched {}, then the bundled google/api, google/rpc, google/type, grpc and google/protobuf files; add the directory holding it with -I)",
            if searched.is_empty() { "no include directories".to_owned() } else { searched.join(", ") }
        ));
    }
    match err.help().map(|help| help.to_string()) {
        // protox parses a bad import path as a group and says so; say what is wrong.
        Some(help) if help.starts_with("imports may not contain") => {
            text = text.replace(
                "invalid group name",
                "invalid import path: an import is a path under an include directory, without `.` or `..` parts, a leading `/`, backslashes or repeated slashes",
            );
        }
        Some(help) => text.push_str(&format!(" (hint: {help})")),
        None => {}
    }
    text
}

/// Where the error is: the last label (for duplicates, the second definition).
fn error_offset(err: &protox::Error) -> Option<usize> {
    err.labels()?.last().map(|label| label.offset())
}

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn check_text_file(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{}: a directory, not a .proto file", path.display());
    }
    // A link to /dev/zero or a pipe would be read without end.
    match fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => {
            bail!(
                "{}: not a regular file, so not a .proto file",
                path.display()
            )
        }
        Ok(metadata) if metadata.len() > tree::MAX_FILE_BYTES => bail!(
            "{}: larger than {} MiB; microframework does not read it",
            path.display(),
            tree::MAX_FILE_BYTES / (1024 * 1024)
        ),
        _ => {}
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no such file", path.display())
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    if bytes.contains(&0) || std::str::from_utf8(&bytes).is_err() {
        bail!("{}: not a text file, so not a .proto file", path.display());
    }
    Ok(())
}

/// The import path of `file` relative to the first include directory that contains it.
fn import_name(file: &Path, includes: &[PathBuf]) -> Option<String> {
    let file = fs::canonicalize(file).ok()?;
    includes.iter().find_map(|dir| {
        let dir = fs::canonicalize(dir).ok()?;
        let relative = file.strip_prefix(&dir).ok()?;
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        Some(parts.join("/"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_memory(files: &[(&str, &str)], roots: &[&str]) -> ProtoInput {
        let mut input = ProtoInput::default();
        for (name, source) in files {
            input.memory.insert(*name, *source);
        }
        input.roots = roots.iter().map(|r| r.to_string()).collect();
        input
    }

    #[test]
    fn compiles_in_memory_sources_with_well_known_imports() {
        let input = in_memory(
            &[("demo/v1/demo.proto", "syntax = \"proto3\";\npackage demo.v1;\nimport \"google/protobuf/timestamp.proto\";\nmessage Ping { google.protobuf.Timestamp at = 1; }\nservice Demo { rpc Send(Ping) returns (Ping); }\n")],
            &["demo/v1/demo.proto"],
        );
        let compiled = compile(&input).expect("compiles");
        let names: Vec<_> = compiled.descriptors.file.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["google/protobuf/timestamp.proto", "demo/v1/demo.proto"]
        );
        let copied: Vec<_> = compiled
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.origin))
            .collect();
        assert_eq!(copied, [("demo/v1/demo.proto", Origin::User)]);
    }

    #[test]
    fn bundled_google_api_protos_resolve_and_are_copied() {
        let input = in_memory(
            &[("a.proto", "syntax = \"proto3\";\nimport \"google/api/annotations.proto\";\nimport \"google/rpc/status.proto\";\nmessage M { google.rpc.Status status = 1; }\nservice S { rpc Get(M) returns (M) { option (google.api.http) = { get: \"/m\" }; } }\n")],
            &["a.proto"],
        );
        let compiled = compile(&input).expect("compiles");
        let bundled: Vec<_> = compiled
            .files
            .iter()
            .filter(|f| f.origin == Origin::Bundled)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            bundled,
            [
                "google/api/http.proto",
                "google/api/annotations.proto",
                "google/rpc/status.proto"
            ]
        );
    }

    #[test]
    fn a_users_include_copy_wins_over_the_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("google/rpc");
        fs::create_dir_all(&own).unwrap();
        let source = "syntax = \"proto3\";\npackage google.rpc;\nmessage Status { int32 code = 1; string mine = 9; }\n";
        fs::write(own.join("status.proto"), source).unwrap();
        let mut input = in_memory(
            &[("a.proto", "syntax = \"proto3\";\nimport \"google/rpc/status.proto\";\nservice S { rpc Get(google.rpc.Status) returns (google.rpc.Status); }\n")],
            &["a.proto"],
        );
        input.includes.push(dir.path().to_path_buf());
        let compiled = compile(&input).expect("compiles");
        let status = compiled
            .files
            .iter()
            .find(|f| f.name == "google/rpc/status.proto")
            .expect("copied");
        assert_eq!(status.origin, Origin::User);
        assert_eq!(status.source, source);
    }

    #[test]
    fn syntax_errors_give_file_line_and_column() {
        let input = in_memory(
            &[("bad.proto", "syntax = \"proto3\";\n\nmessage {\n")],
            &["bad.proto"],
        );
        let err = compile(&input).unwrap_err().to_string();
        assert!(err.starts_with("bad.proto:3:9: "), "{err}");
    }

    #[test]
    fn missing_imports_list_where_they_were_looked_for() {
        let input = in_memory(
            &[(
                "a.proto",
                "syntax = \"proto3\";\nimport \"other/missing.proto\";\n",
            )],
            &["a.proto"],
        );
        let err = compile(&input).unwrap_err().to_string();
        assert!(
            err.starts_with("a.proto:2:1: import 'other/missing.proto' not found"),
            "{err}"
        );
        assert!(err.contains("searched no include directories"), "{err}");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}
