//! The grammar of every name a deploy passes on to Docker, HAProxy or Compose's `.env`.
//!
//! A deploy request can come from anywhere that reaches Temporal (`deployctl`, the Web UI, the
//! `temporal` CLI), and the worker behind it holds the Docker socket and HAProxy's admin API.
//! So each name is checked against a strict grammar before use, by the CLI and again by the
//! workflow, and an error quotes at most a short, escaped excerpt of what it refused.

use crate::v1::Environment;

/// Why a name was refused. Its text is bounded, whatever the input's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// At most 60 bytes of `value`, escaped, so that a refusal never echoes a 10 kB string or a
/// control character back, whatever characters it holds.
pub(crate) fn excerpt(value: &str) -> String {
    let mut shown = String::new();
    for character in value.chars() {
        let escaped = character.escape_debug().to_string();
        if shown.len() + escaped.len() > 60 {
            shown.push('…');
            break;
        }
        shown.push_str(&escaped);
    }
    format!("\"{shown}\"")
}

fn check(
    what: &str,
    value: &str,
    max: usize,
    first: impl Fn(char) -> bool,
    rest: impl Fn(char) -> bool,
    grammar: &str,
) -> Result<(), Refused> {
    let mut characters = value.chars();
    let valid =
        value.len() <= max && characters.next().is_some_and(&first) && characters.all(&rest);
    if valid {
        Ok(())
    } else {
        Err(Refused(format!(
            "malformed {what} {}: {grammar}",
            excerpt(value)
        )))
    }
}

/// A Docker tag, which is what a version is: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn version(value: &str) -> Result<(), Refused> {
    check(
        "version",
        value,
        128,
        |c| c.is_ascii_alphanumeric() || c == '_',
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        "a version is a Docker tag (letters, digits, '_', '.', '-'; not starting with '.' or '-'; at most 128 characters)",
    )
}

/// A Docker container or Compose project/service name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
pub fn container(what: &str, value: &str) -> Result<(), Refused> {
    check(
        what,
        value,
        128,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        "letters, digits, '_', '.', '-', starting with a letter or digit, at most 128 characters",
    )
}

/// An image repository, with an optional registry host and port: lowercase path components
/// separated by '/', each `[a-z0-9]+([._-][a-z0-9]+)*`.
pub fn repository(value: &str) -> Result<(), Refused> {
    let refused = || {
        Refused(format!(
            "malformed image repository {}: lowercase path components ([a-z0-9], joined by '.', '_' or '-') separated by '/', an optional registry host:port first",
            excerpt(value)
        ))
    };
    if value.is_empty() || value.len() > 255 {
        return Err(refused());
    }
    let mut components = value.split('/').peekable();
    let mut first = true;
    while let Some(component) = components.next() {
        let is_registry = first && components.peek().is_some() && component.contains([':', '.']);
        first = false;
        let component = if is_registry {
            match component.split_once(':') {
                Some((host, port))
                    if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) =>
                {
                    host
                }
                Some(_) => return Err(refused()),
                None => component,
            }
        } else {
            component
        };
        let valid = !component.is_empty()
            && component.split(['.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        if !valid {
            return Err(refused());
        }
    }
    Ok(())
}

/// A HAProxy backend or server name as the Runtime API takes it: `[A-Za-z0-9_.:-]{1,64}`. No
/// space, ';' or newline, so it can never start a second command.
pub fn haproxy_identifier(what: &str, value: &str) -> Result<(), Refused> {
    check(
        what,
        value,
        64,
        |c| c.is_ascii_alphanumeric() || c == '_',
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'),
        "letters, digits, '_', '.', ':', '-', at most 64 characters",
    )
}

/// A variable written into Compose's `.env`: `[A-Za-z_][A-Za-z0-9_]{0,63}`.
pub fn env_variable(value: &str) -> Result<(), Refused> {
    check(
        "Compose variable",
        value,
        64,
        |c| c.is_ascii_alphabetic() || c == '_',
        |c| c.is_ascii_alphanumeric() || c == '_',
        "letters, digits and '_', not starting with a digit, at most 64 characters",
    )
}

/// One Runtime API command: printable ASCII with no ';' (HAProxy's command separator) and no
/// line break, so it is exactly one command.
pub fn runtime_api_command(value: &str) -> Result<(), Refused> {
    if value.is_empty()
        || value.len() > 512
        || !value.chars().all(|c| (' '..='~').contains(&c) && c != ';')
    {
        return Err(Refused(format!(
            "refused to send HAProxy {}: one command, printable ASCII, no ';' or line break",
            excerpt(value)
        )));
    }
    Ok(())
}

