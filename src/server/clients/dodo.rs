//! Dodo Payments: hosted checkout sessions, customer-portal links and
//! subscription look-ups (see reference/dodo-payments.md).
//!
//! Configuration (read by [`DodoSettings::from_lookup`]):
//! - `DODO_PAYMENTS_API_KEY`: billing is off without it;
//! - `DODO_PAYMENTS_ENVIRONMENT`: `test_mode` (default) → https://test.dodopayments.com,
//!   `live_mode` → https://live.dodopayments.com;
//! - `DODO_PAYMENTS_BASE_URL`: overrides the environment's base URL (tests).
//!
//! Every URL is the base URL plus a fixed path; ids that go into a path are
//! checked (`[A-Za-z0-9_-]`, at most 128 characters) and percent-encoded as
//! one segment, so no id can climb out of its path.
//!
//! Retries (bounded by [`DodoSettings::max_retries`], full-jitter backoff):
//! - `GET /subscriptions/{id}` and the portal session (a fresh link each
//!   time, harmless to repeat) are retried on 429, 5xx, timeouts and
//!   connection errors;
//! - `POST /checkouts` creates something on Dodo's side and Dodo offers no
//!   idempotency key, so it is retried only when Dodo surely did not act on
//!   it: the connection could not be made, or Dodo answered 429 (rate limit)
//!   or 503 (not serving). A timeout, another 5xx or a dropped connection
//!   after sending is ambiguous and fails at once as `Unavailable`; the
//!   member can press the button again, and an abandoned session expires on
//!   its own after 24 h.
//!
//! The API key is only ever put in the `Authorization` header; it is in no
//! span, log line or error.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use std::{collections::BTreeMap, fmt, time::Duration};
use url::Url;

pub const TEST_MODE_BASE_URL: &str = "https://test.dodopayments.com";
pub const LIVE_MODE_BASE_URL: &str = "https://live.dodopayments.com";
/// The longest id we put in a path.
const MAX_ID_LEN: usize = 128;
/// No single backoff sleep is longer than this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How much of an unexpected error body goes into an error message.
const MAX_ERROR_SNIPPET: usize = 200;

/// Dodo's two modes; each has its own base URL and its own API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DodoEnvironment {
    TestMode,
    LiveMode,
}

impl DodoEnvironment {
    /// `test_mode` or `live_mode`, as in `DODO_PAYMENTS_ENVIRONMENT`.
    pub fn parse(value: &str) -> Option<DodoEnvironment> {
        match value.trim() {
            "test_mode" => Some(DodoEnvironment::TestMode),
            "live_mode" => Some(DodoEnvironment::LiveMode),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DodoEnvironment::TestMode => "test_mode",
            DodoEnvironment::LiveMode => "live_mode",
        }
    }

    pub fn base_url(self) -> Url {
        let url = match self {
            DodoEnvironment::TestMode => TEST_MODE_BASE_URL,
            DodoEnvironment::LiveMode => LIVE_MODE_BASE_URL,
        };
        Url::parse(url).expect("Dodo's base URLs are valid")
    }
}

/// How to reach Dodo Payments.
#[derive(Clone)]
pub struct DodoSettings {
    /// `DODO_PAYMENTS_API_KEY`, sent as `Authorization: Bearer …`.
    pub api_key: SecretString,
    /// `DODO_PAYMENTS_BASE_URL`, else chosen by `DODO_PAYMENTS_ENVIRONMENT`.
    /// May carry a path prefix.
    pub base_url: Url,
    /// For each attempt, from connecting until the body is read.
    pub timeout: Duration,
    /// Retries after the first attempt, for failures that may be retried.
    pub max_retries: u32,
    /// Retry n sleeps a random time in `[0, base × 2^(n-1)]` (capped at 5 s).
    pub retry_base_delay: Duration,
    /// A response body longer than this is abandoned (`BadResponse`).
    pub max_body_bytes: usize,
}

