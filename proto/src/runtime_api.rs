//! Every HAProxy Runtime API command deployctl sends, built here and nowhere else.
//!
//! The Runtime API runs one command per connection with admin rights, but a ';' or a line
//! break inside that command starts another one: a server named `green;disable server
//! api/blue` would take the live colour out. So each command has one builder below, which
//! checks every part against the names grammar (identifiers with `haproxy_identifier`, the
//! address with a strict IP-or-DNS-name check, states as enums) and then the finished command
//! once more with `runtime_api_command`. The module is pure, so the fuzz target
//! (`fuzz/fuzz_targets/names.rs`) can feed it anything.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::names::{Refused, excerpt, haproxy_identifier, runtime_api_command};

/// The state `set server <backend>/<server> state` puts a server in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerAdminState {
    /// In rotation.
    Ready,
    /// Health checks run, no new requests.
    Drain,
    /// Out of rotation, no checks.
    Maintenance,
}

impl ServerAdminState {
    pub const ALL: [Self; 3] = [Self::Ready, Self::Drain, Self::Maintenance];

    /// The word HAProxy takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Drain => "drain",
            Self::Maintenance => "maint",
        }
    }
}

/// The health `set server <backend>/<server> health` forces on a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerHealth {
    Up,
    Stopping,
    Down,
}

impl ServerHealth {
    pub const ALL: [Self; 3] = [Self::Up, Self::Stopping, Self::Down];

    /// The word HAProxy takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Stopping => "stopping",
            Self::Down => "down",
        }
    }
}

/// `show servers state <backend>`: every server of one backend, format version 1.
pub fn show_servers_state(backend: &str) -> Result<String, Refused> {
    haproxy_identifier("HAProxy backend", backend)?;
    one_command(format!("show servers state {backend}"))
}

/// `show servers state`: every backend, which is what the state file keeps across a reload.
pub fn show_servers_state_of_every_backend() -> &'static str {
    "show servers state"
}

/// `show stat -1 4 -1`: the counters of every server of every backend. Not `show stat
/// <backend>`: HAProxy looks that name up among all proxies, and a frontend of the same name
/// (`frontend shop` beside `backend shop`) answers in its place, with no servers.
pub fn show_stat_of_every_server() -> &'static str {
    "show stat -1 4 -1"
}

/// `set server <backend>/<server> state <ready|drain|maint>`.
pub fn set_server_state(
    backend: &str,
    server: &str,
    state: ServerAdminState,
) -> Result<String, Refused> {
    let target = server_target(backend, server)?;
    one_command(format!("set server {target} state {}", state.as_str()))
}

/// `set server <backend>/<server> health <up|stopping|down>`.
pub fn set_server_health(
    backend: &str,
    server: &str,
    health: ServerHealth,
) -> Result<String, Refused> {
    let target = server_target(backend, server)?;
    one_command(format!("set server {target} health {}", health.as_str()))
}

/// `set server <backend>/<server> addr <address> port <port>`.
pub fn set_server_address(
    backend: &str,
    server: &str,
    address: &str,
    port: u16,
) -> Result<String, Refused> {
    let target = server_target(backend, server)?;
    server_address(address)?;
    one_command(format!("set server {target} addr {address} port {port}"))
}

/// A server address as `set server ... addr` takes it: a plain IPv4 or IPv6 address (no
/// port, brackets or zone), or a DNS name. Names may hold '_' because Docker's embedded DNS
/// resolves container names, which do; the last label may not be all digits, so that a
/// malformed IPv4 address such as `256.1.1.1` is not taken for a name.
pub fn server_address(value: &str) -> Result<(), Refused> {
    let plain_ip = value.len() <= 45
        && (value.parse::<Ipv4Addr>().is_ok() || value.parse::<Ipv6Addr>().is_ok());
    if plain_ip || dns_name(value) {
        return Ok(());
    }
    Err(Refused(format!(
        "malformed server address {}: a plain IPv4 or IPv6 address, or a DNS name (labels of letters, digits, '-' and '_' joined by '.', at most 253 characters)",
        excerpt(value)
    )))
}

fn dns_name(value: &str) -> bool {
    let label = |label: &str| {
        let edge = |c: char| c.is_ascii_alphanumeric();
        (1..=63).contains(&label.len())
            && label.starts_with(edge)
            && label.ends_with(edge)
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    value.len() <= 253
        && value.split('.').all(label)
        && value
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.chars().all(|c| c.is_ascii_digit()))
}

/// `<backend>/<server>`, both checked: the '/' is HAProxy's, so neither part may hold one.
fn server_target(backend: &str, server: &str) -> Result<String, Refused> {
    haproxy_identifier("HAProxy backend", backend)?;
    haproxy_identifier("HAProxy server", server)?;
    Ok(format!("{backend}/{server}"))
}