/// Every name of an environment that reaches Docker, HAProxy or `.env`. Optional ones (the
/// cron, the workers, the per-part variables) are checked when set.
pub fn environment(environment: &Environment) -> Result<(), Refused> {
    container("environment name", &environment.name)?;
    repository(&environment.image_repository)?;
    if !environment.worker_image_repository.is_empty() {
        repository(&environment.worker_image_repository)?;
    }
    container("blue container", &environment.blue_container)?;
    container("green container", &environment.green_container)?;
    haproxy_identifier("HAProxy backend", &environment.haproxy_backend)?;
    haproxy_identifier("HAProxy server", &environment.blue_server)?;
    haproxy_identifier("HAProxy server", &environment.green_server)?;
    for (what, name) in [
        ("cron container", &environment.cron_container),
        ("Compose project", &environment.compose_project),
        ("worker service", &environment.worker_service),
        ("Worker Deployment", &environment.worker_deployment_name),
    ] {
        if !name.is_empty() {
            container(what, name)?;
        }
    }
    for queue in environment
        .worker_task_queues
        .iter()
        .chain([&environment.deploy_task_queue])
        .filter(|queue| !queue.is_empty())
    {
        container("task queue", queue)?;
    }
    let variables = environment.image_variables.iter().chain([
        &environment.blue_image_variable,
        &environment.green_image_variable,
        &environment.cron_image_variable,
        &environment.worker_image_variable,
    ]);
    for variable in variables.filter(|v| !v.is_empty()) {
        env_variable(variable)?;
    }
    if !environment.notify_url.is_empty() {
        notify_url(&environment.notify_url)?;
    }
    Ok(())
}

/// A receiver of notifications: http or https, printable ASCII, no spaces.
pub fn notify_url(value: &str) -> Result<(), Refused> {
    let scheme_ok = value.starts_with("http://") || value.starts_with("https://");
    if !scheme_ok || value.len() > 2048 || !value.chars().all(|c| ('!'..='~').contains(&c)) {
        return Err(Refused(format!(
            "refused notify_url {}: an http:// or https:// URL, printable ASCII, no spaces",
            excerpt(value)
        )));
    }
    Ok(())
}

/// The hostile inputs every name check must refuse, with a bounded message.
#[cfg(test)]
pub(crate) fn hostile() -> Vec<String> {
    vec![
        String::new(),
        "v2; rm -rf /".into(),
        "x".repeat(10_000),
        "vé-ünïcode".into(),
        "../../etc".into(),
        "a;disable server api/blue".into(),
        "blue\nshow info".into(),
        "blue\r\nset server api/green state maint".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_inputs_are_refused_with_a_bounded_message() {
        type Check = fn(&str) -> Result<(), Refused>;
        let checks: [(&str, Check); 7] = [
            ("version", version),
            ("container", |v| container("container", v)),
            ("repository", repository),
            ("haproxy", |v| haproxy_identifier("HAProxy server", v)),
            ("variable", env_variable),
            ("command", runtime_api_command),
            ("notify_url", notify_url),
        ];
        for (name, check) in checks {
            for input in hostile() {
                // "../../etc" is a valid-looking command to HAProxy only in that it holds no
                // separator; it is refused by every name grammar.
                if name == "command" && input == "../../etc" {
                    continue;
                }
                let refused = check(&input).expect_err(&format!("{name} accepted {input:?}"));
                assert!(refused.0.len() < 400, "{name}: {} bytes", refused.0.len());
                assert!(!refused.0.contains('\n'), "{name}: {}", refused.0);
            }
        }
    }

    #[test]
    fn a_notify_url_is_http_or_https() {
        notify_url("http://receiver:8080/deploys").unwrap();
        notify_url("https://hooks.example.com/T0/B0?x=1").unwrap();
        for refused in [
            "ftp://x",
            "file:///etc/passwd",
            "http://a b",
            "receiver:8080",
        ] {
            notify_url(refused).expect_err(refused);
        }
    }

    #[test]
    fn the_seed_names_pass() {
        version("v2.0.0").unwrap();
        version("broken").unwrap();
        container("container", "ecomweb_api_blue").unwrap();
        repository("ecomweb-api").unwrap();
        repository("registry.local:5000/team/ecomweb-api").unwrap();
        haproxy_identifier("HAProxy server", "green").unwrap();
        env_variable("API_BLUE_IMAGE").unwrap();
        runtime_api_command("set server api/green state ready").unwrap();
    }

    #[test]
    fn repositories_take_no_uppercase_traversal_or_empty_parts() {
        for bad in [
            "Ecomweb",
            "../etc",
            "a//b",
            "a/",
            "host:port/x",
            "a_-b",
            "a b",
        ] {
            assert!(repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_environment_with_a_crafted_server_name_is_refused() {
        let crafted = Environment {
            name: "local".into(),
            image_repository: "ecomweb-api".into(),
            blue_container: "ecomweb_api_blue".into(),
            green_container: "ecomweb_api_green".into(),
            haproxy_backend: "api".into(),
            blue_server: "blue".into(),
            green_server: "green;disable server api/blue".into(),
            ..Default::default()
        };
        let refused = environment(&crafted).unwrap_err();
        assert!(refused.0.contains("HAProxy server"), "{refused}");
    }
}
