//! The `api` role: migrations first, then HTTP. Shuts down gracefully on SIGTERM, so
//! in-flight requests finish.

use std::{
    path::Path,
    process::ExitCode,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use sqlx::PgPool;

pub async fn run(port: u16, migrations: &Path, ready_file: &Path) -> anyhow::Result<()> {
    let pool = crate::wait_for_database().await?;
    let applied = crate::migrations::apply(&pool, migrations).await?;
    tracing::info!(applied, version = crate::version(), "migrations done");
    let app = Router::new()
        .route("/health", get(health))
        .route("/version", get(|| async { crate::version() }))
        .route("/", get(home))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    std::fs::write(ready_file, format!("api {port}"))?;
    tracing::info!(port, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(deployctl_worker::wait_for_termination())
        .await?;
    Ok(())
}

/// A bad release, on purpose: with `FAIL_EVERY=n`, every n-th page answers 500 (health stays
/// fine), which only a watch on the colour's 5xx share can catch.
static PAGES: AtomicU64 = AtomicU64::new(0);

async fn home() -> (StatusCode, String) {
    let fail_every: u64 = std::env::var("FAIL_EVERY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let page = PAGES.fetch_add(1, Ordering::Relaxed) + 1;
    if fail_every > 0 && page % fail_every == 0 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "a bad release\n".into());
    }
    let text = format!(
        "ecomweb {} on {}\n",
        crate::version(),
        crate::container_id()
    );
    (StatusCode::OK, text)
}

/// With `HEALTH=fail` (a release that never becomes healthy), `/health` always answers 503.
async fn health(State(pool): State<PgPool>) -> (StatusCode, &'static str) {
    if std::env::var("HEALTH").is_ok_and(|health| health == "fail") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this release never becomes healthy\n",
        );
    }
    match sqlx::query("SELECT 1").execute(&pool).await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
    }
}

/// Ready when the role wrote its ready file; an api must also answer `/health` with 200.
pub async fn healthcheck(ready_file: &Path) -> ExitCode {
    let Ok(ready) = std::fs::read_to_string(ready_file) else {
        eprintln!("not ready: {} is missing", ready_file.display());
        return ExitCode::FAILURE;
    };
    let Some(port) = ready.strip_prefix("api ") else {
        return ExitCode::SUCCESS;
    };
    let url = format!("http://127.0.0.1:{}/health", port.trim());
    match reqwest::get(&url).await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("{url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{url}: {error}");
            ExitCode::FAILURE
        }
    }
}
