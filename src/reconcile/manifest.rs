//! Adding what the chosen features need to the user's `Cargo.toml`: dependencies, their cargo
//! features and the crate's own features. Nothing is removed or rewritten, so the user's
//! edits, comments and layout stay, with one exception: the features of the runtime crate
//! (a tool-owned crate) follow the chosen parts exactly, so a part switched off stops
//! compiling its runtime module.

use anyhow::Context;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// The runtime crate's package, whose features the tool sets.
const RUNTIME: &str = "microframework-runtime";

/// Tables merged key by key.
const TABLES: &[&str] = &[
    "features",
    "dependencies",
    "dev-dependencies",
    "build-dependencies",
];

/// `on_disk` with whatever `rendered` has that it lacks, with a line per addition; `None`
/// when nothing is missing.
pub fn add_missing(on_disk: &str, rendered: &str) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let mut document: DocumentMut = on_disk.parse().context("the project's Cargo.toml")?;
    let wanted: DocumentMut = rendered
        .parse()
        .context("the generated Cargo.toml (a bug in microframework)")?;
    let mut added = Vec::new();
    for name in TABLES {
        let Some(wanted_table) = wanted.get(name).and_then(Item::as_table) else {
            continue;
        };
        if document.get(name).is_none() {
            document.insert(name, Item::Table(wanted_table.clone()));
            added.push(format!("[{name}]"));
            continue;
        }
        let table = document[name]
            .as_table_mut()
            .with_context(|| format!("[{name}] in Cargo.toml is not a table"))?;
        merge_table(name, table, wanted_table, &mut added);
    }
    if added.is_empty() {
        return Ok(None);
    }
    Ok(Some((document.to_string(), added)))
}

fn merge_table(name: &str, table: &mut Table, wanted: &Table, added: &mut Vec<String>) {
    for (key, item) in wanted.iter() {
        match table.get_mut(key) {
            None => {
                table.insert(key, item.clone());
                added.push(format!("{name}.{key}"));
            }
            Some(existing) if key == RUNTIME && *name != *"features" => {
                let wanted_list = item
                    .as_inline_table()
                    .and_then(|t| t.get("features"))
                    .and_then(Value::as_array);
                if let Some(wanted_list) = wanted_list {
                    if let Some(now) = set_features(existing, wanted_list) {
                        added.push(format!("{name}.{key}: features {now}"));
                    }
                }
            }
            Some(existing) => {
                let wanted_list = if *name == *"features" {
                    item.as_array()
                } else {
                    item.as_inline_table()
                        .and_then(|t| t.get("features"))
                        .and_then(Value::as_array)
                };
                if let Some(wanted_list) = wanted_list {
                    for value in missing_entries(existing, name, wanted_list) {
                        added.push(format!("{name}.{key}: {value}"));
                    }
                }
            }
        }
    }
}

/// Sets the `features` of the dependency `existing` to `wanted`, in its order; the new list
/// as TOML when it changed.
fn set_features(existing: &mut Item, wanted: &Array) -> Option<String> {
    let wanted: Vec<&str> = wanted.iter().filter_map(Value::as_str).collect();
    let list = match existing {
        Item::Value(Value::InlineTable(inline)) => inline.get("features").and_then(Value::as_array),
        Item::Table(table) => table.get("features").and_then(Item::as_array),
        _ => None,
    };
    let now: Vec<&str> = list.map_or_else(Vec::new, |list| {
        list.iter().filter_map(Value::as_str).collect()
    });
    if now == wanted {
        return None;
    }
    let array: Array = wanted.iter().copied().collect();
    let shown = array.to_string();
    match existing {
        Item::Value(Value::InlineTable(inline)) => {
            inline.insert("features", Value::Array(array));
        }
        Item::Table(table) => {
            table.insert("features", Item::Value(Value::Array(array)));
        }
        _ => return None,
    }
    Some(shown.trim().to_owned())
}

