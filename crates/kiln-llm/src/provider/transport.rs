//! The HTTP transport under async-openai: per-attempt timeout, and retries with exponential
//! backoff and jitter on 429, 5xx and refused connections, honouring `Retry-After`.
//!
//! async-openai 0.43 retries by default with its own fixed policy (three retries, 100 ms
//! doubling, no jitter). Installing this service with `Client::with_http_service` replaces
//! that layer entirely, so the only retries are the ones configured and counted here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use openai_reqwest::{Client, Response, StatusCode, header};

/// When and how long to wait before retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First delay; doubles each retry.
    pub base: Duration,
    /// Longest delay, `Retry-After` included.
    pub max: Duration,
}

impl RetryPolicy {
    /// Returns true when a response with this status is worth another attempt.
    pub fn retryable_status(status: StatusCode) -> bool {
        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
    }

    /// Returns the delay before retry number `retry` (1-based): the server's `Retry-After`
    /// when given, else `base * 2^(retry-1)` with equal jitter (half fixed, half random, so
    /// clients that failed together do not retry together), never above `max`.
    /// `unit_random` is in `[0, 1)`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let exponent = retry.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let half = full / 2;
        half + half.mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

/// Parses `Retry-After` given in seconds (integer or decimal). HTTP dates are ignored: the
/// exponential backoff applies instead.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// What the transport learnt during one model call, read back by the provider to classify
/// errors and to report attempts.
#[derive(Debug, Default)]
pub(crate) struct CallRecord {
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_retry_after: Option<Duration>,
    /// The per-attempt timeout in force, to report a body-read timeout with.
    pub timeout: Duration,
}

tokio::task_local! {
    /// The record of the model call running on this task, if the provider set one.
    pub(crate) static CALL: Arc<Mutex<CallRecord>>;
}

fn note(update: impl FnOnce(&mut CallRecord)) {
    let _ = CALL.try_with(|record| {
        let mut record = record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut record);
    });
}

/// A single attempt took longer than the timeout to produce response headers.
#[derive(Debug, thiserror::Error)]
#[error("no response headers within {0:?}")]
pub(crate) struct AttemptTimeout(pub Duration);

/// The tower service async-openai sends every request through.
#[derive(Debug, Clone)]
pub(crate) struct RetryTransport {
    client: Client,
    policy: RetryPolicy,
    timeout: Duration,
}

impl RetryTransport {
    pub fn new(client: Client, policy: RetryPolicy, timeout: Duration) -> Self {
        RetryTransport {
            client,
            policy,
            timeout,
        }
    }

    async fn send(self, factory: HttpRequestFactory) -> Result<Response, OpenAIError> {
        let mut retry = 0u32;
        loop {
            note(|record| {
                record.attempts += 1;
                record.timeout = self.timeout;
            });
            let request = factory.build().await?;
            let outcome = tokio::time::timeout(self.timeout, self.client.execute(request)).await;
            let retry_after = match outcome {
                // A model that hangs is not asked again: the caller's budget decides.
                Err(_) => return Err(OpenAIError::Boxed(Box::new(AttemptTimeout(self.timeout)))),
                Ok(Err(error)) if error.is_timeout() => {
                    return Err(OpenAIError::Boxed(Box::new(AttemptTimeout(self.timeout))));
                }
                Ok(Err(error)) if error.is_connect() && retry < self.policy.max_retries => None,
                Ok(Err(error)) => return Err(OpenAIError::Reqwest(error)),
                Ok(Ok(response)) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(parse_retry_after);
                    note(|record| {
                        record.last_status = Some(status.as_u16());
                        record.last_retry_after = retry_after;
                    });
                    let out_of_retries = retry >= self.policy.max_retries;
                    if !RetryPolicy::retryable_status(status) || out_of_retries {
                        return Ok(response);
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        // OpenAI answers 429 for an exhausted quota too, which no wait fixes.
                        let (response, quota) = peek_quota(response).await?;
                        if quota {
                            return Ok(response);
                        }
                    }
                    tracing::warn!(
                        status = status.as_u16(),
                        retry = retry + 1,
                        "model provider asked to retry"
                    );
                    retry_after
                }
            };
            retry += 1;
            let delay = self.policy.delay(retry, retry_after, rand::random::<f64>());
            tokio::time::sleep(delay).await;
        }
    }
}

/// Reads a 429 body to tell an exhausted quota (permanent) from a rate limit, and returns an
/// equivalent response for async-openai to read again.
async fn peek_quota(response: Response) -> Result<(Response, bool), OpenAIError> {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(OpenAIError::Reqwest)?;
    let quota = is_quota_exhausted(&body);
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    Ok((Response::from(rebuilt), quota))
}

/// Returns true when an error body says `insufficient_quota` (as its type or code).
pub(crate) fn is_quota_exhausted(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &value["error"];
    [&error["type"], &error["code"]]
        .iter()
        .any(|field| field.as_str() == Some(INSUFFICIENT_QUOTA))
}

/// OpenAI's error type for a billing quota that is used up.
pub(crate) const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

impl tower::Service<HttpRequestFactory> for RetryTransport {
    type Response = Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<Response, OpenAIError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        Box::pin(self.clone().send(factory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let policy = policy();
        let cases = [
            (1, 50, 100),
            (2, 100, 200),
            (3, 200, 400),
            (6, 1000, 2000),
            (30, 1000, 2000),
        ];
        for (retry, low, high) in cases {
            let least = policy.delay(retry, None, 0.0);
            let most = policy.delay(retry, None, 0.999_999);
            assert_eq!(least, Duration::from_millis(low), "retry {retry}");
            assert!(
                most <= Duration::from_millis(high) && most > least,
                "retry {retry}"
            );
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = policy();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(1)), 0.5),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60)), 0.5),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_parsing() {
        let cases = [
            ("3", Some(Duration::from_secs(3))),
            (" 0.5 ", Some(Duration::from_millis(500))),
            ("-1", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("NaN", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_retry_after(input), expected, "{input}");
        }
    }

    #[test]
    fn quota_bodies() {
        let cases: [(&[u8], bool); 4] = [
            (
                br#"{"error": {"type": "insufficient_quota", "message": "pay"}}"#,
                true,
            ),
            (br#"{"error": {"code": "insufficient_quota"}}"#, true),
            (br#"{"error": {"type": "rate_limit_exceeded"}}"#, false),
            (b"<html>busy</html>", false),
        ];
        for (body, expected) in cases {
            assert_eq!(
                is_quota_exhausted(body),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn retryable_statuses() {
        for (code, expected) in [
            (429, true),
            (500, true),
            (503, true),
            (400, false),
            (401, false),
            (200, false),
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(RetryPolicy::retryable_status(status), expected, "{code}");
        }
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_max(retry in 0u32..100, random in 0.0f64..1.0, after in proptest::option::of(0u64..100_000)) {
            let delay = policy().delay(retry, after.map(Duration::from_millis), random);
            prop_assert!(delay <= Duration::from_secs(2));
        }
    }
}
