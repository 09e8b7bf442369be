//! Each activity module against its real part, in the running compose stack (scripts/up.sh):
//! Docker through its socket, HAProxy's Runtime API on ./run/haproxy/admin.sock, Postgres on
//! 127.0.0.1:55432, and the API through HAProxy's frontend on 127.0.0.1:8080.
//! The tests take turns, and leave traffic where they found it.

use std::{sync::Mutex, time::Duration};

use deployctl_activities::{
    NoHeartbeat, Permanent,
    database::{self, MigrationProgress},
    docker,
    haproxy::{Haproxy, RuntimeAddress, SwitchTraffic},
    health::{HealthChecker, HealthEndpoints},
};

static TURN: Mutex<()> = Mutex::new(());
const DATABASE: &str = "postgresql://ecomweb:ecomweb-db-s3cret@127.0.0.1:55432/ecomweb";
const READER: &str = "postgresql://deployctl_reader:reader-local-only@127.0.0.1:55432/ecomweb";
const FRONTEND: &str = "http://127.0.0.1:8080";

fn haproxy() -> Haproxy {
    Haproxy {
        // The stack shares the socket with the host through ./run/haproxy; no TCP admin port.
        address: RuntimeAddress::Unix(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../run/haproxy/admin.sock").into(),
        ),
        state_file: None,
        check_rise: 2,
        check_fall: 2,
    }
}

/// (live server, idle server, idle container)
async fn colours() -> (String, String, String) {
    let servers = haproxy().servers("api").await.unwrap();
    let live: Vec<_> = servers.iter().filter(|s| s.carries_traffic()).collect();
    assert_eq!(
        live.len(),
        1,
        "exactly one colour should be live: {servers:?}"
    );
    let live = live[0].name.clone();
    let idle = if live == "blue" { "green" } else { "blue" }.to_string();
    let container = format!("ecomweb_api_{idle}");
    (live, idle, container)
}

/// Starts the container if it is stopped and waits until Docker calls it healthy.
async fn running_and_healthy(name: &str) -> docker::ContainerInfo {
    let engine = docker::connect().await.unwrap();
    engine.start_container(name, None).await.ok();
    for _ in 0..120 {
        if docker::healthy_yet(&engine, name).await.unwrap_or(false) {
            return docker::container(&engine, name).await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{name} never became healthy");
}

fn switch(from: &str, to: &str, address: &str) -> SwitchTraffic {
    SwitchTraffic {
        backend: "api".into(),
        from_server: Some(from.into()),
        to_server: to.into(),
        to_address: Some(address.into()),
        to_port: 3001,
        timeout_seconds: 20,
        keep_old_warm: false,
    }
}

#[tokio::test]
async fn haproxy_switch_is_idempotent_and_reversible() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let haproxy = haproxy();
    let (live, idle, idle_container) = colours().await;
    let target = running_and_healthy(&idle_container).await;

    let there = switch(&live, &idle, &target.address);
    haproxy.switch(&NoHeartbeat, &there).await.unwrap();
    haproxy.verify_only_live("api", &idle).await.unwrap();
    // Again, as a retry would: nothing left to do, and still verified.
    haproxy.switch(&NoHeartbeat, &there).await.unwrap();
    haproxy.verify_only_live("api", &idle).await.unwrap();

    let back = running_and_healthy(&format!("ecomweb_api_{live}")).await;
    haproxy
        .switch(&NoHeartbeat, &switch(&idle, &live, &back.address))
        .await
        .unwrap();
    haproxy.verify_only_live("api", &live).await.unwrap();
    let old = haproxy.server("api", &idle).await.unwrap();
    assert!(
        old.in_maintenance(),
        "the old server is left in maintenance: {old:?}"
    );
}

#[tokio::test]
async fn haproxy_switch_to_a_dead_colour_leaves_traffic_where_it_was() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let haproxy = haproxy();
    let (live, idle, idle_container) = colours().await;
    let target = running_and_healthy(&idle_container).await;
    let engine = docker::connect().await.unwrap();
    docker::stop(&engine, &idle_container, Duration::from_secs(5))
        .await
        .unwrap();

    let mut attempt = switch(&live, &idle, &target.address);
    attempt.timeout_seconds = 4;
    assert!(haproxy.switch(&NoHeartbeat, &attempt).await.is_err());
    haproxy.verify_only_live("api", &live).await.unwrap();
    assert!(haproxy.server("api", &idle).await.unwrap().in_maintenance());
    running_and_healthy(&idle_container).await;
}

