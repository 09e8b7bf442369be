//! Notifications: one turn of a deploy, POSTed as JSON to the environment's `notify_url`.
//!
//! The receiver is a webhook of whoever runs the stack (a chat bridge, an incident tool). A
//! 2xx is delivered; a 4xx other than 408 and 429 says the receiver will never take this body,
//! so it is not retried; anything else (5xx, no answer, refused) is retried by Temporal.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use deployctl_proto::v1::NotifyRequest;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{Permanent, failure};

/// POSTs the notification; an error says whether a retry could help.
pub async fn post(http: &reqwest::Client, request: &NotifyRequest) -> anyhow::Result<()> {
    let notification = request.notification.clone().unwrap_or_default();
    let answer = http
        .post(&request.url)
        .json(&notification)
        .send()
        .await
        .with_context(|| format!("POST {}", request.url))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = answer
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let refused = format!("POST {} answered {status}: {body}", request.url);
    match status.as_u16() {
        408 | 429 => anyhow::bail!(refused),
        400..=499 => Err(Permanent::Refused(refused).into()),
        _ => anyhow::bail!(refused),
    }
}

/// The notification activities.
pub struct NotifyActivities {
    pub http: reqwest::Client,
}

impl NotifyActivities {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("deployctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { http }
    }
}

impl Default for NotifyActivities {
    fn default() -> Self {
        Self::new()
    }
}

#[temporalio_macros::activities]
impl NotifyActivities {
    /// Delivers one notification to its receiver.
    #[activity]
    pub async fn post_notification(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: NotifyRequest,
    ) -> Result<(), ActivityError> {
        post(&self.http, &request).await.map_err(failure)
    }
}
