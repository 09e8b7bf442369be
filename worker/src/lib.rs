//! The Temporal worker, as a library: one pool for the app's tasks and for deploys.
//!
//! An app joins the pool with one call, [`join_pool`], handing over its own `WorkerOptions`
//! (its task queue, workflows and activities). The pool adds the deploy workflow on the
//! `deployctl` task queue, makes every worker a version of the environment's Worker
//! Deployment (Build ID = the image version), serves the SDK's Prometheus metrics, and on
//! SIGTERM stops polling and lets in-flight tasks finish. So the same horizontally scaled
//! containers run the app and roll themselves.

mod pool;
mod profile;
mod search_attributes;
mod versioning;

use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use deployctl_activities::{
    compose::ComposeActivities,
    database::{self, DatabaseActivities},
    docker::{self, DockerActivities},
    environments::{self, EnvironmentActivities},
    haproxy::{Haproxy, HaproxyActivities},
    health::{HealthActivities, HealthChecker},
    identity,
    notify::NotifyActivities,
    redis::RedisActivities,
    temporal::TemporalActivities,
};
pub use deployctl_workflows::DEPLOY_TASK_QUEUE;
use deployctl_workflows::{
    CheckEnvironmentWorkflow, ChecklistWorkflow, DeployWorkflow, NotifyWorkflow, PushQueueWorkflow,
};
pub use pool::{PoolArgs, join_pool};
pub use profile::set_by_user;
use rustls::client::danger::ServerCertVerifier;
pub use search_attributes::register_search_attributes;
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions, Url,
    errors::ClientConnectError,
};
use temporalio_common::telemetry::metrics::TemporalMeter;
use temporalio_sdk::WorkerOptions;
pub use versioning::{AppBehavior, VersioningArgs};

/// Where Temporal is, and how to reach it securely.
///
/// The flags and variables are the `temporal` CLI's own (`temporal options`), so one
/// environment (say, a Temporal Cloud namespace's) serves the CLI, this worker and `deployctl`.
/// TLS turns on with `--tls`, with any TLS option, with an API key or with an `https://`
/// address; `--tls=false` (or `TEMPORAL_TLS=false`) keeps an API key on plaintext, as there.
#[derive(Clone, clap::Args)]
pub struct TemporalArgs {
    /// Temporal frontend, host:port.
    #[arg(
        long = "address",
        env = "TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233",
        global = true
    )]
    pub address: String,
    #[arg(
        long = "namespace",
        env = "TEMPORAL_NAMESPACE",
        default_value = "default",
        global = true
    )]
    pub namespace: String,
    /// Use TLS. Implied by an API key or any TLS option; `--tls=false` turns it off.
    #[arg(
        long = "tls",
        env = "TEMPORAL_TLS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub tls: Option<bool>,
    /// PEM file of the CA that signed the server's certificate. Without it, the system's roots.
    #[arg(
        long = "tls-ca-path",
        env = "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        global = true
    )]
    pub tls_ca_path: Option<PathBuf>,
    /// The server's CA certificate as PEM text, instead of a file.
    #[arg(
        long = "tls-ca-data",
        env = "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
        hide_env_values = true,
        global = true
    )]
    pub tls_ca_data: Option<String>,
    /// PEM file of this client's certificate, for mTLS. Needs the key too.
    #[arg(
        long = "tls-cert-path",
        env = "TEMPORAL_TLS_CLIENT_CERT_PATH",
        global = true
    )]
    pub tls_cert_path: Option<PathBuf>,
    /// This client's certificate as PEM text, instead of a file.
    #[arg(
        long = "tls-cert-data",
        env = "TEMPORAL_TLS_CLIENT_CERT_DATA",
        hide_env_values = true,
        global = true
    )]
    pub tls_cert_data: Option<String>,
    /// PEM file of this client certificate's private key.
    #[arg(
        long = "tls-key-path",
        env = "TEMPORAL_TLS_CLIENT_KEY_PATH",
        global = true
    )]
    pub tls_key_path: Option<PathBuf>,
    /// The private key as PEM text, instead of a file. Never printed.
    #[arg(
        long = "tls-key-data",
        env = "TEMPORAL_TLS_CLIENT_KEY_DATA",
        hide_env_values = true,
        global = true
    )]
    pub tls_key_data: Option<String>,
    /// The name the server's certificate must carry (and the `:authority`), when it is not
    /// the address's host: say, an IP address or a load balancer's name.
    #[arg(
        long = "tls-server-name",
        env = "TEMPORAL_TLS_SERVER_NAME",
        global = true
    )]
    pub tls_server_name: Option<String>,
    /// Accept a server certificate whatever name it carries. Unlike the `temporal` CLI, which
    /// then checks nothing, the certificate must still be signed by the CA: only the name is
    /// waived. Prefer `--tls-server-name`.
    #[arg(
        long = "tls-disable-host-verification",
        env = "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub tls_disable_host_verification: bool,
    /// API key, sent as `authorization: Bearer <key>` on every call. Implies TLS.
    #[arg(
        long = "api-key",
        env = "TEMPORAL_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,
    /// The profile of the `temporal` CLI's config file to read: what no flag or variable sets
    /// comes from it (`default`, where the file has one).
    #[arg(long = "profile", env = "TEMPORAL_PROFILE", global = true)]
    pub profile: Option<String>,
    /// The `temporal` CLI's config file (default: ~/.config/temporalio/temporal.toml).
    #[arg(long = "config-file", env = "TEMPORAL_CONFIG_FILE", global = true)]
    pub config_file: Option<PathBuf>,
}