impl DodoSettings {
    /// Defaults (15 s timeout, 2 retries from 250 ms, 1 MiB bodies) for a
    /// key and a base URL.
    pub fn new(api_key: SecretString, base_url: Url) -> DodoSettings {
        DodoSettings {
            api_key,
            base_url,
            timeout: Duration::from_secs(15),
            max_retries: 2,
            retry_base_delay: Duration::from_millis(250),
            max_body_bytes: 1024 * 1024,
        }
    }

    /// From the process environment; see [`DodoSettings::from_lookup`].
    pub fn from_env() -> Result<Option<DodoSettings>, String> {
        DodoSettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// `Ok(None)` when `DODO_PAYMENTS_API_KEY` is unset or blank (billing
    /// off; the other variables are then not looked at). An unknown
    /// `DODO_PAYMENTS_ENVIRONMENT` or a bad `DODO_PAYMENTS_BASE_URL` is an
    /// error whose message names the variable (and never holds the key).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<DodoSettings>, String> {
        let set = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let Some(api_key) = set("DODO_PAYMENTS_API_KEY") else {
            return Ok(None);
        };
        let environment = match set("DODO_PAYMENTS_ENVIRONMENT") {
            None => DodoEnvironment::TestMode,
            Some(value) => DodoEnvironment::parse(&value).ok_or_else(|| {
                format!(
                    "DODO_PAYMENTS_ENVIRONMENT must be test_mode or live_mode, not {:?}",
                    truncate(&value, 40)
                )
            })?,
        };
        let base_url = match set("DODO_PAYMENTS_BASE_URL") {
            None => environment.base_url(),
            Some(raw) => {
                let url = Url::parse(&raw).map_err(|error| {
                    format!("DODO_PAYMENTS_BASE_URL is not a valid URL: {error}")
                })?;
                check_base_url(&url)
                    .map_err(|reason| format!("DODO_PAYMENTS_BASE_URL {reason}"))?;
                url
            }
        };
        Ok(Some(DodoSettings::new(
            SecretString::from(api_key),
            base_url,
        )))
    }
}

impl fmt::Debug for DodoSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DodoSettings")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

fn check_base_url(url: &Url) -> Result<(), &'static str> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

/// What can go wrong talking to Dodo. Messages are for logs; none holds the
/// API key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DodoError {
    /// 401/403: the API key is wrong, revoked or for the other mode.
    #[error(
        "Dodo rejected the API key (check DODO_PAYMENTS_API_KEY and DODO_PAYMENTS_ENVIRONMENT)"
    )]
    Unauthorized,
    #[error("Dodo does not know that object")]
    NotFound,
    /// 400/422 (Dodo's `message`), or an id we refused to send.
    #[error("Dodo refused the request: {0}")]
    Invalid(String),
    /// 429, still after the retries.
    #[error("Dodo's rate limit was hit")]
    RateLimited,
    /// 5xx, timeouts and network errors, after the retries allowed.
    #[error("Dodo is unavailable: {0}")]
    Unavailable(String),
    /// A reply we could not use: unexpected status, not the JSON we expect,
    /// or larger than the size cap.
    #[error("Dodo's response was not usable: {0}")]
    BadResponse(String),
}

/// Who pays in a checkout session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutCustomer {
    /// A customer we created and stored (`customer: {customer_id}`): the
    /// buyer cannot attach the session to anyone else's customer.
    Existing { customer_id: String },
    /// `customer: {email, name?}`: Dodo finds or makes one by email.
    New { email: String, name: Option<String> },
}

/// What to put in a new checkout session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// `pdt_…`
    pub product_id: String,
    pub quantity: u32,
    pub customer: CheckoutCustomer,
    /// Where Dodo sends the buyer afterwards (with unauthenticated query
    /// params: never grant anything from them).
    pub return_url: String,
    /// Comes back in API responses and webhooks (e.g. our org id).
    pub metadata: BTreeMap<String, String>,
}

/// What to put in a new customer (`POST /customers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCustomer {
    pub email: String,
    /// Required by Dodo.
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