#[tokio::test]
async fn docker_replace_is_idempotent_and_takes_the_new_image_defaults() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let engine = docker::connect().await.unwrap();
    let (_, _, idle_container) = colours().await;
    let before = running_and_healthy(&idle_container).await;
    let other = if before.image == "ecomweb-api:v1" {
        "ecomweb-api:v2"
    } else {
        "ecomweb-api:v1"
    };
    let hashes = Default::default();
    let timeout = Duration::from_secs(10);

    // On the image it already runs: left alone, the same container.
    docker::replace_container(&engine, &idle_container, &before.image, timeout, &hashes)
        .await
        .unwrap();
    let same = docker::inspect(&engine, &idle_container)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same.image, Some(before.image_id.clone()));

    // On the other image: a new container whose APP_VERSION is the new image's, not the old.
    docker::replace_container(&engine, &idle_container, other, timeout, &hashes)
        .await
        .unwrap();
    let replaced = running_and_healthy(&idle_container).await;
    assert_eq!(replaced.image, other);
    let inspect = docker::inspect(&engine, &idle_container)
        .await
        .unwrap()
        .unwrap();
    let env = inspect.config.unwrap().env.unwrap_or_default();
    let version = other.trim_start_matches("ecomweb-api:");
    assert!(env.contains(&format!("APP_VERSION={version}")), "{env:?}");
    assert!(
        env.iter().any(|e| e.starts_with("DATABASE_URL=")),
        "the compose env is kept: {env:?}"
    );
    let networks = inspect.network_settings.unwrap().networks.unwrap();
    assert!(
        networks.keys().any(|n| n.ends_with("_default")),
        "{networks:?}"
    );

    docker::replace_container(&engine, &idle_container, &before.image, timeout, &hashes)
        .await
        .unwrap();
    running_and_healthy(&idle_container).await;
}

/// A crash after the old container was set aside, before the new one exists: the state a
/// killed worker leaves. The retry finds the old one aside, builds the new one from it, and
/// removes it; nothing is lost and nothing is left behind.
#[tokio::test]
async fn docker_replace_resumes_after_a_crash_between_rename_and_create() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let engine = docker::connect().await.unwrap();
    let (_, _, idle_container) = colours().await;
    let before = running_and_healthy(&idle_container).await;
    let other = if before.image == "ecomweb-api:v1" {
        "ecomweb-api:v2"
    } else {
        "ecomweb-api:v1"
    };
    let hashes = Default::default();
    let timeout = Duration::from_secs(10);
    let aside = docker::aside_name(&idle_container);
    docker::stop(&engine, &idle_container, timeout)
        .await
        .unwrap();
    engine
        .rename_container(
            &idle_container,
            bollard::query_parameters::RenameContainerOptions {
                name: aside.clone(),
            },
        )
        .await
        .unwrap();
    assert!(
        docker::container(&engine, &idle_container)
            .await
            .unwrap()
            .is_none()
    );

    docker::replace_container(&engine, &idle_container, other, timeout, &hashes)
        .await
        .unwrap();
    let replaced = running_and_healthy(&idle_container).await;
    assert_eq!(replaced.image, other);
    assert!(
        docker::container(&engine, &aside).await.unwrap().is_none(),
        "the old container was left aside"
    );
    // A second retry (the activity ran to the end, but its completion was lost) changes nothing.
    docker::replace_container(&engine, &idle_container, other, timeout, &hashes)
        .await
        .unwrap();
    assert_eq!(
        running_and_healthy(&idle_container).await.name,
        replaced.name
    );

    docker::replace_container(&engine, &idle_container, &before.image, timeout, &hashes)
        .await
        .unwrap();
    running_and_healthy(&idle_container).await;
}

