//! Redis, through the `redis` crate: does it answer? `deployctl check` asks it for PONG, as the
//! seed's monitoring checklist (and Compose's healthcheck, `redis-cli ping`) does.

use anyhow::Context;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Sends PING to the Redis at `url` (`redis://host:port`) and returns its answer.
pub async fn ping(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url).with_context(|| format!("parsing {url}"))?;
    let mut connection = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .with_context(|| format!("no answer from {url} within 5 s"))?
    .with_context(|| format!("connecting to {url}"))?;
    let answer: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .with_context(|| format!("PING to {url}"))?;
    Ok(answer)
}

/// The Redis activities.
pub struct RedisActivities;

#[temporalio_macros::activities]
impl RedisActivities {
    /// Redis's answer to PING ("PONG" when it is up).
    #[activity]
    pub async fn ping_redis(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        url: String,
    ) -> Result<String, ActivityError> {
        ping(&url).await.map_err(crate::failure)
    }
}