/// The local dev server: plaintext, `default` namespace.
impl Default for TemporalArgs {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:7233".into(),
            namespace: "default".into(),
            tls: None,
            tls_ca_path: None,
            tls_ca_data: None,
            tls_cert_path: None,
            tls_cert_data: None,
            tls_key_path: None,
            tls_key_data: None,
            tls_server_name: None,
            tls_disable_host_verification: false,
            api_key: None,
            profile: None,
            config_file: None,
        }
    }
}

/// By hand, so that a logged `?args` never shows the API key or the private key.
impl std::fmt::Debug for TemporalArgs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        formatter
            .debug_struct("TemporalArgs")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("tls", &self.tls)
            .field("tls_ca_path", &self.tls_ca_path)
            .field("tls_ca_data", &self.tls_ca_data.as_ref().map(|_| "<pem>"))
            .field("tls_cert_path", &self.tls_cert_path)
            .field(
                "tls_cert_data",
                &self.tls_cert_data.as_ref().map(|_| "<pem>"),
            )
            .field("tls_key_path", &self.tls_key_path)
            .field("tls_key_data", &redacted(&self.tls_key_data))
            .field("tls_server_name", &self.tls_server_name)
            .field(
                "tls_disable_host_verification",
                &self.tls_disable_host_verification,
            )
            .field("api_key", &redacted(&self.api_key))
            .field("profile", &self.profile)
            .field("config_file", &self.config_file)
            .finish()
    }
}

/// How each PEM input is named in errors: both spellings, since either may have set it.
const CA_PATH: &str = "--tls-ca-path (TEMPORAL_TLS_SERVER_CA_CERT_PATH)";
const CA_DATA: &str = "--tls-ca-data (TEMPORAL_TLS_SERVER_CA_CERT_DATA)";
const CERT_PATH: &str = "--tls-cert-path (TEMPORAL_TLS_CLIENT_CERT_PATH)";
const CERT_DATA: &str = "--tls-cert-data (TEMPORAL_TLS_CLIENT_CERT_DATA)";
const KEY_PATH: &str = "--tls-key-path (TEMPORAL_TLS_CLIENT_KEY_PATH)";
const KEY_DATA: &str = "--tls-key-data (TEMPORAL_TLS_CLIENT_KEY_DATA)";

impl TemporalArgs {
    /// Whether to use TLS, as the `temporal` CLI decides it. An explicit `--tls=false` with
    /// TLS options is refused rather than silently dropping them, as that CLI would.
    pub fn tls_enabled(&self) -> anyhow::Result<bool> {
        let implied = self.tls_options_given()
            || self.api_key.is_some()
            || self.address.starts_with("https://");
        match self.tls {
            Some(false) if self.tls_options_given() || self.address.starts_with("https://") => {
                anyhow::bail!(
                    "--tls=false (TEMPORAL_TLS) contradicts the TLS options or https:// address \
                     given: drop one or the other"
                )
            }
            Some(explicit) => Ok(explicit),
            None => Ok(implied),
        }
    }