/// A worker created on the new image but never started (a crash between create and start) is
/// started and counted, not skipped and waited on for ever.
#[tokio::test]
async fn starting_workers_counts_and_starts_one_that_was_created_but_not_started() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let engine = docker::connect().await.unwrap();
    let project = "deployctl";
    let service = "ecomweb_worker";
    let workers = docker::service_containers(&engine, project, service)
        .await
        .unwrap();
    let image = workers[0].image.clone();
    let count = workers.len();
    let hashes = Default::default();
    docker::stop(&engine, &workers[0].name, Duration::from_secs(30))
        .await
        .unwrap();
    let started =
        docker::start_service_containers(&engine, project, service, &image, count, &hashes)
            .await
            .unwrap();
    assert!(
        started.is_empty(),
        "a new worker was made instead: {started:?}"
    );
    let after = docker::service_containers(&engine, project, service)
        .await
        .unwrap();
    assert_eq!(after.len(), count);
    assert!(after.iter().all(|w| w.running), "{after:?}");
}

/// The migrations an image carries, by folder name, read through the Docker API from a
/// container of it; a path the image lacks gives none.
#[tokio::test]
async fn docker_lists_the_migrations_a_container_image_carries() {
    let engine = docker::connect().await.unwrap();
    let names = docker::migrations_in(&engine, "ecomweb_api_blue", "/migrations")
        .await
        .unwrap();
    assert_eq!(
        names.first().map(String::as_str),
        Some("0001_init"),
        "{names:?}"
    );
    let none = docker::migrations_in(&engine, "ecomweb_api_blue", "/app/prisma/migrations")
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn docker_reports_what_is_missing_as_permanent() {
    let engine = docker::connect().await.unwrap();
    let missing = docker::image_info(&engine, "ecomweb-api:v9")
        .await
        .unwrap_err();
    assert!(matches!(
        missing.downcast_ref::<Permanent>(),
        Some(Permanent::NoSuchImage(_))
    ));
    let info = docker::image_info(&engine, "ecomweb-api:v2").await.unwrap();
    assert_eq!(info.migrations, 2);
    assert!(
        docker::container(&engine, "no_such_container")
            .await
            .unwrap()
            .is_none()
    );
    let removed = docker::stop_and_remove(&engine, "no_such_container", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!removed);
    let workers = docker::service_containers(&engine, "deployctl", "ecomweb_worker")
        .await
        .unwrap();
    assert!(!workers.is_empty());
}

#[tokio::test]
async fn database_reads_prisma_migrations_as_prisma_writes_them() {
    let admin = database::pool(DATABASE).unwrap();
    database::ready(&admin).await.unwrap();
    let progress = database::migration_progress(&admin).await.unwrap();
    assert!(
        progress.table_exists && progress.finished >= 1,
        "{progress:?}"
    );
    assert!(progress.complete(progress.finished, &[]));
    assert!(!progress.complete(progress.finished + 1, &[]));
    // By name: the first migration every image carries has finished; one no image carries
    // keeps the gate shut, whatever the count.
    let first = vec!["0001_init".to_string()];
    assert!(progress.complete(0, &first), "{progress:?}");
    let unknown = vec!["0001_init".to_string(), "9999_not_yet".to_string()];
    assert!(!progress.complete(0, &unknown));
    assert_eq!(progress.missing(&unknown), [&unknown[1]]);

    // A scratch database of its own (a name per run, so no earlier run's connection can hold
    // it), with one finished, one running and one failed migration.
    let name = format!("activities_scratch_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let scratch = database::pool(&format!(
        "postgresql://ecomweb:ecomweb-db-s3cret@127.0.0.1:55432/{name}"
    ))
    .unwrap();
    assert_eq!(
        database::migration_progress(&scratch).await.unwrap(),
        MigrationProgress::default()
    );
    sqlx::raw_sql(
        "CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, \
           finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, \
           rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
           applied_steps_count INTEGER NOT NULL DEFAULT 0);
         INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('a', 'x', now(), '0001_init');
         INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('b', 'x', '0002_running');
         INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('c', 'x', '0003_broken', 'syntax error');
         INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, rolled_back_at, started_at) \
           VALUES ('d', 'x', '0004_retried', 'deadlock', now(), now() - interval '1 minute');
         INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('e', 'x', now(), '0004_retried');
         INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, rolled_back_at) \
           VALUES ('f', 'x', '0005_abandoned', 'bad', now());",
    )
    .execute(&scratch)
    .await
    .unwrap();
    let progress = database::migration_progress(&scratch).await.unwrap();
    scratch.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    // The latest attempt of each migration decides: 0004 failed once, then finished.
    assert_eq!(progress.finished, 2);
    assert_eq!(progress.running, 1);
    assert_eq!(progress.rolled_back, 1);
    assert_eq!(
        progress.failed,
        [("0003_broken".to_string(), "syntax error".to_string())]
    );
    assert!(!progress.complete(1, &[]));
    assert_eq!(
        progress.finished_names,
        ["0001_init".to_string(), "0004_retried".to_string()]
    );

    let nowhere =
        database::pool("postgresql://ecomweb:ecomweb-db-s3cret@127.0.0.1:1/ecomweb").unwrap();
    assert!(database::ready(&nowhere).await.is_err());
}

