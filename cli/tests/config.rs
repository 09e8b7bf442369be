//! `deployctl config`: the worker checks an environment against the running stack, before
//! anyone deploys to it, and names each setting that does not match.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn config_confirms_the_local_environment_and_names_a_wrong_container_or_backend() {
    let _turn = exclusive();
    settled_stack().await;
    let local = deployctl(&["config"]);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    for confirmed in [
        "matches the running stack",
        "HAProxy server api/green exists",
        "migrations in /migrations",
    ] {
        assert!(
            text(&local).contains(confirmed),
            "{confirmed}: {}",
            text(&local)
        );
    }

    // The worker reads its environments file (./state/environments.toml in the stack) again
    // for each check, so a new environment needs no restart.
    let file = repository().join("state/environments.toml");
    let before = std::fs::read_to_string(&file).unwrap_or_default();
    let misnamed = include_str!("../../activities/src/environments.toml")
        .replace("[environments.local]", "[environments.misnamed]")
        .replace("\"ecomweb_api_green\"", "\"ecomweb_api_gren\"")
        .replace("haproxy_backend = \"api\"", "haproxy_backend = \"apix\"");
    std::fs::write(&file, format!("{before}\n{misnamed}")).unwrap();
    let config = file.display().to_string();
    let checked = deployctl(&["--env", "misnamed", "--config", &config, "config"]);
    std::fs::write(&file, before).unwrap();
    assert_eq!(checked.status.code(), Some(2), "{}", text(&checked));
    for named in [
        "green container ecomweb_api_gren: no such container",
        "HAProxy backend apix",
    ] {
        assert!(
            text(&checked).contains(named),
            "{named}: {}",
            text(&checked)
        );
    }
    assert!(
        text(&checked).contains("blue container ecomweb_api_blue runs ecomweb-api:"),
        "{}",
        text(&checked)
    );
}
