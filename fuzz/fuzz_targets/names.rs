//! No injection, by fuzzing: every name check and every HAProxy Runtime API command builder
//! of `deployctl-proto`, fed whatever libFuzzer makes up.
//!
//! The property: nothing panics; a name that a check accepts, and a command that a builder
//! returns, hold no ';', line break or other character outside printable ASCII, so an
//! accepted input can never start a second Runtime API command (or a second `.env` line);
//! each command is exactly the command it claims to be; and every refusal is one short line,
//! whatever the input's size.
//!
//! The input is used twice, so that a plain hostile string in the seed corpus reaches every
//! place: whole, in every name check, in one environment field (picked by its first byte) and
//! in each builder argument in turn (the others valid); then split on NUL bytes into a
//! backend, a server and an address, all at once.

#![no_main]

use deployctl_proto::{
    names::{self, Refused},
    runtime_api::{self, ServerAdminState, ServerHealth},
    v1::Environment,
};
use libfuzzer_sys::fuzz_target;

/// What a refusal may weigh: our words plus an excerpt of at most 60 escaped bytes.
const MAX_REFUSAL_BYTES: usize = 300;

fuzz_target!(|data: &[u8]| {
    let whole = String::from_utf8_lossy(data);
    check_names(&whole);
    check_environment(&whole, data.first().copied().unwrap_or(0));
    let port = port_from(data);
    check_builders(&whole, "green", "172.20.0.6", port);
    check_builders("api", &whole, "172.20.0.6", port);
    check_builders("api", "green", &whole, port);

    let mut parts = data.split(|byte| *byte == 0).map(String::from_utf8_lossy);
    let backend = parts.next().unwrap_or_default();
    let server = parts.next().unwrap_or_default();
    let address = parts.next().unwrap_or_default();
    check_builders(&backend, &server, &address, port);
});

fn port_from(data: &[u8]) -> u16 {
    match data {
        [high, low, ..] => u16::from_be_bytes([*high, *low]),
        _ => 3001,
    }
}

/// One line, and bounded whatever the input's size.
fn assert_refusal_is_bounded(refused: &Refused) {
    let bytes = refused.0.len();
    assert!(bytes <= MAX_REFUSAL_BYTES, "{bytes} bytes: {refused}");
    assert!(!refused.0.contains(['\n', '\r']), "{refused:?}");
}

/// Printable ASCII, no space and no ';': cannot end or start a command, or break a line.
fn assert_clean_name(what: &str, name: &str) {
    assert!(
        name.chars().all(|c| c.is_ascii_graphic() && c != ';'),
        "{what} accepted {name:?}"
    );
}

/// One Runtime API command: printable ASCII (spaces between words), no ';', no line break.
/// Written out here rather than trusting `names::runtime_api_command`, which is under test.
fn assert_one_command(command: &str) {
    let printable = |byte: u8| (b' '..=b'~').contains(&byte) && byte != b';';
    assert!(
        !command.is_empty() && command.bytes().all(printable),
        "built {command:?}"
    );
}

fn check_names(value: &str) {
    type Check = fn(&str) -> Result<(), Refused>;
    let checks: [(&str, Check); 7] = [
        ("version", names::version),
        ("container", |v| names::container("container", v)),
        ("repository", names::repository),
        ("HAProxy identifier", |v| {
            names::haproxy_identifier("HAProxy server", v)
        }),
        ("Compose variable", names::env_variable),
        ("server address", runtime_api::server_address),
        ("Runtime API command", names::runtime_api_command),
    ];
    for (what, check) in checks {
        match check(value) {
            Ok(()) if what == "Runtime API command" => assert_one_command(value),
            Ok(()) => assert_clean_name(what, value),
            Err(refused) => assert_refusal_is_bounded(&refused),
        }
    }
}

