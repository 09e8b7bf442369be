//! HAProxy, through its Runtime API (the `stats socket ... level admin`).
//!
//! There is no maintained Rust crate for the runtime socket, and the protocol is small: one
//! command per connection, terminated by `\n`, answer read to EOF. A successful `set` answers
//! an empty line; anything else is an error in plain text.
//!
//! The switch follows the order measured in FIELD-NOTES, which lost no request under load:
//! new server `drain` (health checks run, no traffic) until checks are fully up, then `ready`,
//! then old server `drain` until it has no session, then `maint`. Going straight from `maint`
//! to `ready` marks a server UP before any check, so that shortcut is never taken.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use deployctl_proto::runtime_api::{self, ServerAdminState, ServerHealth};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UnixStream},
};

/// `show servers state` admin_state bits: forced, inherited and DNS maintenance (0x04 only
/// remembers that the config said `disabled`), then forced and inherited drain.
const ADMIN_MAINT_BITS: u32 = 0x01 | 0x02 | 0x20;
const ADMIN_DRAIN_BITS: u32 = 0x08 | 0x10;
/// `show servers state` op_state 2: the server is UP.
const OP_STATE_RUNNING: u32 = 2;
/// `show servers state` check_result 3: the last check passed (CHK_RES_PASSED).
const CHECK_RESULT_PASSED: u32 = 3;

/// Where the Runtime API listens: `unix:/path`, `/path`, or `tcp:host:port` / `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl std::str::FromStr for RuntimeAddress {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(Self::Unix(path.into()));
        }
        if text.starts_with('/') {
            return Ok(Self::Unix(text.into()));
        }
        let address = text.strip_prefix("tcp:").unwrap_or(text);
        if !address.contains(':') {
            bail!("HAProxy runtime address {text:?} is neither a socket path nor host:port");
        }
        Ok(Self::Tcp(address.to_string()))
    }
}

/// One server line of `show servers state <backend>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerState {
    pub name: String,
    pub address: String,
    pub op_state: u32,
    pub admin_state: u32,
    pub weight: u32,
    pub check_result: u32,
    pub check_health: u32,
    pub port: u16,
}

impl ServerState {
    pub fn in_maintenance(&self) -> bool {
        self.admin_state & ADMIN_MAINT_BITS != 0
    }

    pub fn draining(&self) -> bool {
        self.admin_state & ADMIN_DRAIN_BITS != 0
    }

    /// Takes new requests: up, neither draining nor in maintenance, and weighted.
    pub fn carries_traffic(&self) -> bool {
        self.op_state == OP_STATE_RUNNING
            && !self.in_maintenance()
            && !self.draining()
            && self.weight > 0
    }

    /// Checks have passed often enough for HAProxy to count the server fully healthy.
    pub fn checks_fully_up(&self, rise: u32, fall: u32) -> bool {
        self.op_state == OP_STATE_RUNNING
            && self.check_result == CHECK_RESULT_PASSED
            && self.check_health >= rise + fall - 1
    }
}

/// Parses `show servers state [<backend>]` (format version 1).
pub fn parse_servers_state(answer: &str) -> anyhow::Result<Vec<ServerState>> {
    let mut lines = answer.lines().filter(|line| !line.trim().is_empty());
    match lines.next() {
        Some("1") => {}
        Some(other) => bail!("unexpected `show servers state` answer: {other:?}"),
        None => bail!("empty `show servers state` answer"),
    }
    let mut servers = Vec::new();
    for line in lines.filter(|line| !line.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 19 {
            bail!("short `show servers state` line: {line:?}");
        }
        let number = |index: usize| -> anyhow::Result<u32> {
            fields[index]
                .parse()
                .with_context(|| format!("field {} of {line:?}", index + 1))
        };
        servers.push(ServerState {
            name: fields[3].to_string(),
            address: fields[4].to_string(),
            op_state: number(5)?,
            admin_state: number(6)?,
            weight: number(7)?,
            check_result: number(11)?,
            check_health: number(12)?,
            port: fields[18].parse().unwrap_or(0),
        });
    }
    Ok(servers)
}

