//! Bring your own stack: the shop (examples/shop), an app deployctl did not shape, deploys from
//! its config file alone.
//!
//! The shop's API is Python from Debian; its image carries `prisma/migrations/<name>` folders,
//! no deployctl label and no version endpoint, and answers its health on /healthz. Its workers
//! run the shop's own process and `deployctl-worker` side by side under supervisord, and that
//! pool hosts the shop's deploys. Everything deployctl knows about it is
//! examples/shop/environments.toml.

mod support;

use std::{
    process::Output,
    time::{Duration, Instant},
};

use deployctl_proto::v1::{DeployStatus, Phase};
use support::*;

const SHOP: &str = "http://127.0.0.1:8081/";
/// deployctl's migration check role, on the shop's database (as the shop's workers use it).
const SHOP_READER: &str = "postgresql://deployctl_reader:reader-local-only@127.0.0.1:55432/shop";
const SERVICES: [&str; 4] = [
    "shop_api_blue",
    "shop_api_green",
    "shop_cron",
    "shop_worker",
];
const INIT: &str = "20261201090000_init";
const ADD_PRICE: &str = "20261202090000_add_price";
const BROKEN: &str = "20261203090000_add_sku_unique";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shop_deploys_from_its_config_file_alone() {
    let _turn = exclusive();
    settled_stack().await;
    let _shop = Shop::fresh_on_v1().await;

    // Before any deploy, the shop's pool checks the config file against the running stack.
    let checked = shop_deployctl(&["config"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    assert!(
        text(&checked).contains("environment shop matches the running stack"),
        "{}",
        text(&checked)
    );

    deploys_v1_to_v2_under_load().await;
    holds_a_deploy_at_the_gate().await;
    a_failed_migration_is_named_by_its_folder().await;
    rolls_back_during_the_bake().await;
}

/// v1 → v2 under load: 0 failed requests, the migrations by name, Prisma's record, and the
/// shop's own pool rolled by the deploy it hosts.
async fn deploys_v1_to_v2_under_load() {
    let workers_before = shop_worker_ids();
    let load = load::Load::start(SHOP, 8, true, DEPLOY_LIMIT);
    let started = Instant::now();
    let output = shop_deployctl(&["start", "--version", "v2", "--wait"]);
    let wall = started.elapsed();
    let report = load.finish().await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let figures = report.figures();
    println!(
        "shop v1 → v2 under load, {:.1} s: {figures}",
        wall.as_secs_f64()
    );
    assert_eq!(
        figures.non_2xx + figures.socket_errors,
        0,
        "failed requests during the shop's deploy: {figures}"
    );
    assert_eq!(shop_version().await, "v2");
    assert_eq!(shop_live_servers().await, ["green"]);

    // The gate read the image's folders: both migrations finished, recorded as Prisma does.
    let rows = prisma_rows().await;
    assert_eq!(
        rows.iter()
            .filter(|row| row.finished)
            .map(|row| row.name.as_str())
            .collect::<Vec<_>>(),
        [INIT, ADD_PRICE]
    );
    for row in &rows {
        assert_eq!(row.id.len(), 36, "{row:?}");
        assert_eq!(row.checksum.len(), 64, "{row:?}");
        assert_eq!(row.applied_steps_count, 1, "{row:?}");
    }

    // The deploy ran on the shop's own pool, and replaced it: new containers on
    // shop-worker:v2, each running the shop's worker beside deployctl-worker.
    let described = temporal_json(&["workflow", "describe", "--workflow-id", "deploy-shop"]);
    assert_eq!(
        described["executionConfig"]["taskQueue"]["name"],
        "shop-deployctl"
    );
    let workers = service_images("shop_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, running)| image == "shop-worker:v2" && *running),
        "{workers:?}"
    );
    let workers_after = shop_worker_ids();
    assert!(
        workers_after.iter().all(|id| !workers_before.contains(id)),
        "the pool was not rolled: {workers_before:?} → {workers_after:?}"
    );
    for (name, _, _) in &workers {
        let processes = processes_of(name);
        for program in ["python3 /app/worker.py", "/usr/local/bin/deployctl-worker"] {
            assert!(processes.contains(program), "{name}: {processes}");
        }
    }
    // The shop's cron was rolled, and never ran twice at once.
    assert_eq!(
        container_image("shop_cron").await,
        Some(("shop:v2".into(), true))
    );
    let (overlapping, hosts) = cron_runs().await;
    assert_eq!(overlapping, 0, "two shop crons ran at once");
    assert!(hosts >= 2, "the shop's cron was not rolled");
    assert_eq!(
        container_image("shop_api_blue").await,
        Some(("shop:v2".into(), true))
    );
}

/// The approval gate holds the shop's deploy with traffic untouched until `approve`.
async fn holds_a_deploy_at_the_gate() {
    let started = shop_deployctl(&["start", "--version", "v1", "--approve-before-switch"]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    let held = shop_phase(&[Phase::AwaitingApproval]).await;
    assert_eq!(held.version, "v1");
    assert_eq!(shop_version().await, "v2", "traffic moved before approval");
    let approved = shop_deployctl(&["approve", "--comment", "shop gate test"]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let done = shop_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert_eq!(shop_version().await, "v1");
    assert_eq!(shop_live_servers().await, ["blue"]);
    // v1 does not know v2's migration: the gate reports it, and passes (expand/contract).
    assert!(
        done.notices
            .iter()
            .chain(done.steps.iter().map(|step| &step.detail))
            .any(|line| line.contains(ADD_PRICE)),
        "the migration v1 does not know was not reported: {done:?}"
    );
}

/// A release whose third migration fails: the deploy stops at the migration gate, names the
/// folder, and traffic stays on the healthy colour.
async fn a_failed_migration_is_named_by_its_folder() {
    let load = load::Load::start(SHOP, 4, true, DEPLOY_LIMIT);
    let output = shop_deployctl(&["start", "--version", "broken", "--wait"]);
    let report = load.finish().await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let status = shop_status();
    assert_eq!(status.phase, Phase::Failed as i32, "{status:?}");
    assert_eq!(
        status.failed_step,
        deployctl_workflows::plan::AWAIT_MIGRATIONS
    );
    assert!(status.error.contains(BROKEN), "{}", status.error);
    assert!(text(&output).contains(BROKEN), "{}", text(&output));
    let figures = report.figures();
    assert_eq!(figures.non_2xx + figures.socket_errors, 0, "{figures}");
    assert_eq!(shop_version().await, "v1");
    assert_eq!(shop_live_servers().await, ["blue"]);
    // The gate's own reading, as deployctl's reader role sees it: shop:broken's folders
    // (through Docker, from the image) against _prisma_migrations. While the third migration
    // is failed, and then once resolved but still missing, the gate stays shut.
    let expected = migrations_of_image("shop:broken").await;
    assert_eq!(expected, [INIT, ADD_PRICE, BROKEN]);
    let reader = deployctl_activities::database::pool(SHOP_READER).unwrap();
    let failed = deployctl_activities::database::migration_progress(&reader)
        .await
        .unwrap();
    assert_eq!(failed.failed.len(), 1, "{failed:?}");
    assert_eq!(failed.failed[0].0, BROKEN);
    assert!(!failed.complete(0, &expected));
    // Prisma refuses every later migration until an operator resolves the failed one.
    resolve_failed_shop_migrations().await;
    let missing = deployctl_activities::database::migration_progress(&reader)
        .await
        .unwrap();
    assert!(missing.failed.is_empty(), "{missing:?}");
    assert_eq!(missing.missing(&expected), [&expected[2]]);
    assert!(!missing.complete(0, &expected));
    assert!(missing.complete(0, &expected[..2]));
}

/// The migration folders an image carries, read as the deploy reads them.
async fn migrations_of_image(image: &str) -> Vec<String> {
    let created = std::process::Command::new("docker")
        .args(["create", image])
        .output()
        .unwrap();
    assert!(created.status.success(), "docker create {image}");
    let container = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let names = deployctl_activities::docker::migrations_in(
        &docker().await,
        &container,
        "/app/prisma/migrations",
    )
    .await;
    std::process::Command::new("docker")
        .args(["rm", "-f", &container])
        .output()
        .unwrap();
    names.unwrap()
}

/// `rollback` during the bake puts the shop back on the colour that served before.
async fn rolls_back_during_the_bake() {
    let load = load::Load::start(SHOP, 8, true, DEPLOY_LIMIT);
    let started = shop_deployctl(&["start", "--version", "v2", "--bake-seconds", "60"]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    shop_phase(&[Phase::Baking]).await;
    assert_eq!(shop_version().await, "v2");
    let output = shop_deployctl(&["rollback", "--reason", "shop rollback test", "--wait"]);
    let report = load.finish().await;
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let status = shop_status();
    assert_eq!(status.phase, Phase::RolledBack as i32, "{status:?}");
    assert_eq!(shop_version().await, "v1");
    assert_eq!(shop_live_servers().await, ["blue"]);
    let figures = report.figures();
    println!("shop rollback under load: {figures}");
    assert_eq!(figures.non_2xx + figures.socket_errors, 0, "{figures}");
}

// ---- The shop, from the test's side ---------------------------------------------------------

/// The shop's services on v1 with an empty database, blue live; removed again on drop, so
/// the tests after this one see the stack they expect.
struct Shop;

impl Shop {
    async fn fresh_on_v1() -> Self {
        install_environment();
        remove_shop_containers();
        forget_shop_versions();
        reset_shop_database().await;
        blue_live().await;
        let mut arguments = vec!["--profile", "shop", "up", "-d", "--no-deps"];
        arguments.extend(SERVICES);
        compose(&arguments);
        await_shop_healthy().await;
        make_current("v1").await;
        assert_eq!(shop_version().await, "v1");
        Self
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        remove_shop_containers();
    }
}

/// The shop's config file, added to the environments file the workers read.
fn install_environment() {
    let file = repository().join("state/environments.toml");
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    if !current.contains("[environments.shop]") {
        let shop = std::fs::read_to_string(repository().join("examples/shop/environments.toml"))
            .expect("examples/shop/environments.toml");
        std::fs::write(&file, format!("{current}\n{shop}")).unwrap();
    }
}

/// Compose's env file without the shop's image variables, which earlier deploys recorded:
/// compose.yaml's defaults (v1) apply again.
fn forget_shop_versions() {
    let file = repository().join("state/images.env");
    let kept: String = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with("SHOP_"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&file, kept).unwrap();
}

fn shop_deployctl(arguments: &[&str]) -> Output {
    let config = repository().join("state/environments.toml");
    let mut all = vec!["--env", "shop", "--config", config.to_str().unwrap()];
    all.extend_from_slice(arguments);
    deployctl(&all)
}

fn shop_status() -> DeployStatus {
    let output = shop_deployctl(&["status", "--json"]);
    read_status(&output).unwrap_or_else(|| panic!("no status: {}", text(&output)))
}

async fn shop_phase(phases: &[Phase]) -> DeployStatus {
    await_phase_of(shop_status, phases).await
}

/// The version the shop's frontend serves (its page says which release answered).
async fn shop_version() -> String {
    let page: serde_json::Value = reqwest::get(SHOP).await.unwrap().json().await.unwrap();
    page["shop"].as_str().unwrap_or_default().to_string()
}

async fn shop_live_servers() -> Vec<String> {
    haproxy()
        .servers("shop")
        .await
        .expect("HAProxy runtime API")
        .into_iter()
        .filter(|server| server.carries_traffic())
        .map(|server| server.name)
        .collect()
}

/// Blue live, green in maintenance: where the shop's HAProxy backend starts.
async fn blue_live() {
    let haproxy = haproxy();
    for command in [
        "set server shop/blue state ready",
        "set server shop/green state maint",
    ] {
        haproxy.set(command).await.unwrap();
    }
}

fn remove_shop_containers() {
    for service in SERVICES {
        let ids = docker_ps(service, &["-aq"]);
        if !ids.is_empty() {
            std::process::Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output()
                .unwrap();
        }
    }
}

fn shop_worker_ids() -> Vec<String> {
    docker_ps("shop_worker", &["-q"])
}

fn processes_of(container: &str) -> String {
    let top = std::process::Command::new("docker")
        .args(["top", container, "-o", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&top.stdout).into_owned()
}

async fn await_shop_healthy() {
    let docker = docker().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let containers = project_containers(&docker).await;
        let shop: Vec<_> = containers
            .iter()
            .filter(|(name, _, _)| name.starts_with("shop_") || name.contains("shop_worker"))
            .collect();
        let healthy = shop.len() == 5 && shop.iter().all(|(_, _, s)| s.contains("(healthy)"));
        let serving = reqwest::get(SHOP)
            .await
            .is_ok_and(|r| r.status().is_success());
        if healthy && serving {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the shop is not healthy: {shop:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Makes `build_id` the shop pool's Current version: Temporal outlives the shop's containers,
/// and may remember a later version from an earlier run.
async fn make_current(build_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = std::process::Command::new(repository().join("scripts/compose.sh"))
            .current_dir(repository())
            .args(["-p", PROJECT, "exec", "-T", "temporal", "/temporal"])
            .args(["worker", "deployment", "set-current-version"])
            .args(["--deployment-name", "shop-local", "--build-id", build_id])
            .args(["--yes", "--address", "127.0.0.1:7233"])
            .output()
            .unwrap();
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "could not make shop-local:{build_id} Current: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn shop_database() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect("postgresql://shop:shop-db-s3cret@127.0.0.1:55432/shop")
        .await
        .expect("the shop's database on 127.0.0.1:55432")
}

/// An empty schema, as before the shop's first release; `_prisma_migrations` stays (emptied),
/// with its grant to deployctl's reader.
async fn reset_shop_database() {
    let pool = shop_database().await;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS \"Product\", \"CronRun\"; \
         TRUNCATE _prisma_migrations;",
    )
    .execute(&pool)
    .await
    .unwrap();
}

/// `prisma migrate resolve --rolled-back` for every failed migration.
async fn resolve_failed_shop_migrations() {
    sqlx::query(
        "UPDATE _prisma_migrations SET rolled_back_at = now() \
         WHERE finished_at IS NULL AND rolled_back_at IS NULL AND logs IS NOT NULL",
    )
    .execute(&shop_database().await)
    .await
    .unwrap();
}

/// Pairs of "CronRun" rows that overlap in time (two crons at once), and the hosts seen.
async fn cron_runs() -> (i64, i64) {
    let pool = shop_database().await;
    let overlapping = sqlx::query_scalar(
        "SELECT count(*) FROM \"CronRun\" a JOIN \"CronRun\" b ON a.id < b.id \
         AND a.\"startedAt\" < coalesce(b.\"finishedAt\", now()) \
         AND b.\"startedAt\" < coalesce(a.\"finishedAt\", now())",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let hosts = sqlx::query_scalar("SELECT count(DISTINCT host) FROM \"CronRun\"")
        .fetch_one(&pool)
        .await
        .unwrap();
    (overlapping, hosts)
}

#[derive(Debug)]
struct PrismaRow {
    id: String,
    checksum: String,
    name: String,
    finished: bool,
    applied_steps_count: i32,
}

async fn prisma_rows() -> Vec<PrismaRow> {
    use sqlx::Row;
    sqlx::query(
        "SELECT id, checksum, migration_name, finished_at IS NOT NULL AS finished, \
         applied_steps_count FROM _prisma_migrations ORDER BY migration_name, started_at",
    )
    .fetch_all(&shop_database().await)
    .await
    .unwrap()
    .into_iter()
    .map(|row| PrismaRow {
        id: row.get("id"),
        checksum: row.get("checksum"),
        name: row.get("migration_name"),
        finished: row.get("finished"),
        applied_steps_count: row.get("applied_steps_count"),
    })
    .collect()
}
