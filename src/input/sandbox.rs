//! Rendering templates that may come from a stranger. A `templates_dir` override is text from
//! the project tree, which `check` runs on in CI for pull requests from anyone, so what a
//! template can do is bounded: it cannot read the environment (`get_env`), recurse (an
//! include or macro that reaches itself), ask `range` for more than [`MAX_RANGE`] numbers,
//! write more than [`MAX_OUTPUT_BYTES`] into one file or keep writing past [`MAX_RENDER`].
//! The built-in templates live under the same rules, so a test of them is a test of these.
//!
//! The recursion check walks Tera's syntax tree (`tera::ast` and `Tera::templates`, public
//! but hidden in its documentation): a Tera upgrade that changes them fails to compile here,
//! it cannot silently lift the check.

use std::{
    collections::{BTreeSet, HashMap},
    io::{self, Write},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail};
use tera::{
    ast::{Expr, ExprVal, Node},
    Context, Tera, Value,
};

use super::{sources::tera_error, tree::MAX_FILE_BYTES};

/// The most numbers `range` gives one call (the built-in templates ask for none).
pub const MAX_RANGE: usize = 10_000;

/// The largest file a template may render: the largest file the tool reads back.
pub const MAX_OUTPUT_BYTES: u64 = MAX_FILE_BYTES;

/// How long one template may go on writing.
pub const MAX_RENDER: Duration = Duration::from_secs(10);

/// An empty Tera with the bounded functions in place of the built-in ones.
pub fn tera() -> Tera {
    let mut tera = Tera::default();
    tera.autoescape_on(Vec::new());
    tera.register_function("get_env", |_: &HashMap<String, Value>| {
        Err(tera::Error::msg(
            "`get_env` is not available: a microframework template cannot read the environment",
        ))
    });
    tera.register_function("range", bounded_range);
    tera
}

fn bounded_range(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let number = |name: &str, default: u64| match args.get(name) {
        None => Ok(default),
        Some(value) => value.as_u64().ok_or_else(|| {
            tera::Error::msg(format!(
                "`range`: `{name}` must be a number of 0 or more, not {value}"
            ))
        }),
    };
    let start = number("start", 0)?;
    let end = number("end", 0)?;
    let step = number("step_by", 1)?.max(1);
    let count = end.saturating_sub(start).div_ceil(step);
    if count > MAX_RANGE as u64 {
        return Err(tera::Error::msg(format!(
            "`range` would give {count} numbers; a microframework template may ask for at most {MAX_RANGE}"
        )));
    }
    Ok(Value::Array(
        (start..end)
            .step_by(step as usize)
            .map(Value::from)
            .collect(),
    ))
}

/// Renders the template `name` of `tera` (made by [`tera`] and checked by
/// [`check_recursion`]) within the output and time bounds.
pub fn render(tera: &Tera, name: &str, context: &Context) -> anyhow::Result<String> {
    let mut output = Bounded::new();
    tera.render_to(name, context, &mut output)
        .map_err(|err| anyhow!("rendering {name}: {}", tera_error(&err)))?;
    String::from_utf8(output.bytes).map_err(|_| anyhow!("rendering {name}: not UTF-8"))
}

/// Renders `text`, a template of its own (a `to` path, a `when` condition, an input proto),
/// under the same rules.
pub fn one_off(text: &str, context: &Context) -> anyhow::Result<String> {
    let mut tera = tera();
    tera.add_raw_template("one_off", text)
        .map_err(|err| anyhow!("{}", tera_error(&err)))?;
    check_recursion(&tera)?;
    render(&tera, "one_off", context)
}

/// Output that refuses to grow past [`MAX_OUTPUT_BYTES`] or to go on past [`MAX_RENDER`].
struct Bounded {
    bytes: Vec<u8>,
    started: Instant,
}