    fn tls_options_given(&self) -> bool {
        self.tls_ca_path.is_some()
            || self.tls_ca_data.is_some()
            || self.tls_cert_path.is_some()
            || self.tls_cert_data.is_some()
            || self.tls_key_path.is_some()
            || self.tls_key_data.is_some()
            || self.tls_server_name.is_some()
            || self.tls_disable_host_verification
    }

    /// The options for [`Connection::connect`]: URL, TLS (files read and checked now, so that
    /// a mistake is reported once, by name, instead of retried) and API key.
    pub fn connection_options(
        &self,
        metrics: Option<TemporalMeter>,
    ) -> anyhow::Result<ConnectionOptions> {
        let tls = self.tls_enabled()?;
        let tls_options = if tls { Some(self.tls_options()?) } else { None };
        Ok(ConnectionOptions::new(self.url(tls)?)
            .identity(identity())
            .maybe_metrics_meter(metrics)
            .maybe_tls_options(tls_options)
            .maybe_api_key(self.api_key.clone())
            .build())
    }

    /// `host:port` gets the scheme TLS calls for. tonic speaks TLS only to `https://` URLs,
    /// whatever TLS settings it has, so `http://` with TLS on is refused, not sent in clear.
    fn url(&self, tls: bool) -> anyhow::Result<Url> {
        let address = if self.address.contains("://") {
            self.address.clone()
        } else if tls {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        };
        let url =
            Url::from_str(&address).with_context(|| format!("TEMPORAL_ADDRESS {address:?}"))?;
        if tls && url.scheme() != "https" {
            anyhow::bail!(
                "TEMPORAL_ADDRESS {address:?} is {}:// but TLS is on: give host:port or https://",
                url.scheme()
            );
        }
        Ok(url)
    }

    /// The server's CA, the client's certificate and key, and how the server's name is checked.
    fn tls_options(&self) -> anyhow::Result<TlsOptions> {
        let ca = pem_input(CA_PATH, &self.tls_ca_path, CA_DATA, &self.tls_ca_data)?;
        if let Some((name, pem)) = &ca {
            require_certificate(name, pem)?;
        }
        let ca = ca.map(|(_, pem)| pem);
        let (server_root_ca_cert, server_cert_verifier) = if self.tls_disable_host_verification {
            (None, Some(any_name_verifier(ca.as_deref())?))
        } else {
            (ca, None)
        };
        Ok(TlsOptions::builder()
            .maybe_server_root_ca_cert(server_root_ca_cert)
            .maybe_server_cert_verifier(server_cert_verifier)
            .maybe_domain(self.tls_server_name.clone())
            .maybe_client_tls_options(self.client_tls_options()?)
            .build())
    }

    /// mTLS: the client certificate and its key, both or neither.
    fn client_tls_options(&self) -> anyhow::Result<Option<ClientTlsOptions>> {
        let cert = pem_input(
            CERT_PATH,
            &self.tls_cert_path,
            CERT_DATA,
            &self.tls_cert_data,
        )?;
        let key = pem_input(KEY_PATH, &self.tls_key_path, KEY_DATA, &self.tls_key_data)?;
        match (cert, key) {
            (None, None) => Ok(None),
            (Some((cert_name, _)), None) => anyhow::bail!(
                "{cert_name} is given without {KEY_PATH}: a client certificate needs its key"
            ),
            (None, Some((key_name, _))) => anyhow::bail!(
                "{key_name} is given without {CERT_PATH}: a key needs its client certificate"
            ),
            (Some((cert_name, cert)), Some((key_name, key))) => {
                require_certificate(&cert_name, &cert)?;
                require_private_key(&key_name, &key)?;
                Ok(Some(
                    ClientTlsOptions::builder()
                        .client_cert(cert)
                        .client_private_key(key)
                        .build(),
                ))
            }
        }
    }
}

