//! Reading a service's configuration: a TOML file whose missing keys keep their defaults,
//! then environment variables over it. The generated `config.rs` declares the sections and
//! which variable sets which key; this is how they are read.

use std::{fmt, path::Path, str::FromStr};

use anyhow::Context;
use serde::de::DeserializeOwned;

/// Reads the configuration file at `path` into `T`, refusing unknown keys (as `T` does) but
/// ignoring, with a line on stderr, the `ignored_sections` (of features the service was
/// generated without) and the `ignored_keys` (`(section, key)`: of other kinds of its
/// features), so that switching features with `gen` never makes an existing file invalid.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { port: u16 }
///
/// let path = std::env::temp_dir().join(format!("{}-doc-config.toml", std::process::id()));
/// std::fs::write(&path, "port = 7000\n[tracing]\nendpoint = 'x'\n")?;
/// let config: Config = microframework_runtime::config::read(&path, &["tracing"], &[])?;
/// std::fs::remove_file(&path)?;
/// assert_eq!(config.port, 7000);
/// # Ok(())
/// # }
/// ```
pub fn read<T: DeserializeOwned>(
    path: &Path,
    ignored_sections: &[&str],
    ignored_keys: &[(&str, &str)],
) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    for section in ignored_sections {
        if table.remove(*section).is_some() {
            eprintln!(
                "{}: [{section}] is ignored: this service is generated without it",
                path.display()
            );
        }
    }
    for (section, key) in ignored_keys {
        let entries = table.get_mut(*section).and_then(toml::Value::as_table_mut);
        if entries.and_then(|entries| entries.remove(*key)).is_some() {
            eprintln!(
                "{}: [{section}] {key} is ignored: this service is generated with another kind of {section}",
                path.display()
            );
        }
    }
    toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("invalid config file {}", path.display()))
}

/// `value`, or the contents of `file` (trimmed) when it is set: a secret mounted as a file
/// wins over one in the environment. `setting` names the file's setting in the error.
///
/// ```
/// use microframework_runtime::config::secret;
///
/// assert_eq!(secret("from-env", "", "auth.secret_file").unwrap(), "from-env");
/// let err = secret("", "/no/such/file", "auth.secret_file").unwrap_err();
/// assert!(err.to_string().contains("cannot read auth.secret_file /no/such/file"));
/// ```
pub fn secret(value: &str, file: &str, setting: &str) -> anyhow::Result<String> {
    if file.is_empty() {
        return Ok(value.to_owned());
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {setting} {file}"))?;
    Ok(text.trim().to_owned())
}

/// Sets `slot` from the environment variable `name`, looked up through `var`, when it is set;
/// the error names the variable and its value.
///
/// ```
/// use microframework_runtime::config::override_from;
///
/// let mut port = 50051_u16;
/// let env = |name: &str| (name == "GRPC_PORT").then(|| "7000".to_owned());
/// override_from(&env, "GRPC_PORT", &mut port).unwrap();
/// assert_eq!(port, 7000);
/// let bad = |_: &str| Some("http".to_owned());
/// let err = override_from(&bad, "GRPC_PORT", &mut port).unwrap_err();
/// assert!(err.to_string().contains("GRPC_PORT=\"http\""));
/// ```
pub fn override_from<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut T,
) -> anyhow::Result<()>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    if let Some(raw) = var(name) {
        *slot = raw
            .parse()
            .map_err(|err| anyhow::anyhow!("environment variable {name}={raw:?}: {err}"))?;
    }
    Ok(())
}

/// Applies environment overrides, one line per variable: `"NAME" => field`, each through
/// [`override_from`] and the lookup `var`; the first bad value returns its error from the
/// enclosing function.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// #[derive(Default)]
/// struct Grpc { host: String, port: u16 }
///
/// let mut grpc = Grpc::default();
/// let var = |name: &str| (name == "GRPC_PORT").then(|| "7000".to_owned());
/// microframework_runtime::env_overrides! { var;
///     "GRPC_HOST" => grpc.host,
///     "GRPC_PORT" => grpc.port,
/// }
/// assert_eq!((grpc.host.as_str(), grpc.port), ("", 7000));
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! env_overrides {
    ($var:expr; $($name:literal => $slot:expr),+ $(,)?) => {{
        let var = &$var;
        $( $crate::config::override_from(var, $name, &mut $slot)?; )+
    }};
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        port: u16,
        discovery: Discovery,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Discovery {
        endpoints: String,
    }

    fn read_text(name: &str, text: &str) -> anyhow::Result<Config> {
        let path = std::env::temp_dir().join(format!("{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let config = read(&path, &["tls"], &[("discovery", "redis_url")]);
        let _ = std::fs::remove_file(&path);
        config
    }

    #[test]
    fn ignored_sections_and_keys_are_dropped_and_others_kept() {
        let text = "port = 7\n[tls]\ncert = 1\n[discovery]\nendpoints = 'a'\nredis_url = 'b'\n";
        let config = read_text("ignored", text).expect("valid");
        assert_eq!(config.port, 7);
        assert_eq!(config.discovery.endpoints, "a");
    }

    #[test]
    fn unknown_keys_and_bad_files_are_refused_naming_the_file() {
        let err = format!("{:#}", read_text("typo", "prot = 7\n").unwrap_err());
        assert!(
            err.contains("invalid config file") && err.contains("prot"),
            "{err}"
        );
        let err = format!("{:#}", read_text("broken", "port = \n").unwrap_err());
        assert!(err.contains("-broken.toml"), "{err}");
        let missing = read::<Config>(Path::new("/nonexistent/config.toml"), &[], &[]);
        let err = format!("{:#}", missing.unwrap_err());
        assert!(
            err.contains("cannot read config file /nonexistent"),
            "{err}"
        );
    }

    #[test]
    fn an_unset_variable_leaves_the_value() {
        let mut port = 1_u16;
        override_from(&|_: &str| None, "GRPC_PORT", &mut port).expect("nothing to parse");
        assert_eq!(port, 1);
    }
}