impl Bounded {
    fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(4096),
            started: Instant::now(),
        }
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > MAX_OUTPUT_BYTES {
            return Err(io::Error::other(format!(
                "the output passed {} MiB, the most a template may write",
                MAX_OUTPUT_BYTES / (1024 * 1024)
            )));
        }
        if self.started.elapsed() > MAX_RENDER {
            return Err(io::Error::other(format!(
                "rendering took longer than {} s",
                MAX_RENDER.as_secs()
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A template body or one of its macros: what an include or a macro call reaches.
type Unit = (String, Option<String>);

/// Refuses templates that include or call themselves, directly or through others: Tera has
/// no depth limit, so such a template would overflow the stack and abort the tool.
pub fn check_recursion(tera: &Tera) -> anyhow::Result<()> {
    let mut edges: HashMap<Unit, BTreeSet<Unit>> = HashMap::new();
    for (name, template) in &tera.templates {
        let namespaces: HashMap<&str, &str> = template
            .imported_macro_files
            .iter()
            .map(|(file, namespace)| (namespace.as_str(), file.as_str()))
            .collect();
        let resolve = Resolver {
            template: name,
            namespaces: &namespaces,
        };
        let mut reached = BTreeSet::new();
        resolve.nodes(&template.ast, &mut reached);
        if let Some(parent) = &template.parent {
            reached.insert((parent.clone(), None));
        }
        edges.insert((name.clone(), None), reached);
        for (macro_name, definition) in &template.macros {
            let mut reached = BTreeSet::new();
            resolve.nodes(&definition.body, &mut reached);
            for default in definition.args.values().flatten() {
                resolve.expr(default, &mut reached);
            }
            edges.insert((name.clone(), Some(macro_name.clone())), reached);
        }
    }
    let mut done = BTreeSet::new();
    let mut starts: Vec<&Unit> = edges.keys().collect();
    starts.sort();
    for start in starts {
        let mut path = Vec::new();
        if let Some(cycle) = find_cycle(start, &edges, &mut path, &mut done) {
            bail!(
                "template {} reaches itself ({}); templates may not include or call themselves",
                describe(&cycle[0]),
                cycle.iter().map(describe).collect::<Vec<_>>().join(" -> ")
            );
        }
    }
    Ok(())
}

fn describe(unit: &Unit) -> String {
    match unit {
        (template, None) => template.clone(),
        (template, Some(name)) => format!("{template}, macro {name}"),
    }
}

/// Depth-first search from `unit`; returns the units of a cycle if one is reachable.
fn find_cycle(
    unit: &Unit,
    edges: &HashMap<Unit, BTreeSet<Unit>>,
    path: &mut Vec<Unit>,
    done: &mut BTreeSet<Unit>,
) -> Option<Vec<Unit>> {
    if let Some(at) = path.iter().position(|u| u == unit) {
        let mut cycle = path[at..].to_vec();
        cycle.push(unit.clone());
        return Some(cycle);
    }
    if done.contains(unit) {
        return None;
    }
    path.push(unit.clone());
    for next in edges.get(unit).into_iter().flatten() {
        if let Some(cycle) = find_cycle(next, edges, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(unit.clone());
    None
}

/// Finds what the nodes of one template reach.
struct Resolver<'a> {
    template: &'a str,
    namespaces: &'a HashMap<&'a str, &'a str>,
}

impl Resolver<'_> {
    fn nodes(&self, nodes: &[Node], reached: &mut BTreeSet<Unit>) {
        for node in nodes {
            match node {
                Node::Include(_, names, _) => {
                    reached.extend(names.iter().map(|name| (name.clone(), None)));
                }
                Node::Extends(_, name) => {
                    reached.insert((name.clone(), None));
                }
                Node::VariableBlock(_, expr) => self.expr(expr, reached),
                Node::Set(_, set) => self.expr(&set.value, reached),
                Node::FilterSection(_, section, _) => {
                    for arg in section.filter.args.values() {
                        self.expr(arg, reached);
                    }
                    self.nodes(&section.body, reached);
                }
                Node::Block(_, block, _) => self.nodes(&block.body, reached),
                Node::Forloop(_, forloop, _) => {
                    self.expr(&forloop.container, reached);
                    self.nodes(&forloop.body, reached);
                    if let Some(body) = &forloop.empty_body {
                        self.nodes(body, reached);
                    }
                }
                Node::If(branches, _) => {
                    for (_, condition, body) in &branches.conditions {
                        self.expr(condition, reached);
                        self.nodes(body, reached);
                    }
                    if let Some((_, body)) = &branches.otherwise {
                        self.nodes(body, reached);
                    }
                }
                // Macro bodies are units of their own; the rest reach nothing.
                _ => {}
            }
        }
    }

    fn expr(&self, expr: &Expr, reached: &mut BTreeSet<Unit>) {
        self.value(&expr.val, reached);
        for filter in &expr.filters {
            for arg in filter.args.values() {
                self.expr(arg, reached);
            }
        }
    }

    fn value(&self, value: &ExprVal, reached: &mut BTreeSet<Unit>) {
        match value {
            ExprVal::MacroCall(call) => {
                let template = if call.namespace == "self" {
                    self.template
                } else {
                    self.namespaces
                        .get(call.namespace.as_str())
                        .copied()
                        .unwrap_or(self.template)
                };
                reached.insert((template.to_owned(), Some(call.name.clone())));
                for arg in call.args.values() {
                    self.expr(arg, reached);
                }
            }
            ExprVal::Math(math) => {
                self.expr(&math.lhs, reached);
                self.expr(&math.rhs, reached);
            }
            ExprVal::Logic(logic) => {
                self.expr(&logic.lhs, reached);
                self.expr(&logic.rhs, reached);
            }
            ExprVal::In(within) => {
                self.expr(&within.lhs, reached);
                self.expr(&within.rhs, reached);
            }
            ExprVal::Test(test) => {
                for arg in &test.args {
                    self.expr(arg, reached);
                }
            }
            ExprVal::FunctionCall(call) => {
                for arg in call.args.values() {
                    self.expr(arg, reached);
                }
            }
            ExprVal::Array(items) => {
                for item in items {
                    self.expr(item, reached);
                }
            }
            ExprVal::StringConcat(concat) => {
                for value in &concat.values {
                    self.value(value, reached);
                }
            }
            ExprVal::String(_)
            | ExprVal::Int(_)
            | ExprVal::Float(_)
            | ExprVal::Bool(_)
            | ExprVal::Ident(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tera_with(templates: &[(&str, &str)]) -> anyhow::Result<Tera> {
        let mut tera = tera();
        tera.add_raw_templates(templates.to_vec())
            .map_err(|err| anyhow!("{}", tera_error(&err)))?;
        check_recursion(&tera)?;
        Ok(tera)
    }

    #[test]
    fn includes_and_macros_that_reach_themselves_are_refused() {
        for templates in [
            &[("a", "x{% include \"a\" %}")][..],
            &[("a", "{% include \"b\" %}"), ("b", "{% include \"a\" %}")],
            &[(
                "a",
                "{% macro m(n) %}{{ self::m(n=n) }}{% endmacro m %}{{ self::m(n=1) }}",
            )],
            &[
                ("m", "{% macro m() %}{% include \"a\" %}{% endmacro m %}"),
                (
                    "a",
                    "{% import \"m\" as ms %}{% if true %}{{ ms::m() | upper }}{% endif %}",
                ),
            ],
        ] {
            let err = tera_with(templates)
                .map(|_| ())
                .expect_err("refused")
                .to_string();
            assert!(err.contains("reaches itself"), "{templates:?}: {err}");
        }
        let tera = tera_with(&[
            ("_part", "part {{ n }}"),
            (
                "a",
                "{% for n in [1, 2] %}{% include \"_part\" %};{% endfor %}",
            ),
        ])
        .unwrap();
        assert_eq!(
            render(&tera, "a", &Context::new()).unwrap(),
            "part 1;part 2;"
        );
    }

    #[test]
    fn the_environment_is_out_of_reach_and_ranges_and_output_are_bounded() {
        std::env::set_var("MICROFRAMEWORK_SANDBOX_SECRET", "s3cret");
        let err = one_off(
            "{{ get_env(name=\"MICROFRAMEWORK_SANDBOX_SECRET\") }}",
            &Context::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot read the environment"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");

        let err = one_off("{{ range(end=100000000) | length }}", &Context::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 10000"), "{err}");
        assert_eq!(
            one_off(
                "{{ range(start=2, end=9, step_by=3) | join(sep=\",\") }}",
                &Context::new()
            )
            .unwrap(),
            "2,5,8"
        );

        let err = one_off(
            "{% for i in range(end=10000) %}{% for j in range(end=10000) %}0123456789{% endfor %}{% endfor %}",
            &Context::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("passed 8 MiB"), "{err}");
    }
}
