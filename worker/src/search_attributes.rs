//! Registers the deploy's search attributes in the namespace, so that no deploy stalls on one
//! the namespace does not know (a start that names it is refused, and an upsert of it fails
//! the workflow task). Each worker does it before it polls; `deployctl start` does it too, for
//! a namespace no worker has joined yet. Only what is missing is added, and a race with
//! another worker adding the same attribute is no error.

use std::collections::HashMap;

use anyhow::Context;
use deployctl_workflows::visibility::SEARCH_ATTRIBUTES;
use temporalio_client::{Client, NamespacedClient, grpc::OperatorService};
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};

/// Adds whichever of the deploy's search attributes the namespace lacks.
pub async fn register_search_attributes(client: &Client) -> anyhow::Result<()> {
    let namespace = client.namespace().to_string();
    let adding = missing(client, &namespace).await?;
    if adding.is_empty() {
        return Ok(());
    }
    let request = AddSearchAttributesRequest {
        search_attributes: adding.clone(),
        namespace: namespace.clone(),
    };
    if let Err(status) = client
        .clone()
        .add_search_attributes(tonic::Request::new(request))
        .await
    {
        // Another worker may have added them first: only what is still missing counts.
        let still = missing(client, &namespace).await?;
        anyhow::ensure!(
            still.is_empty(),
            "registering search attributes {:?} in namespace {namespace}: {status}",
            still.keys().collect::<Vec<_>>()
        );
    }
    tracing::info!(names = ?adding.keys().collect::<Vec<_>>(), namespace, "search attributes registered");
    Ok(())
}

async fn missing(client: &Client, namespace: &str) -> anyhow::Result<HashMap<String, i32>> {
    let known = client
        .clone()
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_string(),
        }))
        .await
        .with_context(|| format!("listing the search attributes of namespace {namespace}"))?
        .into_inner()
        .custom_attributes;
    Ok(SEARCH_ATTRIBUTES
        .iter()
        .filter(|(name, _)| !known.contains_key(*name))
        .map(|(name, kind)| (name.to_string(), *kind as i32))
        .collect())
}