/// The header's columns and the row of `backend`/`server` in a `show stat` answer.
fn stat_row<'a>(
    csv: &'a str,
    backend: &str,
    server: &str,
) -> anyhow::Result<(Vec<&'a str>, Vec<&'a str>)> {
    let header = csv
        .lines()
        .next()
        .context("empty `show stat` answer")?
        .trim_start_matches("# ");
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .with_context(|| format!("`show stat` has no {name} column"))
    };
    let (proxy_column, name_column) = (column("pxname")?, column("svname")?);
    csv.lines()
        .skip(1)
        .map(|line| line.split(',').collect::<Vec<_>>())
        .find(|fields| {
            fields.get(proxy_column) == Some(&backend) && fields.get(name_column) == Some(&server)
        })
        .map(|fields| (columns.clone(), fields))
        .with_context(|| format!("server {backend}/{server} not found in `show stat`"))
}

/// Reads the `scur` (current sessions) column of `show stat` for one server.
pub fn parse_current_sessions(csv: &str, backend: &str, server: &str) -> anyhow::Result<u64> {
    let (columns, fields) = stat_row(csv, backend, server)?;
    let scur = columns
        .iter()
        .position(|c| *c == "scur")
        .context("`show stat` has no scur column")?;
    Ok(fields.get(scur).unwrap_or(&"0").parse().unwrap_or(0))
}

/// A client for one HAProxy's Runtime API.
#[derive(Clone, Debug)]
pub struct Haproxy {
    pub address: RuntimeAddress,
    /// HAProxy writes nothing itself; we save `show servers state` here so that a reload
    /// (`load-server-state-from-file global`) keeps the colour that is live.
    pub state_file: Option<PathBuf>,
    pub check_rise: u32,
    pub check_fall: u32,
}

/// A command the builders refused: no retry can make it valid.
fn refused(refusal: deployctl_proto::names::Refused) -> anyhow::Error {
    crate::Permanent::Refused(refusal.0).into()
}