/// A customer Dodo created: only its id matters to us.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CreatedCustomer {
    /// `cus_…`
    pub customer_id: String,
}

/// A hosted checkout session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSession {
    /// `cks_…`
    pub session_id: String,
    /// Where to redirect the buyer.
    pub checkout_url: String,
}

/// Where a subscription stands. Values Dodo adds later land in `Unknown`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SubscriptionStatus {
    Pending,
    Active,
    OnHold,
    Cancelled,
    Failed,
    Expired,
    Paused,
    Unknown(String),
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::OnHold => "on_hold",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Failed => "failed",
            SubscriptionStatus::Expired => "expired",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Unknown(other) => other,
        }
    }
}

impl From<String> for SubscriptionStatus {
    fn from(value: String) -> Self {
        match value.as_str() {
            "pending" => SubscriptionStatus::Pending,
            "active" => SubscriptionStatus::Active,
            "on_hold" => SubscriptionStatus::OnHold,
            "cancelled" => SubscriptionStatus::Cancelled,
            "failed" => SubscriptionStatus::Failed,
            "expired" => SubscriptionStatus::Expired,
            "paused" => SubscriptionStatus::Paused,
            _ => SubscriptionStatus::Unknown(value),
        }
    }
}

impl From<SubscriptionStatus> for String {
    fn from(status: SubscriptionStatus) -> Self {
        match status {
            SubscriptionStatus::Unknown(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// `cus_…`
    pub customer_id: String,
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// Dodo's Subscription object, as `GET /subscriptions/{id}` returns it and
/// as the `data` of a webhook with `payload_type: "Subscription"`. Fields we
/// do not use are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_…`
    pub subscription_id: String,
    pub status: SubscriptionStatus,
    pub product_id: String,
    pub customer: Customer,
    /// Start of the current period.
    pub previous_billing_date: DateTime<Utc>,
    /// End of the current period.
    pub next_billing_date: DateTime<Utc>,
    #[serde(default)]
    pub cancel_at_next_billing_date: bool,
    /// String values in the 2025 API; numbers and booleans in newer ones.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Dodo's Payment object: the `data` of `payment.*` webhooks. Fields we do
/// not use are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// `pay_…`
    pub payment_id: String,
    /// `succeeded`, `failed`, `processing`, `cancelled`, `requires_*`…
    pub status: String,
    #[serde(default)]
    pub total_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub customer: Option<Customer>,
    /// Set on subscription payments.
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub checkout_session_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Dodo's Refund object: the `data` of `refund.*` webhooks. Fields we do
/// not use are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    /// `ref_…`
    pub refund_id: String,
    /// The payment it gives money back for.
    pub payment_id: String,
    /// `succeeded`, `failed`, `pending`, `review`…
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub is_partial: bool,
    /// Minor units.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub customer: Option<Customer>,
}

/// Dodo's Dispute object: the `data` of `dispute.*` webhooks. Fields we do
/// not use are ignored (its `amount` is a string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    /// `dsp_…`
    pub dispute_id: String,
    pub payment_id: String,
    /// `dispute_opened`, `dispute_won`, `dispute_lost`…
    #[serde(default)]
    pub dispute_status: Option<String>,
    #[serde(default)]
    pub customer: Option<Customer>,
}

/// How Dodo bills a plan change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProrationBillingMode {
    ProratedImmediately,
    FullImmediately,
    DifferenceImmediately,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Whether a request may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads, and creations that are harmless to repeat: retried on 429,
    /// 5xx, timeouts and connection errors.
    Safe,
    /// Creations that must not happen twice: retried only when Dodo surely
    /// did not act (connect error, 429, 503).
    UnlessMaybeApplied,
}

/// One attempt's outcome, before it is turned into a result.
enum Attempt {
    Reply {
        status: StatusCode,
        body: Vec<u8>,
    },
    /// The connection could not be made: nothing was sent.
    ConnectFailed(String),
    /// Timed out or failed once the request may have been sent.
    Failed(String),
    TooLarge,
}

/// Talks to Dodo Payments. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct DodoClient {
    http: reqwest::Client,
    settings: DodoSettings,
}