/// A valid environment with `value` in one checked field, picked by `pick`. One field, not
/// each in turn: a whole environment check per field would cost most of the run.
fn check_environment(value: &str, pick: u8) {
    type Set = fn(&mut Environment, String);
    // (field, required, setter): a required field is never accepted empty.
    let fields: [(&str, bool, Set); 17] = [
        ("name", true, |e, v| e.name = v),
        ("image_repository", true, |e, v| e.image_repository = v),
        ("blue_container", true, |e, v| e.blue_container = v),
        ("green_container", true, |e, v| e.green_container = v),
        ("haproxy_backend", true, |e, v| e.haproxy_backend = v),
        ("blue_server", true, |e, v| e.blue_server = v),
        ("green_server", true, |e, v| e.green_server = v),
        ("cron_container", false, |e, v| e.cron_container = v),
        ("compose_project", false, |e, v| e.compose_project = v),
        ("worker_service", false, |e, v| e.worker_service = v),
        ("worker_deployment_name", false, |e, v| {
            e.worker_deployment_name = v
        }),
        ("worker_task_queues", true, |e, v| {
            e.worker_task_queues = vec![v]
        }),
        ("image_variables", false, |e, v| e.image_variables = vec![v]),
        ("blue_image_variable", false, |e, v| {
            e.blue_image_variable = v
        }),
        ("green_image_variable", false, |e, v| {
            e.green_image_variable = v
        }),
        ("cron_image_variable", false, |e, v| {
            e.cron_image_variable = v
        }),
        ("worker_image_variable", false, |e, v| {
            e.worker_image_variable = v
        }),
    ];
    let (field, required, set) = fields[usize::from(pick) % fields.len()];
    let mut environment = valid_environment();
    set(&mut environment, value.to_string());
    match names::environment(&environment) {
        Ok(()) if value.is_empty() => assert!(!required, "{field} accepted empty"),
        Ok(()) => assert_clean_name(field, value),
        Err(refused) => assert_refusal_is_bounded(&refused),
    }
}

fn valid_environment() -> Environment {
    Environment {
        name: "local".into(),
        image_repository: "ecomweb-api".into(),
        blue_container: "ecomweb_api_blue".into(),
        green_container: "ecomweb_api_green".into(),
        haproxy_backend: "api".into(),
        blue_server: "blue".into(),
        green_server: "green".into(),
        cron_container: "ecomweb_cron".into(),
        compose_project: "ecomweb".into(),
        worker_service: "worker".into(),
        worker_deployment_name: "ecomweb-worker".into(),
        worker_task_queues: vec!["deploys".into()],
        image_variables: vec!["API_IMAGE".into()],
        blue_image_variable: "API_BLUE_IMAGE".into(),
        green_image_variable: "API_GREEN_IMAGE".into(),
        cron_image_variable: "CRON_IMAGE".into(),
        worker_image_variable: "WORKER_IMAGE".into(),
        ..Default::default()
    }
}

/// Every builder with these parts. A built command must be exactly the expected words: the
/// verb, then each part as one word, so no part added a word, a target or a command.
fn check_builders(backend: &str, server: &str, address: &str, port: u16) {
    let target = format!("{backend}/{server}");
    let mut built: Vec<(Result<String, Refused>, Vec<String>)> = vec![
        (
            runtime_api::show_servers_state(backend),
            words(&["show", "servers", "state", backend]),
        ),
        (
            runtime_api::set_server_address(backend, server, address, port),
            words(&[
                "set",
                "server",
                &target,
                "addr",
                address,
                "port",
                &port.to_string(),
            ]),
        ),
    ];
    for state in ServerAdminState::ALL {
        built.push((
            runtime_api::set_server_state(backend, server, state),
            words(&["set", "server", &target, "state", state.as_str()]),
        ));
    }
    for health in ServerHealth::ALL {
        built.push((
            runtime_api::set_server_health(backend, server, health),
            words(&["set", "server", &target, "health", health.as_str()]),
        ));
    }
    for (result, expected) in built {
        match result {
            Ok(command) => {
                assert_one_command(&command);
                assert!(
                    command.starts_with(&format!("{} {} ", expected[0], expected[1])),
                    "{command:?}"
                );
                let actual: Vec<&str> = command.split(' ').collect();
                assert_eq!(actual, expected, "{command:?}");
                if command.starts_with("set server ") {
                    // Exactly one backend/server target: neither name holds a '/'.
                    assert_eq!(actual[2].matches('/').count(), 1, "{command:?}");
                    assert_clean_name("backend", backend);
                    assert_clean_name("server", server);
                }
            }
            Err(refused) => assert_refusal_is_bounded(&refused),
        }
    }
    assert_one_command(runtime_api::show_servers_state_of_every_backend());
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}