/// One PEM input, from its file or inline, never both; with the name to blame in errors
/// (the path itself, for a file).
fn pem_input(
    path_flag: &str,
    path: &Option<PathBuf>,
    data_flag: &'static str,
    data: &Option<String>,
) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    match (path, data) {
        (Some(_), Some(_)) => anyhow::bail!("give {path_flag} or {data_flag}, not both"),
        (Some(path), None) => {
            let name = format!("{path_flag} {}", path.display());
            let pem = std::fs::read(path).with_context(|| format!("{name}: cannot read it"))?;
            Ok(Some((name, pem)))
        }
        (None, Some(data)) => Ok(Some((data_flag.to_string(), data.clone().into_bytes()))),
        (None, None) => Ok(None),
    }
}

/// tonic would only fail at the handshake, with no word of which file was wrong.
fn require_certificate(name: &str, pem: &[u8]) -> anyhow::Result<()> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{name}: not PEM"))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{name}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
    );
    Ok(())
}

fn require_private_key(name: &str, pem: &[u8]) -> anyhow::Result<()> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .with_context(|| format!("{name}: no PEM private key in it"))
}

/// `--tls-disable-host-verification`: the chain is checked against the CA (or the system's
/// roots), only the name mismatch is forgiven.
fn any_name_verifier(ca: Option<&[u8]>) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(pem) => {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            for certificate in CertificateDer::pem_slice_iter(pem) {
                roots.add(certificate?)?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
        .build()
        .context("--tls-disable-host-verification: no usable CA certificate")?;
    Ok(Arc::new(AnyNameVerifier(inner)))
}

/// A `WebPkiServerVerifier` that forgives only a name mismatch. webpki checks the chain
/// before the name, so `NotValidForName` means the chain was good.
#[derive(Debug)]
struct AnyNameVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls::pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What the deploy activities reach: HAProxy's Runtime API and Postgres. Docker comes from
/// `DOCKER_HOST`, as for the Docker CLI.
#[derive(Clone, Debug, clap::Args)]
pub struct DeployArgs {
    /// HAProxy Runtime API: a unix socket path, or tcp:host:port.
    #[arg(
        long,
        env = "HAPROXY_RUNTIME_API",
        default_value = "/var/run/haproxy/admin.sock"
    )]
    pub haproxy_runtime_api: String,
    /// Where to save HAProxy's server state, read back by `load-server-state-from-file`.
    #[arg(long, env = "HAPROXY_STATE_FILE")]
    pub haproxy_state_file: Option<PathBuf>,
    /// `rise` and `fall` of the backend's health checks, as in haproxy.cfg.
    #[arg(long, env = "HAPROXY_CHECK_RISE", default_value_t = 2)]
    pub haproxy_check_rise: u32,
    #[arg(long, env = "HAPROXY_CHECK_FALL", default_value_t = 2)]
    pub haproxy_check_fall: u32,
    /// The migration check's own role, which can read `_prisma_migrations` and nothing else
    /// (not the app's DATABASE_URL).
    #[arg(long, env = "DEPLOYCTL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Compose's `.env`, as this worker sees it; a completed deploy records its image there.
    #[arg(long, env = "COMPOSE_ENV_FILE")]
    pub compose_env_file: Option<PathBuf>,
    /// More environments (TOML, as the embedded `environments.toml`). A deploy request names
    /// its environment; only this worker's list says what that name may touch.
    #[arg(long, env = "DEPLOYCTL_ENVIRONMENTS")]
    pub environments: Option<PathBuf>,
}

/// Connects to Temporal, retrying while the server comes up.
pub async fn connect(temporal: &TemporalArgs, patience: Duration) -> anyhow::Result<Client> {
    connect_with_metrics(temporal, patience, None).await
}