impl Haproxy {
    /// Sends one command and returns the whole answer. Commands come from
    /// `deployctl_proto::runtime_api`, which checks every part; this checks the whole again.
    pub async fn command(&self, command: &str) -> anyhow::Result<String> {
        // Exactly one command: a ';' or a line break in a name would start a second one.
        deployctl_proto::names::runtime_api_command(command)
            .map_err(|refused| crate::Permanent::Refused(refused.0))?;
        let line = format!("{command}\n");
        let mut answer = String::new();
        let exchange = async {
            match &self.address {
                RuntimeAddress::Unix(path) => {
                    let mut stream = UnixStream::connect(path).await?;
                    stream.write_all(line.as_bytes()).await?;
                    stream.read_to_string(&mut answer).await?;
                }
                RuntimeAddress::Tcp(address) => {
                    let mut stream = TcpStream::connect(address).await?;
                    stream.write_all(line.as_bytes()).await?;
                    stream.read_to_string(&mut answer).await?;
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .context("HAProxy runtime API timed out")?
            .with_context(|| format!("HAProxy runtime API at {:?}", self.address))?;
        Ok(answer)
    }

    /// Sends a `set ...` command; HAProxy answers an empty line on success.
    pub async fn set(&self, command: &str) -> anyhow::Result<()> {
        let answer = self.command(command).await?;
        if !answer.trim().is_empty() {
            bail!("HAProxy refused `{command}`: {}", answer.trim());
        }
        Ok(())
    }

    pub async fn servers(&self, backend: &str) -> anyhow::Result<Vec<ServerState>> {
        let command = runtime_api::show_servers_state(backend).map_err(refused)?;
        let answer = self.command(&command).await?;
        if answer.contains("Can't find backend") || answer.contains("No such backend") {
            bail!("HAProxy has no backend {backend}");
        }
        parse_servers_state(&answer)
    }

    pub async fn server(&self, backend: &str, server: &str) -> anyhow::Result<ServerState> {
        self.servers(backend)
            .await?
            .into_iter()
            .find(|s| s.name == server)
            .with_context(|| format!("HAProxy backend {backend} has no server {server}"))
    }

    /// `show stat` of every server, asked only for well-formed names.
    async fn server_stats(&self, backend: &str, server: &str) -> anyhow::Result<String> {
        deployctl_proto::names::haproxy_identifier("HAProxy backend", backend)
            .and_then(|()| deployctl_proto::names::haproxy_identifier("HAProxy server", server))
            .map_err(refused)?;
        self.command(runtime_api::show_stat_of_every_server()).await
    }

    pub async fn current_sessions(&self, backend: &str, server: &str) -> anyhow::Result<u64> {
        let csv = self.server_stats(backend, server).await?;
        parse_current_sessions(&csv, backend, server)
    }

    pub async fn set_state(
        &self,
        backend: &str,
        server: &str,
        state: ServerAdminState,
    ) -> anyhow::Result<()> {
        let command = runtime_api::set_server_state(backend, server, state).map_err(refused)?;
        self.set(&command).await
    }

    pub async fn set_health(
        &self,
        backend: &str,
        server: &str,
        health: ServerHealth,
    ) -> anyhow::Result<()> {
        let command = runtime_api::set_server_health(backend, server, health).map_err(refused)?;
        self.set(&command).await
    }

    pub async fn set_address(
        &self,
        backend: &str,
        server: &str,
        address: &str,
        port: u16,
    ) -> anyhow::Result<()> {
        // `set server addr` answers with a sentence on success, so it cannot use `set`.
        let command =
            runtime_api::set_server_address(backend, server, address, port).map_err(refused)?;
        let answer = self.command(&command).await?;
        let answer = answer.trim();
        if !(answer.is_empty() || answer.contains("changed") || answer.contains("no need")) {
            bail!("HAProxy refused the address {address}:{port} for {backend}/{server}: {answer}");
        }
        Ok(())
    }

    /// Writes `show servers state` to the state file, atomically, so a reload keeps it.
    pub async fn save_state(&self) -> anyhow::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let state = self
            .command(runtime_api::show_servers_state_of_every_backend())
            .await?;
        parse_servers_state(&state).context("refusing to save an unreadable server state")?;
        let temporary = path.with_extension("tmp");
        tokio::fs::write(&temporary, state).await?;
        tokio::fs::rename(&temporary, path)
            .await
            .with_context(|| format!("saving HAProxy server state to {}", path.display()))
    }
}

/// Input of `switch_traffic`: move the backend's traffic from one server to another.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SwitchTraffic {
    pub backend: String,
    /// The server carrying traffic now; `None` on a first deploy.
    pub from_server: Option<String>,
    pub to_server: String,
    /// The new colour's container address and port, set before it is enabled: a recreated
    /// container has a new address.
    pub to_address: Option<String>,
    pub to_port: u16,
    pub timeout_seconds: u64,
    /// Leave the old server in `drain` (checks running, no new requests) instead of
    /// maintenance, so that rolling back during the bake is one `ready` away.
    #[serde(default)]
    pub keep_old_warm: bool,
}

/// HAProxy's own counters for one server (`show stat`), which the bake watches.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ServerCounters {
    /// HTTP responses of every class.
    pub responses: u64,
    pub responses_5xx: u64,
    /// Requests HAProxy had to retry or send elsewhere (`wretr` + `wredis`): with
    /// `retry-on 500`, a bad answer the user never sees still shows here.
    #[serde(default)]
    pub retries: u64,
    /// Failed health checks.
    pub check_failures: u64,
    /// UP, DOWN, DRAIN, MAINT, ...
    pub status: String,
}