/// The migration check's role (compose.yaml's DEPLOYCTL_DATABASE_URL) reads
/// `_prisma_migrations` and can do nothing else: no write there, no read of the app's tables.
#[tokio::test]
async fn the_migration_check_role_reads_prisma_migrations_and_nothing_else() {
    let reader = database::pool(READER).unwrap();
    let progress = database::migration_progress(&reader).await.unwrap();
    assert!(
        progress.table_exists && progress.finished >= 1,
        "{progress:?}"
    );
    for forbidden in [
        "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('x', 'x', 'x')",
        "UPDATE _prisma_migrations SET logs = 'x'",
        "DELETE FROM _prisma_migrations",
        "SELECT count(*) FROM cron_runs",
        "CREATE TABLE public.reader_was_here (id int)",
    ] {
        let error = sqlx::query(forbidden)
            .execute(&reader)
            .await
            .expect_err(forbidden)
            .to_string();
        assert!(error.contains("permission denied"), "{forbidden}: {error}");
    }
}

#[tokio::test]
async fn health_checks_status_and_version() {
    let checker = HealthChecker::new();
    let served = checker.version(FRONTEND).await.unwrap();
    let endpoints = HealthEndpoints::default();
    checker.check(FRONTEND, &served, &endpoints).await.unwrap();
    let wrong = checker
        .check(FRONTEND, "v999", &endpoints)
        .await
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("not v999"), "{wrong}");
    assert!(
        checker
            .check("http://127.0.0.1:1", &served, &endpoints)
            .await
            .is_err()
    );
    // An app with no version endpoint, and another health path: only that path is asked.
    let no_version = HealthEndpoints {
        health_path: "/health".into(),
        health_status: 200,
        version_path: Some(String::new()),
    };
    checker.check(FRONTEND, "v999", &no_version).await.unwrap();
    let elsewhere = HealthEndpoints {
        health_path: "/no-such-health".into(),
        ..no_version
    };
    assert!(checker.check(FRONTEND, &served, &elsewhere).await.is_err());
}
