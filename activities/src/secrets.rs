//! Secrets never reach workflow history.
//!
//! A failure message quotes container logs and Prisma's migration logs, and a log line may hold
//! a database URL or a token. Whatever the worker sends to Temporal is kept in history for good
//! and shown in the Web UI, so that text passes through one function, [`scrub`], on its way
//! out: the worker's data converter applies it to every failure (message, stack trace, causes),
//! and the deploy's activities to every heartbeat. Payloads are left as they are: the pool's
//! app workflows carry data (an idempotency `key`, say) that a mask would corrupt, and the
//! deploy's own payloads carry no log text.

use std::sync::LazyLock;

use regex::Regex;
use temporalio_common::{
    data_converters::{
        DataConverter, DefaultFailureConverter, DefaultPayloadCodec, FailureConverter,
        PayloadConversionError, PayloadConverter, SerializationContextData,
    },
    error::{IncomingError, OutgoingError},
    protos::temporal::api::failure::v1::Failure,
};

/// What a masked value becomes.
pub const MASK: &str = "****";

/// `scheme://user:password@host`: the password.
static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@"'\\]*:)[^\s@"'\\]+@"#).unwrap()
});

/// `DB_PASSWORD=x`, `api_key: x`, `"JWT_SECRET":"x"` (also escaped inside JSON text): the value
/// of any name holding PASSWORD, SECRET or TOKEN, or ending in _KEY.
static SECRET_ASSIGNMENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<keep>\b[A-Za-z0-9_.-]*(?:password|passwd|secret|token|[_-]key|apikey)[A-Za-z0-9_]*\\?"?\s*[=:]\s*\\?"?)[^\s"'\\,;&]+"#,
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

/// The worker's data converter: serde JSON as before, with failures scrubbed on the way out.
pub fn data_converter() -> DataConverter {
    DataConverter::new(
        PayloadConverter::default(),
        ScrubbingFailures(DefaultFailureConverter::default()),
        DefaultPayloadCodec,
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
            (
                "AWS_SECRET_ACCESS_KEY=abc/def",
                "AWS_SECRET_ACCESS_KEY=****",
            ),
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
            "duplicate key value violates unique constraint; Key (id)=(5) already exists",
            r#"{"key":"order-1"}"#,
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

    /// An app workflow's data is not text to scrub: a field called `key` stays as it is.
    #[tokio::test]
    async fn payloads_leave_as_they_are() {
        let converter = data_converter();
        let input = serde_json::json!({"key": "order-1", "password_hint": "x"});
        let payload = converter
            .to_payload(&SerializationContextData::None, &input)
            .await
            .unwrap();
        let back: serde_json::Value = serde_json::from_slice(&payload.data).unwrap();
        assert_eq!(back, input);
    }
}