/// Adds the strings of `wanted` that the list of `existing` lacks (a feature's list, or a
/// dependency's `features`), turning `dep = "1"` into an inline table if needed.
fn missing_entries(existing: &mut Item, table: &str, wanted: &Array) -> Vec<String> {
    let list: Option<&mut Array> = if table == "features" {
        existing.as_array_mut()
    } else {
        if let Some(version) = existing.as_str().map(str::to_owned) {
            let mut inline = InlineTable::new();
            inline.insert("version", version.into());
            *existing = Item::Value(Value::InlineTable(inline));
        }
        match existing {
            Item::Value(Value::InlineTable(inline)) => {
                if !inline.contains_key("features") {
                    inline.insert("features", Value::Array(Array::new()));
                }
                inline.get_mut("features").and_then(Value::as_array_mut)
            }
            Item::Table(table) => {
                if !table.contains_key("features") {
                    table.insert("features", Item::Value(Value::Array(Array::new())));
                }
                table.get_mut("features").and_then(Item::as_array_mut)
            }
            _ => None,
        }
    };
    let Some(list) = list else {
        return Vec::new();
    };
    let mut added = Vec::new();
    for value in wanted.iter().filter_map(Value::as_str) {
        if !list.iter().any(|have| have.as_str() == Some(value)) {
            list.push(value);
            added.push(value.to_owned());
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"[features]
default = ["otlp"]
otlp = ["dep:opentelemetry"]

[dependencies]
opentelemetry = { version = "0.33", optional = true }
tonic = { version = "0.14", features = ["gzip", "tls-ring"] }
tracing = "0.1"
"#;

    #[test]
    fn missing_dependencies_features_and_cargo_features_are_added() {
        let on_disk = "[package]\nname = \"demo\"\n\n[dependencies]\n# pinned on purpose\ntonic = \"0.14\"\ntracing = \"0.1\"\nmine = \"2\"\n";
        let (merged, added) = add_missing(on_disk, RENDERED).unwrap().expect("changes");
        assert_eq!(
            added,
            [
                "[features]",
                "dependencies.opentelemetry",
                "dependencies.tonic: gzip",
                "dependencies.tonic: tls-ring"
            ]
        );
        assert!(merged.contains("# pinned on purpose\n"), "{merged}");
        assert!(merged.contains("mine = \"2\""), "{merged}");
        assert!(
            merged.contains(r#"tonic = { version = "0.14", features = ["gzip", "tls-ring"] }"#),
            "{merged}"
        );
        assert_eq!(add_missing(&merged, RENDERED).unwrap(), None, "idempotent");
    }

    #[test]
    fn the_runtime_features_follow_the_chosen_parts_exactly() {
        let rendered = "[dependencies]\nmicroframework-runtime = { path = \"runtime\", features = [\"jwt\", \"sqlite\"] }\n";
        let on_disk = "[dependencies]\nmicroframework-runtime = { path = \"runtime\", features = [\"jwt\", \"postgres\"] }\nsqlx = { version = \"0.9\", features = [\"postgres\"] }\n";
        let (merged, added) = add_missing(on_disk, rendered).unwrap().expect("changes");
        assert_eq!(
            added,
            [r#"dependencies.microframework-runtime: features ["jwt", "sqlite"]"#]
        );
        assert!(
            merged.contains(
                r#"microframework-runtime = { path = "runtime", features = ["jwt", "sqlite"] }"#
            ),
            "{merged}"
        );
        assert!(merged.contains(r#"sqlx = { version = "0.9", features = ["postgres"] }"#));
        assert_eq!(add_missing(&merged, rendered).unwrap(), None, "idempotent");
    }

    #[test]
    fn a_feature_list_gains_only_what_it_lacks() {
        let on_disk = "[features]\ndefault = [\"mine\"]\nmine = []\notlp = [\"dep:opentelemetry\"]\n\n[dependencies]\nopentelemetry = { version = \"0.33\", optional = true }\ntonic = { version = \"0.14\", features = [\"gzip\", \"tls-ring\"] }\ntracing = \"0.1\"\n";
        let (merged, added) = add_missing(on_disk, RENDERED).unwrap().expect("changes");
        assert_eq!(added, ["features.default: otlp"]);
        assert!(merged.contains(r#"default = ["mine", "otlp"]"#), "{merged}");
    }
}
