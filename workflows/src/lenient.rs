//! Signal bodies, read leniently. A signal cannot be refused before it enters history (an
//! Update can), so a body that does not read must never fail the workflow task: the workflow
//! notes why and carries on.

use temporalio_common::data_converters::RawValue;

/// The signal's body as JSON of `T` (an empty body reads as `{}`), or why it does not read.
pub(crate) fn read_body<T: serde::de::DeserializeOwned>(
    name: &str,
    body: RawValue,
) -> Result<T, String> {
    let data = body
        .payloads
        .first()
        .map(|p| p.data.clone())
        .unwrap_or_default();
    let data = if data.is_empty() {
        b"{}".to_vec()
    } else {
        data
    };
    serde_json::from_slice(&data).map_err(|error| {
        let shown = String::from_utf8_lossy(&data)
            .chars()
            .take(200)
            .collect::<String>();
        format!("signal {name} ignored: its body {shown} does not read ({error})")
    })
}
