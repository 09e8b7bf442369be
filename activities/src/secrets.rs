//! Secrets never reach workflow history.
//!
//! A failure message quotes container logs and Prisma's migration logs, and a log line may hold
//! a database URL or a token. Whatever the worker sends to Temporal is kept in history for good
//! and shown in the Web UI, so it all passes through one function, [`scrub`], on its way out:
//! the worker's data converter applies it to every failure (message, stack trace, causes) and
//! to every JSON payload (results, heartbeats, query answers).

use std::sync::LazyLock;

use futures::{FutureExt, future::BoxFuture};
use regex::Regex;
use temporalio_common::{
    data_converters::{
        DataConverter, DefaultFailureConverter, FailureConverter, PayloadCodec,
        PayloadConversionError, PayloadConverter, SerializationContextData,
    },
    error::{IncomingError, OutgoingError},
    protos::temporal::api::{common::v1::Payload, failure::v1::Failure},
};

/// What a masked value becomes.
pub const MASK: &str = "****";

/// `scheme://user:password@host`: the password.
static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@"'\\]*:)[^\s@"'\\]+@"#).unwrap()
});

/// `DB_PASSWORD=x`, `api_key: x`, `"JWT_SECRET":"x"` (also escaped inside JSON text): the value
/// of any name that ends in PASSWORD, SECRET, KEY or TOKEN (or holds PASSWD).
static SECRET_ASSIGNMENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<keep>\b[A-Za-z0-9_.-]*(?:password|passwd|secret|key|token)\\?"?\s*[=:]\s*\\?"?)[^\s"'\\,;&]+"#,
    )
    .unwrap()
});

/// `Authorization: Bearer x`.
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=-]+").unwrap());

/// `text` with every secret-looking value replaced by [`MASK`]; everything else as it was.
pub fn scrub(text: &str) -> String {
    let keep_then_mask = format!("${{keep}}{MASK}");
    let text = URL_CREDENTIALS.replace_all(text, format!("${{keep}}{MASK}@").as_str());
    let text = SECRET_ASSIGNMENTS.replace_all(&text, keep_then_mask.as_str());
    BEARER
        .replace_all(&text, keep_then_mask.as_str())
        .into_owned()
}

/// The worker's data converter: serde JSON as before, with [`scrub`] on the way out.
pub fn data_converter() -> DataConverter {
    DataConverter::new(
        PayloadConverter::default(),
        ScrubbingFailures(DefaultFailureConverter::default()),
        ScrubbingPayloads,
    )
}

/// Failures leave with their message, stack trace and every cause scrubbed.
pub struct ScrubbingFailures(pub DefaultFailureConverter);

impl FailureConverter for ScrubbingFailures {
    fn to_failure(
        &self,
        error: OutgoingError,
        payload_converter: &PayloadConverter,
        context: &SerializationContextData,
    ) -> Failure {
        let mut failure = self.0.to_failure(error, payload_converter, context);
        let mut next = Some(&mut failure);
        while let Some(failure) = next {
            failure.message = scrub(&failure.message);
            failure.stack_trace = scrub(&failure.stack_trace);
            next = failure.cause.as_deref_mut();
        }
        failure
    }

    fn to_error(
        &self,
        failure: Failure,
        payload_converter: &PayloadConverter,
        context: &SerializationContextData,
    ) -> Result<IncomingError, PayloadConversionError> {
        self.0.to_error(failure, payload_converter, context)
    }
}

/// JSON payloads leave scrubbed. Decoding changes nothing: what comes back was scrubbed already.
pub struct ScrubbingPayloads;

impl PayloadCodec for ScrubbingPayloads {
    fn encode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let payloads = payloads.into_iter().map(scrub_payload).collect();
        async move { Ok(payloads) }.boxed()
    }

    fn decode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        async move { Ok(payloads) }.boxed()
    }
}

fn scrub_payload(mut payload: Payload) -> Payload {
    let json = payload
        .metadata
        .get("encoding")
        .is_some_and(|encoding| encoding.as_slice() == b"json/plain");
    if json && let Ok(text) = std::str::from_utf8(&payload.data) {
        let scrubbed = scrub(text);
        if scrubbed != text {
            payload.data = scrubbed.into_bytes();
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_looking_values_and_keeps_the_rest() {
        let cases = [
            (
                "connecting to postgres://ecomweb:hunter2@postgres:5432/ecomweb",
                "connecting to postgres://ecomweb:****@postgres:5432/ecomweb",
            ),
            (
                "DATABASE_URL=postgresql://app:p%40ss@db/app?sslmode=require",
                "DATABASE_URL=postgresql://app:****@db/app?sslmode=require",
            ),
            (
                "POSTGRES_PASSWORD=hunter2 next",
                "POSTGRES_PASSWORD=**** next",
            ),
            ("JWT_SECRET: abc123", "JWT_SECRET: ****"),
            ("stripe_api_key=sk_live_1", "stripe_api_key=****"),
            ("GITHUB_TOKEN=ghp_x;", "GITHUB_TOKEN=****;"),
            (r#"{"SESSION_SECRET":"s3"}"#, r#"{"SESSION_SECRET":"****"}"#),
            (
                r#""{\"REDIS_PASSWORD\":\"s3\"}""#,
                r#""{\"REDIS_PASSWORD\":\"****\"}""#,
            ),
            (
                "Authorization: Bearer eyJhbGci.x.y",
                "Authorization: Bearer ****",
            ),
            ("amqp://user:pw@rabbit/", "amqp://user:****@rabbit/"),
        ];
        for (text, expected) in cases {
            assert_eq!(scrub(text), expected, "{text}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "container ecomweb_api_green exited with code 1",
            "image ecomweb-api:v2 (sha256:abc) on http://ecomweb_api_green:3001/health",
            "migration 20240101_init failed: relation \"no_such_table\" does not exist",
            "API_BLUE_IMAGE=ecomweb-api:v2",
            "key points: none",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn a_failure_and_its_causes_leave_scrubbed() {
        let converter = data_converter();
        let error = OutgoingError::Activity(
            temporalio_common::error::OutgoingActivityError::Application(
                temporalio_common::error::ApplicationFailure::new(
                    "migration failed; DATABASE_URL=postgres://u:hunter2@db/app",
                )
                .into(),
            ),
        );
        let failure = converter.to_failure(&SerializationContextData::None, error);
        assert!(!format!("{failure:?}").contains("hunter2"), "{failure:?}");
        assert!(
            failure.message.contains("postgres://u:****@db/app"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn json_payloads_leave_scrubbed_and_stay_json() {
        let mut payload = Payload::default();
        payload
            .metadata
            .insert("encoding".into(), b"json/plain".to_vec());
        payload.data =
            br#"{"error":"exited; last log lines:\nDATABASE_URL=postgres://u:hunter2@db/app\n"}"#
                .to_vec();
        let scrubbed = scrub_payload(payload);
        let value: serde_json::Value = serde_json::from_slice(&scrubbed.data).unwrap();
        assert_eq!(
            value["error"],
            "exited; last log lines:\nDATABASE_URL=postgres://u:****@db/app\n"
        );
    }
}