/// The last word: whatever the parts were, the finished command is exactly one command.
fn one_command(command: String) -> Result<String, Refused> {
    runtime_api_command(&command)?;
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hostile inputs of the names table, and a few aimed at the address.
    fn hostile() -> Vec<String> {
        let mut hostile = crate::names::hostile();
        hostile.extend([
            "api/blue".into(),
            "blue state ready".into(),
            "\u{e0001}".repeat(200),
        ]);
        hostile
    }

    /// What a refusal may weigh: our words plus an excerpt of at most 60 escaped bytes.
    const MAX_REFUSAL_BYTES: usize = 300;

    fn assert_bounded(refused: &Refused) {
        let bytes = refused.0.len();
        assert!(bytes <= MAX_REFUSAL_BYTES, "{bytes} bytes: {refused}");
        assert!(!refused.0.contains(['\n', '\r']), "{refused}");
    }

    /// Every builder, with `hostile` in one part and valid values in the others.
    fn builders_with(hostile: &str) -> Vec<(&'static str, Result<String, Refused>)> {
        let state = ServerAdminState::Ready;
        let health = ServerHealth::Down;
        vec![
            ("show servers state backend", show_servers_state(hostile)),
            ("state backend", set_server_state(hostile, "green", state)),
            ("state server", set_server_state("api", hostile, state)),
            (
                "health backend",
                set_server_health(hostile, "green", health),
            ),
            ("health server", set_server_health("api", hostile, health)),
            (
                "address backend",
                set_server_address(hostile, "green", "172.20.0.6", 3001),
            ),
            (
                "address server",
                set_server_address("api", hostile, "172.20.0.6", 3001),
            ),
            ("address", set_server_address("api", "green", hostile, 3001)),
        ]
    }

    #[test]
    fn every_builder_refuses_hostile_inputs_with_a_bounded_message() {
        for input in hostile() {
            for (builder, built) in builders_with(&input) {
                let refused = built.expect_err(&format!("{builder} accepted {input:?}"));
                assert_bounded(&refused);
            }
        }
    }

    #[test]
    fn builds_the_commands_the_client_sends() {
        assert_eq!(show_servers_state("api").unwrap(), "show servers state api");
        assert_eq!(show_servers_state_of_every_backend(), "show servers state");
        runtime_api_command(show_servers_state_of_every_backend()).unwrap();
        assert_eq!(show_stat_of_every_server(), "show stat -1 4 -1");
        runtime_api_command(show_stat_of_every_server()).unwrap();
        assert_eq!(
            set_server_health("api", "green", ServerHealth::Down).unwrap(),
            "set server api/green health down"
        );
        assert_eq!(
            set_server_address("api", "green", "172.20.0.6", 3001).unwrap(),
            "set server api/green addr 172.20.0.6 port 3001"
        );
    }

    #[test]
    fn states_are_haproxys_words() {
        let built: Vec<String> = ServerAdminState::ALL
            .iter()
            .map(|state| set_server_state("api", "blue", *state).unwrap())
            .collect();
        assert_eq!(
            built,
            [
                "set server api/blue state ready",
                "set server api/blue state drain",
                "set server api/blue state maint",
            ]
        );
        for health in ServerHealth::ALL {
            set_server_health("api", "blue", health).unwrap();
        }
    }

    #[test]
    fn addresses_are_plain_ips_or_dns_names() {
        for good in [
            "172.20.0.6",
            "::1",
            "fd00:20::6",
            "::ffff:172.20.0.6",
            "ecomweb_api_green",
            "api.internal.example",
            "localhost",
        ] {
            server_address(good).unwrap_or_else(|refused| panic!("{good}: {refused}"));
        }
        for bad in [
            "",
            "172.20.0.6:3001",
            "[::1]",
            "fe80::1%eth0",
            "256.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "-api",
            "api-",
            "a..b",
            "api.",
            "api internal",
            "api\tinternal",
            "ecomweb.ápi",
            &format!("{}.example", "a".repeat(64)),
            &"a.".repeat(127).to_string(),
        ] {
            let refused = server_address(bad).expect_err(bad);
            assert_bounded(&refused);
        }
    }

    #[test]
    fn an_address_refusal_quotes_a_short_escaped_excerpt() {
        let refused = server_address(&"\u{e0001}".repeat(1_000)).unwrap_err();
        assert!(refused.0.contains("\\u{e0001}…"), "{refused}");
        assert!(refused.0.len() < 250, "{} bytes", refused.0.len());
    }
}