/// [`connect`], recording the client's own metrics (RPC and long-poll latency) in `metrics`.
///
/// Retries while the server comes up, but not past a TLS error: a certificate the other side
/// refuses, or one we refuse, stays refused.
pub async fn connect_with_metrics(
    temporal: &TemporalArgs,
    patience: Duration,
    metrics: Option<TemporalMeter>,
) -> anyhow::Result<Client> {
    let options = temporal.connection_options(metrics)?;
    let address = options.target.to_string();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match Connection::connect(options.clone()).await {
            Ok(connection) => {
                return Client::new(
                    connection,
                    // Every failure and payload this client sends is scrubbed of secrets.
                    ClientOptions::new(temporal.namespace.clone())
                        .data_converter(deployctl_activities::secrets::data_converter())
                        .build(),
                )
                .context("creating the Temporal client");
            }
            Err(error) => {
                if let Some(tls_error) = tls_error(&error) {
                    return Err(error).with_context(|| {
                        format!("TLS with Temporal at {address} failed: {tls_error}")
                    });
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(error)
                        .with_context(|| format!("connecting to Temporal at {address}"));
                }
                tracing::info!(%error, address, "Temporal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// What failed in TLS, if anything did, found among `error`'s causes. The failed
/// `get_system_info` call keeps its `Status` out of `source()`, so it is followed by hand.
fn tls_error(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(ClientConnectError::SystemInfoCallError(status)) = current.downcast_ref() {
            return tls_error(status);
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(io_tls_error)
        {
            return Some(tls);
        }
        cause = current.source();
    }
    None
}

/// An `io::Error`'s `source()` skips the error it wraps, so that error is looked into here.
/// And h2 keeps only an io error's kind and text: an alert the server sends after the
/// handshake (how TLS 1.3 refuses a client certificate) arrives as rustls's words for it.
fn io_tls_error(io: &std::io::Error) -> Option<String> {
    let inner = io.get_ref()?;
    if let Some(tls) = tls_error(inner) {
        return Some(tls);
    }
    let text = inner.to_string();
    (io.kind() == std::io::ErrorKind::InvalidData && text.starts_with("received fatal alert"))
        .then_some(text)
}

/// Registers the deploy workflow and its activities, one per real part.
pub async fn register_deploy(
    options: &mut WorkerOptions,
    deploy: &DeployArgs,
    client: &Client,
) -> anyhow::Result<()> {
    let haproxy = Haproxy {
        address: deploy.haproxy_runtime_api.parse()?,
        state_file: deploy.haproxy_state_file.clone(),
        check_rise: deploy.haproxy_check_rise,
        check_fall: deploy.haproxy_check_fall,
    };
    // A malformed file stops the worker at once rather than failing each deploy.
    environments::load(deploy.environments.as_deref())?;
    // Temporal may be restarting as the worker starts: a while of patience, as in `connect`.
    let mut attempts = 0;
    while let Err(error) = register_search_attributes(client).await {
        attempts += 1;
        anyhow::ensure!(attempts < 30, "{error:#}");
        tracing::info!(%error, "search attributes not registered yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    options.register_workflow::<DeployWorkflow>()?;
    options.register_workflow::<CheckEnvironmentWorkflow>()?;
    options.register_workflow::<ChecklistWorkflow>()?;
    options.register_workflow::<NotifyWorkflow>()?;
    options.register_workflow::<PushQueueWorkflow>()?;
    options.register_activities(EnvironmentActivities {
        file: deploy.environments.clone(),
    });
    options.register_activities(DockerActivities {
        docker: docker::connect().await?,
    });
    options.register_activities(HaproxyActivities { haproxy });
    options.register_activities(DatabaseActivities {
        pool: database::pool(deploy.database_url.as_deref().context(
            "DEPLOYCTL_DATABASE_URL is not set: the deploy awaits migrations in Postgres",
        )?)?,
    });
    options.register_activities(ComposeActivities {
        env_file: deploy.compose_env_file.clone(),
    });
    options.register_activities(RedisActivities);
    options.register_activities(NotifyActivities::new());
    options.register_activities(HealthActivities {
        checker: HealthChecker::new(),
    });
    options.register_activities(TemporalActivities {
        client: client.clone(),
    });
    Ok(())
}

/// Resolves on SIGTERM (docker stop) or Ctrl-C.
pub async fn wait_for_termination() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The healthcheck subcommand: healthy while the worker polls. The pool writes the ready file
/// once its workers poll and removes it the moment SIGTERM stops their polling.
pub fn healthcheck(ready_file: &std::path::Path) -> std::process::ExitCode {
    if ready_file.exists() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} does not exist: the worker is not polling",
            ready_file.display()
        );
        std::process::ExitCode::FAILURE
    }
}

/// Logs as `RUST_LOG` says, `info` by default.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
