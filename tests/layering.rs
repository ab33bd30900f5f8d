//! The stages of `src/` run one way: a stage imports only from the stages before it (and
//! from `naming`, the rules they share); `commands` and `cli` wire the stages, and no stage
//! imports them.

use std::{fs, path::Path};

/// The stages in data-flow order.
const STAGES: &[&str] = &[
    "input",
    "model",
    "plan",
    "render",
    "reconcile",
    "write",
    "report",
];

/// What every stage may use.
const SHARED: &[&str] = &["naming"];

/// The first module of every `crate::` path in `code`, in `use` trees (`crate::{a::b, c}`)
/// and in expressions alike.
fn crate_modules(code: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let Some(tree) = rest.strip_prefix('{') else {
            found.push(ident(rest));
            continue;
        };
        // The items at the top level of the braces.
        let mut depth = 0;
        let mut item_start = true;
        for (i, c) in tree.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                _ if item_start && !c.is_whitespace() => {
                    found.push(ident(&tree[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    found
}

/// The line with the contents of its string literals left out: a template path or a Rust
/// snippet in a string is data, not an import.
fn without_strings(line: &str) -> String {
    let mut code = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
        } else if c == '"' {
            in_string = true;
            code.push_str("\"\"");
        } else {
            code.push(c);
        }
    }
    code
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_stage_imports_a_later_stage_or_the_wiring() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let module = relative.split(['/', '.']).next().unwrap_or_default();
        let Some(position) = STAGES.iter().position(|stage| *stage == module) else {
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        let code: String = text
            .lines()
            .map(|line| {
                without_strings(line)
                    .split("//")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join(" ");
        for used in crate_modules(&code) {
            let allowed = match STAGES.iter().position(|stage| *stage == used) {
                Some(stage) => stage <= position,
                None => SHARED.contains(&used.as_str()),
            };
            if !allowed {
                wrong.push(format!("src/{relative} uses crate::{used}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn use_trees_and_paths_are_both_read() {
    let code = "use crate::{ input::{a, b}, write::c }; let x = crate::plan::f();";
    assert_eq!(crate_modules(code), ["input", "write", "plan"]);
    assert_eq!(
        without_strings(r#"let x = "crate::auth::X \" crate::y"; crate::z"#),
        r#"let x = ""; crate::z"#
    );
}

/// Every `.rs.tera` under `templates/`, recursively.
fn rust_templates(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("templates/ is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_templates(&path, found);
        } else if path.to_string_lossy().ends_with(".rs.tera") {
            found.push(path);
        }
    }
}

/// The framework's code is the runtime crate's (`runtime/`), where the compiler, clippy and
/// unit tests see it: no template is a library in disguise, 150 lines or more with fewer
/// than one template tag (`{{`, `{%`, `{#`) per 50 lines.
#[test]
fn no_template_is_a_runtime_module_with_a_few_tags() {
    let mut templates = Vec::new();
    rust_templates(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &mut templates,
    );
    assert!(templates.len() > 20, "templates found: {}", templates.len());
    let disguised: Vec<String> = templates
        .iter()
        .filter_map(|path| {
            let text = fs::read_to_string(path).expect("a template");
            let lines = text.lines().count();
            let tags = ["{{", "{%", "{#"]
                .iter()
                .map(|tag| text.matches(tag).count())
                .sum::<usize>();
            (lines >= 150 && tags * 50 < lines)
                .then(|| format!("{}: {lines} lines, {tags} tags", path.display()))
        })
        .collect();
    assert!(
        disguised.is_empty(),
        "move these into the runtime crate: {disguised:#?}"
    );
}