/// Reads one server's counters from `show stat`, columns found by name.
pub fn parse_server_counters(
    csv: &str,
    backend: &str,
    server: &str,
) -> anyhow::Result<ServerCounters> {
    let (columns, fields) = stat_row(csv, backend, server)?;
    let field = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .and_then(|i| fields.get(i))
    };
    let number = |name: &str| -> u64 { field(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let classes = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ];
    Ok(ServerCounters {
        responses: classes.iter().map(|c| number(c)).sum(),
        responses_5xx: number("hrsp_5xx"),
        retries: number("wretr") + number("wredis"),
        check_failures: number("chkfail"),
        status: field("status").map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// Input of `read_counters` and `retire_server`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ServerRef {
    pub backend: String,
    pub server: String,
}

/// A server's state as the workflow sees it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ServerView {
    pub name: String,
    pub address: String,
    pub carries_traffic: bool,
    pub in_maintenance: bool,
    /// Put in rotation by the operator (neither maintenance nor drain), whether or not its
    /// checks pass right now: a live colour that is DOWN is still the live colour.
    #[serde(default)]
    pub in_rotation: bool,
}

impl From<&ServerState> for ServerView {
    fn from(state: &ServerState) -> Self {
        Self {
            name: state.name.clone(),
            address: state.address.clone(),
            carries_traffic: state.carries_traffic(),
            in_maintenance: state.in_maintenance(),
            in_rotation: !state.in_maintenance() && !state.draining(),
        }
    }
}

impl Haproxy {
    /// The safe switch (module doc). Idempotent: a switch already made is only verified.
    /// Until the old server is in maintenance, any failure puts the new one back out of
    /// rotation; after that, any failure brings the old one back. Traffic always has a home.
    pub async fn switch(
        &self,
        ctx: &impl crate::Heartbeat,
        input: &SwitchTraffic,
    ) -> Result<(), ActivityError> {
        let backend = input.backend.as_str();
        let to = input.to_server.as_str();
        let from = input.from_server.as_deref().filter(|from| *from != to);
        if let Err(error) = self.enable(ctx, input).await {
            if from.is_some() {
                let _ = self
                    .set_state(backend, to, ServerAdminState::Maintenance)
                    .await;
            }
            return Err(error);
        }
        if let Some(from) = from {
            self.retire(ctx, input, from).await?;
        }
        if let Err(error) = self.verify_only_live(backend, to).await {
            if let Some(from) = from {
                let _ = self.set_state(backend, from, ServerAdminState::Ready).await;
            }
            return Err(crate::failure(error));
        }
        self.save_state().await.map_err(crate::failure)
    }

    /// Puts `to` into rotation once HAProxy's own checks see it healthy.
    async fn enable(
        &self,
        ctx: &impl crate::Heartbeat,
        input: &SwitchTraffic,
    ) -> Result<(), ActivityError> {
        let backend = input.backend.as_str();
        let to = input.to_server.as_str();
        let target = self.server(backend, to).await.map_err(crate::failure)?;
        if target.carries_traffic() {
            return Ok(());
        }
        // Kept warm in `drain` (the bake's old colour): its checks are live and fully up, so
        // it can take traffic at once. This is what makes a rollback instant.
        let warm = target.draining()
            && !target.in_maintenance()
            && target.checks_fully_up(self.check_rise, self.check_fall);
        if warm && input.to_address.is_none() {
            return self.make_ready(backend, to).await;
        }
        if let Some(address) = &input.to_address {
            self.set_address(backend, to, address, input.to_port)
                .await
                .map_err(crate::failure)?;
        }
        // A server left in maintenance keeps its last check results; forcing it down makes
        // HAProxy see `rise` fresh passing checks before it counts it up.
        self.set_health(backend, to, ServerHealth::Down)
            .await
            .map_err(crate::failure)?;
        self.set_state(backend, to, ServerAdminState::Drain)
            .await
            .map_err(crate::failure)?;
        let what = format!("HAProxy checks of {backend}/{to} fully up");
        let timeout = Duration::from_secs(input.timeout_seconds);
        crate::poll_until(ctx, &what, timeout, || async {
            let server = self.server(backend, to).await?;
            Ok(server
                .checks_fully_up(self.check_rise, self.check_fall)
                .then_some(()))
        })
        .await?;
        self.make_ready(backend, to).await
    }

    async fn make_ready(&self, backend: &str, to: &str) -> Result<(), ActivityError> {
        self.set_state(backend, to, ServerAdminState::Ready)
            .await
            .map_err(crate::failure)?;
        let enabled = self.server(backend, to).await.map_err(crate::failure)?;
        if !enabled.carries_traffic() {
            return Err(crate::failure(anyhow::anyhow!(
                "{backend}/{to} was set ready but does not take traffic: {enabled:?}"
            )));
        }
        Ok(())
    }

    /// Drains `from` of its sessions, then puts it in maintenance.
    async fn retire(
        &self,
        ctx: &impl crate::Heartbeat,
        input: &SwitchTraffic,
        from: &str,
    ) -> Result<(), ActivityError> {
        let backend = input.backend.as_str();
        let old = self.server(backend, from).await.map_err(crate::failure)?;
        if old.in_maintenance() || (input.keep_old_warm && old.draining()) {
            return Ok(());
        }
        self.set_state(backend, from, ServerAdminState::Drain)
            .await
            .map_err(crate::failure)?;
        let what = format!("{backend}/{from} drained of sessions");
        let timeout = Duration::from_secs(input.timeout_seconds);
        // Sessions that outlive the drain window are cut by `maint`; say so, and go on.
        let drained = crate::poll_until(ctx, &what, timeout, || async {
            Ok((self.current_sessions(backend, from).await? == 0).then_some(()))
        })
        .await;
        if drained.is_err() {
            tracing::warn!(backend, from, "sessions left after the drain window");
        }
        if input.keep_old_warm {
            return Ok(());
        }
        crate::crash_point("switch-before-maint");
        self.set_state(backend, from, ServerAdminState::Maintenance)
            .await
            .map_err(crate::failure)
    }

    /// Reads the backend back: `live` carries traffic and no other server does.
    pub async fn verify_only_live(&self, backend: &str, live: &str) -> anyhow::Result<()> {
        let servers = self.servers(backend).await?;
        let carrying: Vec<&str> = servers
            .iter()
            .filter(|s| s.carries_traffic())
            .map(|s| s.name.as_str())
            .collect();
        if carrying != [live] {
            bail!("after the switch, {backend} routes to {carrying:?} instead of only {live}");
        }
        Ok(())
    }
}

/// The HAProxy activities.
pub struct HaproxyActivities {
    pub haproxy: Haproxy,
}

#[temporalio_macros::activities]
impl HaproxyActivities {
    /// Reads every server of a backend.
    #[activity]
    pub async fn read_backend(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        backend: String,
    ) -> Result<Vec<ServerView>, ActivityError> {
        let servers = self
            .haproxy
            .servers(&backend)
            .await
            .map_err(crate::failure)?;
        Ok(servers.iter().map(ServerView::from).collect())
    }

    /// HAProxy's counters for one server: responses, 5xx, failed checks, status.
    #[activity]
    pub async fn read_counters(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        input: ServerRef,
    ) -> Result<ServerCounters, ActivityError> {
        let read = async {
            let csv = self
                .haproxy
                .server_stats(&input.backend, &input.server)
                .await?;
            parse_server_counters(&csv, &input.backend, &input.server)
        };
        read.await.map_err(crate::failure)
    }

    /// Takes a server that carries no traffic out of rotation for good (maintenance), and
    /// saves the state. Refuses to touch a server that carries traffic.
    #[activity]
    pub async fn retire_server(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        input: ServerRef,
    ) -> Result<(), ActivityError> {
        let retire = async {
            let server = self.haproxy.server(&input.backend, &input.server).await?;
            if server.carries_traffic() {
                return Err(crate::Permanent::Refused(format!(
                    "{}/{} carries traffic: it is not retired",
                    input.backend, input.server
                ))
                .into());
            }
            if !server.in_maintenance() {
                self.haproxy
                    .set_state(&input.backend, &input.server, ServerAdminState::Maintenance)
                    .await?;
            }
            self.haproxy.save_state().await
        };
        retire.await.map_err(crate::failure)
    }

    /// Moves traffic from the old colour to the new one without dropping a request.
    #[activity]
    pub async fn switch_traffic(
        self: std::sync::Arc<Self>,
        ctx: ActivityContext,
        input: SwitchTraffic,
    ) -> Result<(), ActivityError> {
        self.haproxy.switch(&ctx, &input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1\n\
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
3 api 1 blue 172.20.0.5 2 0 1 1 120 6 3 3 6 0 0 0 ecomweb_api_blue 3001 - 0 0 - - 0\n\
3 api 2 green 172.20.0.6 0 1 1 1 33 1 0 0 14 0 0 0 ecomweb_api_green 3001 - 0 0 - - 0\n";

    #[test]
    fn parses_servers_state_fields_by_position() {
        let servers = parse_servers_state(STATE).unwrap();
        assert_eq!(servers.len(), 2);
        let blue = &servers[0];
        assert_eq!(blue.name, "blue");
        assert_eq!(blue.address, "172.20.0.5");
        assert_eq!((blue.op_state, blue.admin_state, blue.weight), (2, 0, 1));
        assert_eq!(
            (blue.check_result, blue.check_health, blue.port),
            (3, 3, 3001)
        );
        assert!(blue.carries_traffic());
        assert!(blue.checks_fully_up(2, 2));
        let green = &servers[1];
        assert!(green.in_maintenance());
        assert!(!green.carries_traffic());
        assert!(!green.checks_fully_up(2, 2));
    }

    #[test]
    fn a_server_enabled_after_starting_disabled_carries_traffic() {
        // 0x04 only records that haproxy.cfg said `disabled`; it is not maintenance.
        let enabled = STATE.replace("172.20.0.5 2 0 1", "172.20.0.5 2 4 1");
        let blue = &parse_servers_state(&enabled).unwrap()[0];
        assert!(!blue.in_maintenance());
        assert!(blue.carries_traffic());
    }

    #[test]
    fn draining_server_carries_no_new_traffic() {
        let draining = STATE.replace("172.20.0.5 2 0 1", "172.20.0.5 2 8 1");
        let blue = &parse_servers_state(&draining).unwrap()[0];
        assert!(blue.draining());
        assert!(!blue.carries_traffic());
    }

    #[test]
    fn half_risen_server_is_not_fully_up() {
        let rising = STATE.replace("120 6 3 3 6", "120 6 3 2 6");
        let blue = &parse_servers_state(&rising).unwrap()[0];
        assert!(!blue.checks_fully_up(2, 2));
        assert!(blue.checks_fully_up(2, 1));
    }

    #[test]
    fn rejects_error_answers() {
        assert!(parse_servers_state("Can't find backend.\n").is_err());
        assert!(parse_servers_state("").is_err());
        assert!(parse_servers_state("1\n3 api 1 blue\n").is_err());
    }

    #[test]
    fn reads_current_sessions_by_header_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax\napi,blue,0,0,7,9\napi,green,0,0,0,1\n\
                   api,BACKEND,0,0,7,9\nshop,blue,0,0,3,3\n";
        assert_eq!(parse_current_sessions(csv, "api", "blue").unwrap(), 7);
        assert_eq!(parse_current_sessions(csv, "api", "green").unwrap(), 0);
        // Another backend's server of the same name is another server.
        assert_eq!(parse_current_sessions(csv, "shop", "blue").unwrap(), 3);
        assert!(parse_current_sessions(csv, "shop", "green").is_err());
        assert!(parse_current_sessions(csv, "api", "red").is_err());
    }

    #[test]
    fn reads_a_servers_counters_by_header_name() {
        let csv = "# pxname,svname,scur,chkfail,status,wretr,wredis,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other\n\
                   api,blue,0,0,DRAIN,0,0,0,100,0,2,0,0\n\
                   api,green,3,1,UP,4,1,0,90,0,0,10,0\n";
        let green = parse_server_counters(csv, "api", "green").unwrap();
        assert_eq!(
            green,
            ServerCounters {
                responses: 100,
                responses_5xx: 10,
                retries: 5,
                check_failures: 1,
                status: "UP".into()
            }
        );
        assert_eq!(
            parse_server_counters(csv, "api", "blue").unwrap().responses,
            102
        );
        assert!(parse_server_counters(csv, "api", "red").is_err());
        assert!(parse_server_counters(csv, "shop", "green").is_err());
    }

    /// A crafted name is refused before any connection: the socket here does not exist, so
    /// reaching it would fail differently (and retryably).
    #[tokio::test]
    async fn a_crafted_name_never_reaches_the_socket() {
        let haproxy = Haproxy {
            address: RuntimeAddress::Unix("/nonexistent/haproxy.sock".into()),
            state_file: None,
            check_rise: 2,
            check_fall: 2,
        };
        let crafted = "green;disable server api/blue";
        let attempts = [
            haproxy
                .set_state("api", crafted, ServerAdminState::Ready)
                .await,
            haproxy
                .set_health(crafted, "green", ServerHealth::Down)
                .await,
            haproxy
                .set_address("api", "green", "172.20.0.6\nshow info", 3001)
                .await,
            haproxy.servers(crafted).await.map(drop),
            haproxy.current_sessions(crafted, "green").await.map(drop),
        ];
        for attempt in attempts {
            let error = attempt.unwrap_err();
            assert!(
                matches!(
                    error.downcast_ref::<crate::Permanent>(),
                    Some(crate::Permanent::Refused(_))
                ),
                "{error:#}"
            );
        }
    }

    #[test]
    fn parses_runtime_addresses() {
        assert_eq!(
            "unix:/run/haproxy/admin.sock"
                .parse::<RuntimeAddress>()
                .unwrap(),
            RuntimeAddress::Unix("/run/haproxy/admin.sock".into())
        );
        assert_eq!(
            "/run/haproxy/admin.sock".parse::<RuntimeAddress>().unwrap(),
            RuntimeAddress::Unix("/run/haproxy/admin.sock".into())
        );
        assert_eq!(
            "tcp:127.0.0.1:9999".parse::<RuntimeAddress>().unwrap(),
            RuntimeAddress::Tcp("127.0.0.1:9999".into())
        );
        assert!("haproxy".parse::<RuntimeAddress>().is_err());
    }
}