impl fmt::Debug for DodoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DodoClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct WireCheckout<'a> {
    product_cart: [WireCartItem<'a>; 1],
    customer: WireCustomer<'a>,
    return_url: &'a str,
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct WireCartItem<'a> {
    product_id: &'a str,
    quantity: u32,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireCustomer<'a> {
    Existing {
        customer_id: &'a str,
    },
    New {
        email: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct WireNewCustomer<'a> {
    email: &'a str,
    name: &'a str,
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WireCheckoutSession {
    session_id: String,
    checkout_url: Option<String>,
}

#[derive(Deserialize)]
struct WirePortal {
    link: String,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<String>,
    message: Option<String>,
}

impl DodoClient {
    pub fn new(settings: DodoSettings) -> anyhow::Result<DodoClient> {
        check_base_url(&settings.base_url)
            .map_err(|reason| anyhow::anyhow!("the Dodo Payments base URL {reason}"))?;
        anyhow::ensure!(
            !settings.timeout.is_zero(),
            "the Dodo Payments timeout must be positive"
        );
        anyhow::ensure!(
            settings.max_body_bytes > 0,
            "the Dodo Payments body size cap must be positive"
        );
        anyhow::ensure!(
            !settings.api_key.expose_secret().trim().is_empty(),
            "the Dodo Payments API key is empty"
        );
        let mut auth = header::HeaderValue::from_str(&format!(
            "Bearer {}",
            settings.api_key.expose_secret().trim()
        ))
        .map_err(|_| anyhow::anyhow!("DODO_PAYMENTS_API_KEY holds characters a header cannot"))?;
        auth.set_sensitive(true);
        let mut headers = header::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // An API answer never needs a redirect, and following one could
            // carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tldw/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("could not build the Dodo Payments HTTP client")?;
        Ok(DodoClient { http, settings })
    }

    pub fn settings(&self) -> &DodoSettings {
        &self.settings
    }

    /// `POST /checkouts`: a hosted checkout session for one product.
    /// Retried only when Dodo surely did not create anything (see the
    /// module docs).
    #[tracing::instrument(
        name = "dodo.create_checkout",
        skip(self, request),
        fields(product_id = %request.product_id, session_id = tracing::field::Empty)
    )]
    pub async fn create_checkout(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, DodoError> {
        let body = WireCheckout {
            product_cart: [WireCartItem {
                product_id: &request.product_id,
                quantity: request.quantity,
            }],
            customer: match &request.customer {
                CheckoutCustomer::Existing { customer_id } => {
                    check_id(customer_id, "customer")?;
                    WireCustomer::Existing { customer_id }
                }
                CheckoutCustomer::New { email, name } => WireCustomer::New {
                    email,
                    name: name.as_deref(),
                },
            },
            return_url: &request.return_url,
            metadata: &request.metadata,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|error| DodoError::Invalid(format!("the checkout request: {error}")))?;
        let url = self.endpoint(&["checkouts"], &[]);
        let reply: WireCheckoutSession = self
            .call(Method::POST, url, Some(body), Retry::UnlessMaybeApplied)
            .await?;
        let checkout_url = reply
            .checkout_url
            .ok_or_else(|| DodoError::BadResponse("the session has no checkout_url".into()))?;
        check_link(&checkout_url, "checkout_url")?;
        tracing::Span::current().record("session_id", reply.session_id.as_str());
        Ok(CheckoutSession {
            session_id: reply.session_id,
            checkout_url,
        })
    }

    /// `POST /customers`: a new customer, made for one org so that its
    /// portal shows nothing of anyone else's. Not retried when the outcome
    /// is ambiguous (a second customer would be an orphan, not a leak).
    #[tracing::instrument(
        name = "dodo.create_customer",
        skip(self, customer),
        fields(customer_id = tracing::field::Empty)
    )]
    pub async fn create_customer(
        &self,
        customer: &NewCustomer,
    ) -> Result<CreatedCustomer, DodoError> {
        let body = serde_json::to_vec(&WireNewCustomer {
            email: &customer.email,
            name: &customer.name,
            metadata: &customer.metadata,
        })
        .map_err(|error| DodoError::Invalid(format!("the customer: {error}")))?;
        let url = self.endpoint(&["customers"], &[]);
        let created: CreatedCustomer = self
            .call(Method::POST, url, Some(body), Retry::UnlessMaybeApplied)
            .await?;
        // It goes into paths later (the portal): refuse one that could not.
        check_id(&created.customer_id, "customer")
            .map_err(|_| DodoError::BadResponse("the customer_id is not a valid id".into()))?;
        tracing::Span::current().record("customer_id", created.customer_id.as_str());
        Ok(created)
    }

    /// `POST /customers/{customer_id}/customer-portal/session`: a link to
    /// the customer's billing portal, with a "return" button to
    /// `return_url` when given.
    #[tracing::instrument(name = "dodo.customer_portal", skip(self, return_url))]
    pub async fn customer_portal(
        &self,
        customer_id: &str,
        return_url: Option<&str>,
    ) -> Result<String, DodoError> {
        check_id(customer_id, "customer")?;
        let query: Vec<(&str, &str)> = return_url.map(|r| ("return_url", r)).into_iter().collect();
        let url = self.endpoint(
            &["customers", customer_id, "customer-portal", "session"],
            &query,
        );
        let reply: WirePortal = self.call(Method::POST, url, None, Retry::Safe).await?;
        check_link(&reply.link, "link")?;
        Ok(reply.link)
    }

    /// `GET /subscriptions/{subscription_id}`: the subscription's current
    /// state.
    #[tracing::instrument(name = "dodo.get_subscription", skip(self))]
    pub async fn get_subscription(&self, subscription_id: &str) -> Result<Subscription, DodoError> {
        check_id(subscription_id, "subscription")?;
        let url = self.endpoint(&["subscriptions", subscription_id], &[]);
        self.call(Method::GET, url, None, Retry::Safe).await
    }

    /// `POST /subscriptions/{id}/change-plan`: moves the subscription to
    /// another product. Dodo answers with an empty 200 and confirms with a
    /// `subscription.plan_changed` webhook, which is what changes our state.
    /// Not retried when the outcome is ambiguous (see `create_checkout`).
    #[tracing::instrument(name = "dodo.change_plan", skip(self))]
    pub async fn change_plan(
        &self,
        subscription_id: &str,
        product_id: &str,
        proration: ProrationBillingMode,
    ) -> Result<(), DodoError> {
        check_id(subscription_id, "subscription")?;
        let body = serde_json::to_vec(&serde_json::json!({
            "product_id": product_id,
            "quantity": 1,
            "proration_billing_mode": proration,
        }))
        .map_err(|error| DodoError::Invalid(format!("the plan change: {error}")))?;
        let url = self.endpoint(&["subscriptions", subscription_id, "change-plan"], &[]);
        let _: serde::de::IgnoredAny = self
            .call(Method::POST, url, Some(body), Retry::UnlessMaybeApplied)
            .await?;
        Ok(())
    }

    /// The base URL (its path kept as a prefix) plus `segments`, each
    /// percent-encoded as one path segment, plus `query`.
    fn endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.settings.base_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url
                .path_segments_mut()
                .expect("the base URL is http(s), so it has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends with the retry policy and decodes a 2xx JSON body as `T`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<T, DodoError> {
        let max_attempts = self.settings.max_retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let outcome = self
                .attempt(method.clone(), url.clone(), body.clone(), attempt)
                .await;
            let retryable = match (&outcome, retry) {
                (Attempt::Reply { status, .. }, Retry::Safe) => {
                    *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }
                (Attempt::Reply { status, .. }, Retry::UnlessMaybeApplied) => {
                    *status == StatusCode::TOO_MANY_REQUESTS
                        || *status == StatusCode::SERVICE_UNAVAILABLE
                }
                (Attempt::ConnectFailed(_), _) => true,
                (Attempt::Failed(_), Retry::Safe) => true,
                (Attempt::Failed(_), Retry::UnlessMaybeApplied) => false,
                (Attempt::TooLarge, _) => false,
            };
            if retryable && attempt < max_attempts {
                let delay = self.backoff(attempt);
                tracing::warn!(
                    attempt,
                    reason = %describe(&outcome),
                    retry_in_ms = delay.as_millis() as u64,
                    "Dodo request failed; retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            let result = finish(outcome, attempt);
            if let Err(error) = &result {
                tracing::warn!(%error, attempts = attempt, "Dodo request failed");
            }
            return result;
        }
    }

    /// One request, its body read chunk by chunk and abandoned past the cap.
    #[tracing::instrument(
        name = "dodo.request",
        skip(self, url, body),
        fields(path = %url.path(), status = tracing::field::Empty)
    )]
    async fn attempt(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        attempt: u32,
    ) -> Attempt {
        let mut request = self.http.request(method, url);
        request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body),
            None => request.header(header::CONTENT_LENGTH, "0"),
        };
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(error),
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let limit = self.settings.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Attempt::TooLarge;
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Attempt::TooLarge;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    // The request was sent: never "surely not applied".
                    return Attempt::Failed(describe_transport(error));
                }
            }
        }
        Attempt::Reply { status, body }
    }

    /// Full jitter: uniformly random in `[0, min(cap, base × 2^(attempt-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .settings
            .retry_base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        ceiling.mul_f64(rand::rng().random::<f64>())
    }
}

fn transport_failure(error: reqwest::Error) -> Attempt {
    // A connect error means no byte of the request reached Dodo. A connect
    // *timeout* is reported as a timeout too, and counted as ambiguous.
    let surely_not_sent = error.is_connect() && !error.is_timeout();
    let reason = describe_transport(error);
    if surely_not_sent {
        Attempt::ConnectFailed(reason)
    } else {
        Attempt::Failed(reason)
    }
}

/// The error without its URL (which holds ids); the key is never in one.
fn describe_transport(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    format!("{kind}: {}", error.without_url())
}

fn describe(outcome: &Attempt) -> String {
    match outcome {
        Attempt::Reply { status, .. } => format!("HTTP {}", status.as_u16()),
        Attempt::ConnectFailed(reason) | Attempt::Failed(reason) => reason.clone(),
        Attempt::TooLarge => "the response was too large".into(),
    }
}

/// The final outcome as a result.
fn finish<T: serde::de::DeserializeOwned>(outcome: Attempt, attempts: u32) -> Result<T, DodoError> {
    let (status, body) = match outcome {
        Attempt::Reply { status, body } => (status, body),
        Attempt::ConnectFailed(reason) | Attempt::Failed(reason) => {
            return Err(DodoError::Unavailable(format!(
                "{reason} ({attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            )));
        }
        Attempt::TooLarge => {
            return Err(DodoError::BadResponse(
                "the response was larger than the size cap".into(),
            ));
        }
    };
    if status.is_success() {
        // Some endpoints (change-plan) answer 200 with no body at all.
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &body
        };
        return serde_json::from_slice(body).map_err(|error| {
            DodoError::BadResponse(format!(
                "HTTP {} with unexpected JSON: {error}",
                status.as_u16()
            ))
        });
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(DodoError::Unauthorized),
        StatusCode::NOT_FOUND => Err(DodoError::NotFound),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            Err(DodoError::Invalid(error_message(&body)))
        }
        StatusCode::TOO_MANY_REQUESTS => Err(DodoError::RateLimited),
        status if status.is_server_error() => Err(DodoError::Unavailable(format!(
            "HTTP {} ({attempts} attempt{}): {}",
            status.as_u16(),
            if attempts == 1 { "" } else { "s" },
            error_message(&body)
        ))),
        status => Err(DodoError::BadResponse(format!(
            "unexpected HTTP {}: {}",
            status.as_u16(),
            error_message(&body)
        ))),
    }
}

/// Dodo's `message` (or `code`) from an error body `{"code","message"}`, or
/// the start of whatever came instead.
fn error_message(body: &[u8]) -> String {
    if let Ok(WireError { code, message }) = serde_json::from_slice::<WireError>(body) {
        match (message, code) {
            (Some(message), _) if !message.trim().is_empty() => {
                return truncate(message.trim(), MAX_ERROR_SNIPPET);
            }
            (_, Some(code)) if !code.trim().is_empty() => {
                return truncate(code.trim(), MAX_ERROR_SNIPPET);
            }
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no details)".to_owned()
    } else {
        truncate(text, MAX_ERROR_SNIPPET)
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Ids go into paths: only `[A-Za-z0-9_-]`, so no `/`, `..`, `?` or `%`.
fn check_id(id: &str, what: &str) -> Result<(), DodoError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(DodoError::Invalid(format!("not a valid {what} id")))
    }
}

/// Links we redirect a member to must be absolute http(s) URLs.
fn check_link(link: &str, field: &str) -> Result<(), DodoError> {
    match Url::parse(link) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host_str().is_some() => Ok(()),
        _ => Err(DodoError::BadResponse(format!(
            "{field} is not an http(s) URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> DodoClient {
        DodoClient::new(DodoSettings::new(
            SecretString::from("sk_test"),
            Url::parse(base).unwrap(),
        ))
        .unwrap()
    }

    #[test]
    fn endpoints_keep_the_base_path_and_encode_segments() {
        let client = client("http://127.0.0.1:9/prefix/");
        assert_eq!(
            client.endpoint(&["subscriptions", "sub_1"], &[]).as_str(),
            "http://127.0.0.1:9/prefix/subscriptions/sub_1"
        );
        assert_eq!(
            client
                .endpoint(
                    &["customers", "cus_1", "customer-portal", "session"],
                    &[("return_url", "https://app.example/billing?x=1&y=2")]
                )
                .as_str(),
            "http://127.0.0.1:9/prefix/customers/cus_1/customer-portal/session?return_url=https%3A%2F%2Fapp.example%2Fbilling%3Fx%3D1%26y%3D2"
        );
        let client = self::client("https://test.dodopayments.com");
        assert_eq!(
            client.endpoint(&["checkouts"], &[]).as_str(),
            "https://test.dodopayments.com/checkouts"
        );
        // Even an unchecked segment cannot add a path level.
        assert_eq!(
            client.endpoint(&["subscriptions", "../x/y"], &[]).as_str(),
            "https://test.dodopayments.com/subscriptions/..%2Fx%2Fy"
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("sub_2f8Xk-9", "subscription").is_ok());
        for bad in [
            "",
            "..",
            "sub/1",
            "a..b/",
            "sub_1?x",
            "sub%2F",
            "süb",
            &"x".repeat(129),
        ] {
            assert!(check_id(bad, "subscription").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_and_capped() {
        let client = client("https://test.dodopayments.com");
        for _ in 0..50 {
            assert!(client.backoff(1) <= Duration::from_millis(250));
            assert!(client.backoff(2) <= Duration::from_millis(500));
            assert!(client.backoff(40) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let settings = DodoSettings::new(
            SecretString::from("sk_live_very_secret"),
            Url::parse(LIVE_MODE_BASE_URL).unwrap(),
        );
        assert!(!format!("{settings:?}").contains("very_secret"));
        let client = DodoClient::new(settings).unwrap();
        assert!(!format!("{client:?}").contains("very_secret"));
    }

    #[test]
    fn error_messages_prefer_dodo_message() {
        assert_eq!(
            error_message(br#"{"code":"INVALID","message":"bad product"}"#),
            "bad product"
        );
        assert_eq!(error_message(br#"{"code":"INVALID"}"#), "INVALID");
        assert_eq!(error_message(b"oops"), "oops");
        assert_eq!(error_message(b""), "(no details)");
    }
}
