//! Billing end to end: Dodo Payments webhooks through `POST /webhooks/dodo`
//! (signatures, idempotency across instances and crashes, ordering), quota
//! periods that follow the subscription, checkout and portal permissions,
//! checkout progress, and the operator's `tldw plan set`.
//!
//! A small fake Dodo on 127.0.0.1 answers `POST /checkouts` and the portal
//! session and records every request, so a test can copy the checkout's
//! metadata onto the webhooks it then sends, as Dodo does.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tldw::{
    domain::{BillingOverview, CheckoutProgress, OrgId, PlanCatalog, PlanId, UserId, VideoId},
    error::AppError,
    server::{
        db::{Db, TenantScope},
        services::{
            billing::{Billing, Outcome},
            quota::{self, QuotaStatus, Reservation},
        },
        webhooks::signature::{WebhookSecret, WebhookVerifier},
    },
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use uuid::Uuid;

use crate::helpers::{
    Reply, TestApp, TestDb, as_owner_in_org, cluster, seed_org, settings_for, spawn_app,
    spawn_app_with, spawn_instance_with, superuser_conn,
};
use sqlx::{Connection, PgConnection};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The key before a rotation (`DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS`).
const PREVIOUS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const PRO_PRODUCT: &str = "pdt_pro";
const TEAM_PRODUCT: &str = "pdt_team";
const FREE_LIMIT: i32 = 3;
const PRO_LIMIT: i32 = 6;
const TEAM_LIMIT: i32 = 9;
/// For apps whose tests never reach Dodo: nothing listens there.
pub(crate) const NO_DODO: &str = "http://127.0.0.1:9";

// ---------------------------------------------------------------------------
// A fake Dodo that records what the app asked.

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

pub(crate) struct FakeDodo {
    pub(crate) base_url: String,
    state: Arc<FakeDodoState>,
}

#[derive(Default)]
struct FakeDodoState {
    seen: Mutex<Vec<Seen>>,
    /// `POST /customers` answers with this existing customer instead of a
    /// new one (as Dodo might for an email it knows).
    reuse_customer: Mutex<Option<String>>,
    /// How long `POST /checkouts` takes.
    checkout_delay: Mutex<Duration>,
    /// `POST /checkouts` answers 422 this many more times.
    refuse_checkouts: Mutex<usize>,
}

impl FakeDodo {
    pub(crate) async fn start() -> FakeDodo {
        let state = Arc::new(FakeDodoState::default());
        let app = Router::new().fallback(fake_dodo).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeDodo {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The bodies of the `POST /checkouts` requests, oldest first.
    pub(crate) fn checkouts(&self) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::POST && s.path == "/checkouts")
            .map(|s| s.body)
            .collect()
    }

    /// The bodies of the `POST /customers` requests, oldest first.
    fn customer_requests(&self) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::POST && s.path == "/customers")
            .map(|s| s.body)
            .collect()
    }

    /// The customer id the `n`th (0-based) `POST /customers` created.
    fn created_customer(&self, n: usize) -> String {
        let seen = self.seen();
        let (index, _) = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| s.method == Method::POST && s.path == "/customers")
            .nth(n)
            .unwrap_or_else(|| panic!("no customer #{n} in {seen:?}"));
        format!("cus_fake{}", index + 1)
    }

    fn reuse_customer(&self, customer: &str) {
        *self.state.reuse_customer.lock().unwrap() = Some(customer.to_owned());
    }

    fn delay_checkouts(&self, delay: Duration) {
        *self.state.checkout_delay.lock().unwrap() = delay;
    }

    fn refuse_checkouts(&self, times: usize) {
        *self.state.refuse_checkouts.lock().unwrap() = times;
    }
}

async fn fake_dodo(
    State(state): State<Arc<FakeDodoState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
        });
        seen.len()
    };
    match (method.as_str(), path.as_str()) {
        // `POST /customers`: email and name required; the new customer.
        ("POST", "/customers") => {
            let (Some(email), Some(name)) = (body["email"].as_str(), body["name"].as_str()) else {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "code": "INVALID_REQUEST", "message": "email and name are required" })),
                )
                    .into_response();
            };
            let reused = state.reuse_customer.lock().unwrap().clone();
            Json(json!({
                "business_id": "bus_test",
                "created_at": rfc3339(Utc::now()),
                "customer_id": reused.unwrap_or_else(|| format!("cus_fake{n}")),
                "email": email,
                "name": name,
                "metadata": body["metadata"].clone(),
                "phone_number": null,
            }))
            .into_response()
        }
        ("POST", "/checkouts") => {
            let delay = *state.checkout_delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let refuse = {
                let mut refuse = state.refuse_checkouts.lock().unwrap();
                let now = *refuse > 0;
                *refuse = refuse.saturating_sub(1);
                now
            };
            if refuse {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "code": "INVALID_REQUEST", "message": "refused for the test" })),
                )
                    .into_response();
            }
            Json(json!({
                "session_id": format!("cks_fake{n}"),
                "checkout_url": format!("https://test.checkout.dodopayments.com/session/cks_fake{n}"),
            }))
            .into_response()
        }
        // Any subscription, as Dodo holds it now: Team, on hold, mid-period.
        ("GET", p) if p.starts_with("/subscriptions/sub_") => {
            let state = SubState::new("on_hold", TEAM_PRODUCT, period(-10, 20));
            let id = p.trim_start_matches("/subscriptions/");
            Json(subscription_data(id, "cus_fetched", json!({}), &state)).into_response()
        }
        ("POST", p) if p.starts_with("/customers/") && p.ends_with("/customer-portal/session") => {
            Json(json!({ "link": "https://test.customer.dodopayments.com/portal/fake" }))
                .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({ "code": "NOT_FOUND", "message": "no such object" })),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------
// Apps with billing on.

pub(crate) fn billing_vars(dodo_base_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("DODO_PAYMENTS_API_KEY", "test_key"),
        ("DODO_PAYMENTS_BASE_URL", dodo_base_url),
        ("DODO_PAYMENTS_WEBHOOK_KEY", SECRET),
        ("DODO_PAYMENTS_PRODUCT_PRO", PRO_PRODUCT),
        ("DODO_PAYMENTS_PRODUCT_TEAM", TEAM_PRODUCT),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.extend(limit_vars().iter().map(|(k, v)| (k.to_string(), v.clone())));
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

fn limit_vars() -> Vec<(&'static str, String)> {
    vec![
        ("TLDW_FREE_MONTHLY_SUMMARIES", FREE_LIMIT.to_string()),
        ("TLDW_PRO_MONTHLY_SUMMARIES", PRO_LIMIT.to_string()),
        ("TLDW_TEAM_MONTHLY_SUMMARIES", TEAM_LIMIT.to_string()),
    ]
}

fn refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// An app with billing on whose Dodo is at `dodo_base_url`.
async fn billing_app(dodo_base_url: &str, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with(&refs(&billing_vars(dodo_base_url, extra))).await
}

/// The plans the billing apps are configured with.
fn plans() -> PlanCatalog {
    let defaults = PlanCatalog::default();
    let price = |id| defaults.get(id).monthly_price_cents;
    defaults
        .clone()
        .with(PlanId::Free, FREE_LIMIT as u32, 0)
        .with(PlanId::Pro, PRO_LIMIT as u32, price(PlanId::Pro))
        .with(PlanId::Team, TEAM_LIMIT as u32, price(PlanId::Team))
}

// ---------------------------------------------------------------------------
// Signed deliveries.

#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

impl Delivery {
    /// Signed with the current key, now.
    fn signed(id: &str, body: Vec<u8>) -> Delivery {
        Delivery::signed_with(SECRET, id, Utc::now().timestamp(), body)
    }

    fn signed_with(secret: &str, id: &str, timestamp: i64, body: Vec<u8>) -> Delivery {
        let key = WebhookSecret::parse(secret).unwrap();
        Delivery {
            id: id.to_owned(),
            timestamp,
            signature: WebhookVerifier::sign(&key, id, timestamp, &body),
            body,
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_str(&self.id).unwrap());
        headers.insert("webhook-timestamp", HeaderValue::from(self.timestamp));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&self.signature).unwrap(),
        );
        headers
    }
}

fn new_id() -> String {
    format!("msg_{}", Uuid::new_v4().simple())
}

/// `POST /webhooks/dodo` with exactly these headers and body.
async fn post_webhook(app: &TestApp, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let mut request = app
        .client
        .post(app.url("/webhooks/dodo"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    Reply::read(request.body(body).send().await.unwrap()).await
}

pub(crate) async fn deliver(app: &TestApp, delivery: &Delivery) -> Reply {
    post_webhook(
        app,
        &[
            ("webhook-id", delivery.id.clone()),
            ("webhook-timestamp", delivery.timestamp.to_string()),
            ("webhook-signature", delivery.signature.clone()),
        ],
        delivery.body.clone(),
    )
    .await
}

/// `body` delivered as Dodo would: a fresh id, signed with the key
/// `billing_vars` configures, now.
pub(crate) async fn deliver_signed(app: &TestApp, body: Vec<u8>) -> Reply {
    deliver(app, &Delivery::signed(&new_id(), body)).await
}

/// The outcome word of a 200 acknowledgement.
#[track_caller]
fn outcome(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json::<Value>()["outcome"]
        .as_str()
        .unwrap_or_else(|| panic!("no outcome in {}", reply.body))
        .to_owned()
}

async fn delivered(app: &TestApp, delivery: &Delivery) -> String {
    outcome(&deliver(app, delivery).await)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn envelope(event_type: &str, at: DateTime<Utc>, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "business_id": "bus_test",
        "type": event_type,
        "timestamp": rfc3339(at),
        "data": data,
    }))
    .unwrap()
}

/// What a subscription event says about the subscription.
#[derive(Clone, Debug)]
pub(crate) struct SubState {
    status: &'static str,
    product: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    cancel_at_next: bool,
}

impl SubState {
    fn new(
        status: &'static str,
        product: &'static str,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> SubState {
        SubState {
            status,
            product,
            start: period.0,
            end: period.1,
            cancel_at_next: false,
        }
    }

    fn cancelling_at_period_end(mut self) -> SubState {
        self.cancel_at_next = true;
        self
    }

    /// The plan this state entitles to, as the service must decide it.
    fn plan(&self) -> PlanId {
        let product = if self.product == TEAM_PRODUCT {
            PlanId::Team
        } else {
            PlanId::Pro
        };
        match self.status {
            "active" | "on_hold" => product,
            "cancelled" if self.cancel_at_next => product,
            _ => PlanId::Free,
        }
    }
}

/// Whole seconds from now, in days (the database keeps microseconds, the
/// envelope milliseconds: whole seconds compare exactly).
fn days_from_now(days: i64) -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now + days * 86_400, 0).unwrap()
}

fn period(from_days: i64, to_days: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    (days_from_now(from_days), days_from_now(to_days))
}

fn subscription_data(
    subscription: &str,
    customer: &str,
    metadata: Value,
    state: &SubState,
) -> Value {
    json!({
        "payload_type": "Subscription",
        "subscription_id": subscription,
        "status": state.status,
        "product_id": state.product,
        "quantity": 1,
        "customer": { "customer_id": customer, "email": "buyer@example.com", "name": "Buyer" },
        "metadata": metadata,
        "previous_billing_date": rfc3339(state.start),
        "next_billing_date": rfc3339(state.end),
        "cancel_at_next_billing_date": state.cancel_at_next,
        "cancelled_at": null,
        "created_at": rfc3339(state.start),
        "currency": "USD",
        "recurring_pre_tax_amount": 900,
        "tax_inclusive": false,
        "payment_frequency_count": 1,
        "payment_frequency_interval": "Month",
        "addons": [],
        "meters": []
    })
}

/// One org and the Dodo subscription that pays for it: the org has a
/// checkout session row (our reference), and every event carries that
/// reference in its metadata, as Dodo copies the checkout's metadata.
pub(crate) struct Sub {
    org: OrgId,
    user: UserId,
    id: String,
    customer: String,
    checkout: Uuid,
    /// The envelope time of the next event; each event moves it on.
    clock: DateTime<Utc>,
}

impl Sub {
    /// An org seeded straight in the database, with a checkout session.
    async fn seed(test_db: &TestDb, db: &Db, slug: &str) -> Sub {
        let (org, user) = seed_org(db, slug).await;
        let checkout = Uuid::new_v4();
        as_owner_in_org(
            test_db,
            org,
            &format!(
                "insert into checkout_sessions (org_id, id, plan, created_by)
                 values ('{}', '{checkout}', 'pro', '{}')",
                org.as_uuid(),
                user.as_uuid()
            ),
        )
        .await;
        Sub::for_checkout(org, user, checkout)
    }

    fn for_checkout(org: OrgId, user: UserId, checkout: Uuid) -> Sub {
        let tag = Uuid::new_v4().simple().to_string();
        Sub {
            org,
            user,
            id: format!("sub_{}", &tag[..20]),
            customer: format!("cus_{}", &tag[12..]),
            checkout,
            clock: DateTime::from_timestamp(Utc::now().timestamp() - 86_400, 0).unwrap(),
        }
    }

    fn metadata(&self) -> Value {
        json!({ "tldw_checkout": self.checkout.to_string(), "tldw_org": self.org.to_string() })
    }

    /// A delivery of `event_type` at envelope time `at`.
    fn event_at(&self, event_type: &str, at: DateTime<Utc>, state: &SubState) -> Delivery {
        let data = subscription_data(&self.id, &self.customer, self.metadata(), state);
        Delivery::signed(&new_id(), envelope(event_type, at, data))
    }

    /// The next event: one second after the previous one.
    fn event(&mut self, event_type: &str, state: &SubState) -> Delivery {
        self.clock += chrono::Duration::seconds(1);
        self.event_at(event_type, self.clock, state)
    }
}

// ---------------------------------------------------------------------------
// Reading the database.

async fn scalar_i64(test_db: &TestDb, sql: &str, bind: &str) -> i64 {
    let mut conn = superuser_conn(test_db).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(bind)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn ledger_rows(test_db: &TestDb, webhook_id: &str) -> i64 {
    scalar_i64(
        test_db,
        "select count(*) from webhook_events where webhook_id = $1",
        webhook_id,
    )
    .await
}

async fn ledger_total(test_db: &TestDb) -> i64 {
    count_all(test_db, "webhook_events").await
}

async fn ledger_outcome(test_db: &TestDb, webhook_id: &str) -> Option<String> {
    let mut conn = superuser_conn(test_db).await;
    sqlx::query_scalar("select outcome from webhook_events where webhook_id = $1")
        .bind(webhook_id)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
}

async fn count_all(test_db: &TestDb, table: &str) -> i64 {
    let mut conn = superuser_conn(test_db).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
struct SubRow {
    plan: String,
    source: String,
    status: String,
    dodo_subscription_id: Option<String>,
    dodo_customer_id: Option<String>,
    product_id: Option<String>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    last_event_at: Option<DateTime<Utc>>,
}

async fn subscription_row(test_db: &TestDb, org: OrgId) -> Option<SubRow> {
    let mut conn = superuser_conn(test_db).await;
    sqlx::query_as(
        "select plan, source, status, dodo_subscription_id, dodo_customer_id, product_id,
                period_start, period_end, cancel_at_period_end, last_event_at
         from subscriptions where org_id = $1",
    )
    .bind(org.as_uuid())
    .fetch_optional(&mut conn)
    .await
    .unwrap()
}

/// The row `state`, delivered at `at` for `sub`, must have left.
fn expected_row(sub: &Sub, state: &SubState, at: DateTime<Utc>) -> SubRow {
    SubRow {
        plan: state.plan().as_str().to_owned(),
        source: "dodo".into(),
        status: state.status.to_owned(),
        dodo_subscription_id: Some(sub.id.clone()),
        dodo_customer_id: Some(sub.customer.clone()),
        product_id: Some(state.product.to_owned()),
        period_start: Some(state.start),
        period_end: Some(state.end),
        cancel_at_period_end: state.cancel_at_next,
        last_event_at: Some(at),
    }
}

// ---------------------------------------------------------------------------
// Quota, straight through the service on the app's database.

fn video(n: usize) -> VideoId {
    VideoId::parse(&format!("vid{n:08}")).unwrap()
}

async fn reserve(db: &Db, sub: &Sub, n: usize) -> Result<Reservation, QuotaStatus> {
    let mut tx = db
        .tenant(TenantScope::member(sub.org, sub.user))
        .await
        .unwrap();
    let outcome = quota::reserve(&mut tx, sub.user, &video(n), &plans())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    match outcome {
        quota::Reserve::Reserved(reservation) => Ok(reservation),
        quota::Reserve::Exhausted(status) => Err(status),
        quota::Reserve::AlreadyOpen => panic!("video {n} already had an open reservation"),
    }
}

async fn quota_status(db: &Db, org: OrgId) -> QuotaStatus {
    let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
    let status = quota::status(&mut tx, &plans()).await.unwrap();
    tx.commit().await.unwrap();
    status
}

/// Reserves `count` units (videos `first..first + count`), all granted.
async fn reserve_n(db: &Db, sub: &Sub, first: usize, count: usize) {
    for n in first..first + count {
        reserve(db, sub, n)
            .await
            .unwrap_or_else(|s| panic!("reservation {n} refused: {s:?}"));
    }
}

// ===========================================================================
// 1. Signatures and bodies, through the route.

fn payout(at: DateTime<Utc>) -> Vec<u8> {
    envelope(
        "payout.success",
        at,
        json!({ "payout_id": "pout_1", "amount": 1200 }),
    )
}

#[tokio::test]
async fn a_valid_delivery_is_accepted_and_a_tampered_one_leaves_no_trace() {
    let app = billing_app(NO_DODO, &[]).await;

    // A type we do not act on: acknowledged, and in the ledger.
    let valid = Delivery::signed(&new_id(), payout(Utc::now()));
    assert_eq!(delivered(&app, &valid).await, "ignored");
    assert_eq!(
        ledger_outcome(&app.db, &valid.id).await.as_deref(),
        Some("ignored")
    );

    // The same signature over another body.
    let mut tampered = Delivery::signed(&new_id(), payout(Utc::now()));
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("1200", "1201")
        .into_bytes();
    let reply = deliver(&app, &tampered).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(ledger_rows(&app.db, &tampered.id).await, 0);

    // Each header missing in turn.
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let delivery = Delivery::signed(&new_id(), payout(Utc::now()));
        let headers: Vec<(&str, String)> = [
            ("webhook-id", delivery.id.clone()),
            ("webhook-timestamp", delivery.timestamp.to_string()),
            ("webhook-signature", delivery.signature.clone()),
        ]
        .into_iter()
        .filter(|(name, _)| *name != missing)
        .collect();
        let reply = post_webhook(&app, &headers, delivery.body.clone()).await;
        assert!(
            (400..500).contains(&reply.status),
            "without {missing}: {} {}",
            reply.status,
            reply.body
        );
        assert_eq!(ledger_rows(&app.db, &delivery.id).await, 0, "{missing}");
    }

    // Signatures that are empty, too short, not base64, or another version.
    let good = Delivery::signed(&new_id(), payout(Utc::now()));
    let tag = good.signature.strip_prefix("v1,").unwrap().to_owned();
    for signature in [
        "v1,".to_owned(),
        "v1,AAAA".to_owned(),
        format!("v1,{}", &tag[..tag.len() - 8]),
        "v1,!!!not-base64!!!".to_owned(),
        "garbage".to_owned(),
        format!("v2,{tag}"),
        String::new(),
    ] {
        let delivery = Delivery {
            signature: signature.clone(),
            ..good.clone()
        };
        let reply = deliver(&app, &delivery).await;
        assert_eq!(reply.status, 403, "{signature:?}: {}", reply.body);
    }
    assert_eq!(ledger_rows(&app.db, &good.id).await, 0);
    // One good entry among bad ones is enough.
    let several = Delivery {
        signature: format!("v1,AAAA v2,{tag} {}", good.signature),
        ..good.clone()
    };
    assert_eq!(delivered(&app, &several).await, "ignored");
}

/// Waits until the wall clock is early in a second, so that a timestamp
/// computed now is still in the same second when the server checks it.
async fn early_in_a_second() {
    let millis = Utc::now().timestamp_subsec_millis();
    if millis > 200 {
        tokio::time::sleep(Duration::from_millis(u64::from(1_005 - millis))).await;
    }
}

#[tokio::test]
async fn timestamps_within_five_minutes_are_accepted_and_beyond_refused() {
    let app = billing_app(NO_DODO, &[]).await;
    for (skew, accepted) in [(-299, true), (299, true), (-301, false), (301, false)] {
        early_in_a_second().await;
        let now = Utc::now().timestamp();
        let delivery = Delivery::signed_with(SECRET, &new_id(), now + skew, payout(Utc::now()));
        let reply = deliver(&app, &delivery).await;
        if accepted {
            assert_eq!(outcome(&reply), "ignored", "skew {skew}");
            assert_eq!(ledger_rows(&app.db, &delivery.id).await, 1);
        } else {
            assert_eq!(reply.status, 403, "skew {skew}: {}", reply.body);
            assert_eq!(ledger_rows(&app.db, &delivery.id).await, 0);
        }
    }
    // Not a whole number of seconds.
    let delivery = Delivery::signed(&new_id(), payout(Utc::now()));
    let reply = post_webhook(
        &app,
        &[
            ("webhook-id", delivery.id.clone()),
            ("webhook-timestamp", format!("{}.5", delivery.timestamp)),
            ("webhook-signature", delivery.signature.clone()),
        ],
        delivery.body.clone(),
    )
    .await;
    assert!((400..500).contains(&reply.status), "{}", reply.body);
}

#[tokio::test]
async fn the_previous_key_is_accepted_only_during_a_rotation() {
    let app = billing_app(NO_DODO, &[]).await;
    let rotating = spawn_instance_with(
        &app.db,
        &refs(&billing_vars(
            NO_DODO,
            &[("DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS", PREVIOUS_SECRET)],
        )),
    )
    .await;
    let old = |id: &str| {
        Delivery::signed_with(
            PREVIOUS_SECRET,
            id,
            Utc::now().timestamp(),
            payout(Utc::now()),
        )
    };

    let refused = old(&new_id());
    let reply = deliver(&app, &refused).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(ledger_rows(&app.db, &refused.id).await, 0);

    let accepted = old(&new_id());
    assert_eq!(delivered(&rotating, &accepted).await, "ignored");
    // The current key still works during the rotation.
    let current = Delivery::signed(&new_id(), payout(Utc::now()));
    assert_eq!(delivered(&rotating, &current).await, "ignored");
    assert_eq!(ledger_rows(&app.db, &accepted.id).await, 1);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_without_a_ledger_row() {
    let app = billing_app(NO_DODO, &[]).await;
    for body in [
        &b"{not json"[..],
        br#"{"type":"subscription.active"}"#,
        br#"{"type":"x","timestamp":"yesterday","data":{}}"#,
        br#"[]"#,
    ] {
        let delivery = Delivery::signed(&new_id(), body.to_vec());
        let reply = deliver(&app, &delivery).await;
        assert_eq!(
            reply.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            reply.body
        );
        assert_eq!(ledger_rows(&app.db, &delivery.id).await, 0);
    }

    // Just over 256 KiB, validly signed.
    let padding = "x".repeat(256 * 1024);
    let big = envelope("payout.success", Utc::now(), json!({ "padding": padding }));
    assert!(big.len() > 256 * 1024);
    let delivery = Delivery::signed(&new_id(), big);
    let reply = deliver(&app, &delivery).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(ledger_rows(&app.db, &delivery.id).await, 0);
    assert_eq!(ledger_total(&app.db).await, 0);
}

#[tokio::test]
async fn an_event_for_a_customer_we_never_stored_changes_no_org() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    // An org exists, but the event names nothing we stored.
    let _ = Sub::seed(&app.db, &db, "bystander").await;
    let state = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let data = subscription_data(
        "sub_nobody",
        "cus_nobody",
        json!({ "tldw_checkout": Uuid::new_v4().to_string() }),
        &state,
    );
    let delivery = Delivery::signed(&new_id(), envelope("subscription.active", Utc::now(), data));
    assert_eq!(delivered(&app, &delivery).await, "unknown_customer");
    assert_eq!(
        ledger_outcome(&app.db, &delivery.id).await.as_deref(),
        Some("unknown_customer")
    );
    assert_eq!(count_all(&app.db, "subscriptions").await, 0);
    assert_eq!(count_all(&app.db, "billing_events").await, 0);
    // A redelivery is a duplicate, still without effect.
    assert_eq!(delivered(&app, &delivery).await, "duplicate");
    assert_eq!(ledger_rows(&app.db, &delivery.id).await, 1);
}

#[tokio::test]
async fn a_customer_paying_for_two_orgs_names_neither_on_its_own() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    // One person (one Dodo customer) subscribes two orgs.
    let mut first = Sub::seed(&app.db, &db, "first-org").await;
    let mut second = Sub::seed(&app.db, &db, "second-org").await;
    second.customer = first.customer.clone();
    let state = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let payment = |customer: &str| {
        json!({
            "payload_type": "Payment",
            "payment_id": format!("pay_{}", &Uuid::new_v4().simple().to_string()[..16]),
            "status": "succeeded",
            "total_amount": 1200,
            "currency": "USD",
            "customer": { "customer_id": customer, "email": "buyer@example.com", "name": "Buyer" },
            "metadata": {},
        })
    };

    // With one org behind it, the customer is enough.
    assert_eq!(
        delivered(&app, &first.event("subscription.active", &state)).await,
        "applied"
    );
    let lone = Delivery::signed(
        &new_id(),
        envelope("payment.succeeded", Utc::now(), payment(&first.customer)),
    );
    assert_eq!(delivered(&app, &lone).await, "recorded");

    // With two, a payment naming only the customer goes to neither org.
    assert_eq!(
        delivered(&app, &second.event("subscription.active", &state)).await,
        "applied"
    );
    let ambiguous = Delivery::signed(
        &new_id(),
        envelope("payment.succeeded", Utc::now(), payment(&first.customer)),
    );
    assert_eq!(delivered(&app, &ambiguous).await, "unknown_customer");
    assert_eq!(count_all(&app.db, "payments").await, 1);
    // Events that name their subscription still find their own org.
    assert_eq!(
        delivered(&app, &second.event("subscription.renewed", &state)).await,
        "applied"
    );
}

#[tokio::test]
async fn billing_off_answers_webhooks_with_503() {
    let app = spawn_app().await;
    let delivery = Delivery::signed(&new_id(), payout(Utc::now()));
    let reply = deliver(&app, &delivery).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(ledger_total(&app.db).await, 0);
}

// ===========================================================================
// 2. Idempotency.

#[tokio::test]
async fn a_redelivered_event_is_a_duplicate_with_one_ledger_row() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "twice").await;
    let state = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let event = sub.event("subscription.active", &state);
    assert_eq!(delivered(&app, &event).await, "applied");
    assert_eq!(delivered(&app, &event).await, "duplicate");
    assert_eq!(ledger_rows(&app.db, &event.id).await, 1);
    assert_eq!(
        ledger_outcome(&app.db, &event.id).await.as_deref(),
        Some("applied")
    );
    assert_eq!(count_all(&app.db, "billing_events").await, 1);
    assert_eq!(
        subscription_row(&app.db, sub.org).await,
        Some(expected_row(&sub, &state, sub.clock))
    );

    // A payment is recorded once too.
    let payment = json!({
        "payload_type": "Payment",
        "payment_id": "pay_1",
        "status": "succeeded",
        "total_amount": 900,
        "currency": "USD",
        "customer": { "customer_id": sub.customer, "email": "buyer@example.com", "name": "Buyer" },
        "subscription_id": sub.id,
        "metadata": sub.metadata(),
    });
    let paid = Delivery::signed(
        &new_id(),
        envelope("payment.succeeded", Utc::now(), payment),
    );
    assert_eq!(delivered(&app, &paid).await, "recorded");
    assert_eq!(delivered(&app, &paid).await, "duplicate");
    assert_eq!(count_all(&app.db, "payments").await, 1);
    assert_eq!(count_all(&app.db, "billing_events").await, 2);
}

#[tokio::test]
async fn twenty_concurrent_copies_on_two_instances_apply_once() {
    let vars = billing_vars(NO_DODO, &[("DATABASE_MAX_CONNECTIONS", "6")]);
    let first = Arc::new(spawn_app_with(&refs(&vars)).await);
    let second = Arc::new(spawn_instance_with(&first.db, &refs(&vars)).await);
    let db = first.db.db(2).await;
    let mut sub = Sub::seed(&first.db, &db, "storm-of-one").await;
    let state = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let event = sub.event("subscription.active", &state);

    let mut copies = JoinSet::new();
    for n in 0..20 {
        let app = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let event = event.clone();
        copies.spawn(async move { outcome(&deliver(&app, &event).await) });
    }
    let mut outcomes = BTreeMap::<String, usize>::new();
    while let Some(outcome) = copies.join_next().await {
        *outcomes.entry(outcome.unwrap()).or_default() += 1;
    }
    assert_eq!(
        outcomes,
        BTreeMap::from([("applied".to_owned(), 1), ("duplicate".to_owned(), 19)])
    );
    assert_eq!(ledger_rows(&first.db, &event.id).await, 1);
    assert_eq!(count_all(&first.db, "billing_events").await, 1);
    assert_eq!(
        subscription_row(&first.db, sub.org).await,
        Some(expected_row(&sub, &state, sub.clock))
    );
}

#[tokio::test]
async fn a_crash_between_effect_and_commit_leaves_nothing_and_the_retry_applies() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let settings = settings_for(&test_db, &refs(&billing_vars(NO_DODO, &[])));
    let crash = Arc::new(AtomicBool::new(true));
    let crashes = crash.clone();
    let billing = Billing::new(
        db.clone(),
        settings.billing.plans.clone(),
        settings.billing.dodo.clone(),
    )
    .unwrap()
    .with_crash_before_commit(Arc::new(move |_id: &str| {
        crashes.swap(false, Ordering::SeqCst)
    }));
    let mut sub = Sub::seed(&test_db, &db, "crashy").await;
    let state = SubState::new("active", TEAM_PRODUCT, period(-2, 28));
    let event = sub.event("subscription.active", &state);

    let crashed = billing.receive_webhook(&event.headers(), &event.body).await;
    assert!(
        matches!(crashed, Err(AppError::Unavailable(_))),
        "{crashed:?}"
    );
    assert!(!crash.load(Ordering::SeqCst), "the crash hook never ran");
    assert_eq!(ledger_rows(&test_db, &event.id).await, 0);
    assert_eq!(subscription_row(&test_db, sub.org).await, None);
    assert_eq!(count_all(&test_db, "billing_events").await, 0);

    let retried = billing.receive_webhook(&event.headers(), &event.body).await;
    assert_eq!(retried.unwrap(), Outcome::Applied);
    let again = billing.receive_webhook(&event.headers(), &event.body).await;
    assert_eq!(again.unwrap(), Outcome::Duplicate);
    assert_eq!(ledger_rows(&test_db, &event.id).await, 1);
    assert_eq!(
        subscription_row(&test_db, sub.org).await,
        Some(expected_row(&sub, &state, sub.clock))
    );
    assert_eq!(quota_status(&db, sub.org).await.plan, PlanId::Team);
}

#[tokio::test]
async fn a_database_outage_is_a_503_that_dodo_retries_and_records_nothing() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let settings = settings_for(&test_db, &refs(&billing_vars(NO_DODO, &[])));
    let billing = Billing::new(
        db.clone(),
        settings.billing.plans.clone(),
        settings.billing.dodo.clone(),
    )
    .unwrap();
    let mut sub = Sub::seed(&test_db, &db, "outage").await;
    let state = SubState::new("active", PRO_PRODUCT, period(-2, 28));
    let event = sub.event("subscription.active", &state);

    // The database goes away under the running app.
    let mut admin = PgConnection::connect_with(&cluster().pg.superuser_options("postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{}\" with allow_connections false",
        test_db.name
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&test_db.name)
        .execute(&mut admin)
        .await
        .unwrap();
    let refused = billing.receive_webhook(&event.headers(), &event.body).await;
    assert!(
        matches!(&refused, Err(AppError::Unavailable(message)) if message.contains("retry")),
        "{refused:?}"
    );

    // Back again: Dodo's retry applies it, once.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{}\" with allow_connections true",
        test_db.name
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(ledger_rows(&test_db, &event.id).await, 0);
    let retried = billing.receive_webhook(&event.headers(), &event.body).await;
    assert_eq!(retried.unwrap(), Outcome::Applied);
    assert_eq!(ledger_rows(&test_db, &event.id).await, 1);
}

// ===========================================================================
// 3. Ordering.

#[tokio::test]
async fn an_older_event_after_a_newer_one_is_stale() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "renewing").await;
    let old = SubState::new("active", PRO_PRODUCT, period(-31, -1));
    let renewed = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let active_at = sub.clock + chrono::Duration::seconds(1);
    let renewed_at = sub.clock + chrono::Duration::seconds(2);

    let renewal = sub.event_at("subscription.renewed", renewed_at, &renewed);
    assert_eq!(delivered(&app, &renewal).await, "applied");
    let late = sub.event_at("subscription.active", active_at, &old);
    assert_eq!(delivered(&app, &late).await, "stale");
    assert_eq!(
        ledger_outcome(&app.db, &late.id).await.as_deref(),
        Some("stale")
    );
    assert_eq!(
        subscription_row(&app.db, sub.org).await,
        Some(expected_row(&sub, &renewed, renewed_at))
    );
    sub.clock = renewed_at;

    // A cancellation that arrives before the activation it follows.
    let mut other = Sub::seed(&app.db, &db, "cancelling").await;
    let running = SubState::new("active", PRO_PRODUCT, period(-3, 27));
    let cancelled = SubState::new("cancelled", PRO_PRODUCT, period(-3, 27));
    let activated_at = other.clock + chrono::Duration::seconds(1);
    let cancelled_at = other.clock + chrono::Duration::seconds(5);
    let cancel = other.event_at("subscription.cancelled", cancelled_at, &cancelled);
    assert_eq!(delivered(&app, &cancel).await, "applied");
    let activate = other.event_at("subscription.active", activated_at, &running);
    assert_eq!(delivered(&app, &activate).await, "stale");
    let row = subscription_row(&app.db, other.org).await.unwrap();
    assert_eq!(row, expected_row(&other, &cancelled, cancelled_at));
    assert_eq!(
        (row.plan.as_str(), row.status.as_str()),
        ("free", "cancelled")
    );
    assert_eq!(quota_status(&db, other.org).await.plan, PlanId::Free);
    other.clock = cancelled_at;
}

#[tokio::test]
async fn an_event_whose_data_cannot_be_read_is_settled_by_asking_dodo() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "refetching").await;
    let active = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &active)).await,
        "applied"
    );

    // A newer event in a shape we cannot read: its subscription is fetched.
    sub.clock += chrono::Duration::seconds(1);
    let odd = json!({ "payload_type": "Subscription", "subscription_id": sub.id, "status": 42 });
    let delivery = Delivery::signed(&new_id(), envelope("subscription.updated", sub.clock, odd));
    assert_eq!(delivered(&app, &delivery).await, "applied");
    let fetched: Vec<Seen> = dodo
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::GET)
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0].path, format!("/subscriptions/{}", sub.id));
    let row = subscription_row(&app.db, sub.org).await.unwrap();
    assert_eq!(
        (row.plan.as_str(), row.status.as_str()),
        ("team", "on_hold")
    );

    // Dodo unreachable: 503 so that Dodo retries, and nothing recorded.
    let offline = billing_app(NO_DODO, &[]).await;
    let offline_db = offline.db.db(2).await;
    let mut other = Sub::seed(&offline.db, &offline_db, "offline").await;
    assert_eq!(
        delivered(&offline, &other.event("subscription.active", &active)).await,
        "applied"
    );
    other.clock += chrono::Duration::seconds(1);
    let odd = json!({ "payload_type": "Subscription", "subscription_id": other.id, "status": 42 });
    let delivery = Delivery::signed(
        &new_id(),
        envelope("subscription.updated", other.clock, odd),
    );
    let reply = deliver(&offline, &delivery).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(ledger_rows(&offline.db, &delivery.id).await, 0);
}

#[tokio::test]
async fn an_old_subscription_ending_does_not_take_the_plan_from_its_replacement() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut current = Sub::seed(&app.db, &db, "replaced").await;
    let live = SubState::new("active", TEAM_PRODUCT, period(-2, 28));
    let start = current.event("subscription.active", &live);
    assert_eq!(delivered(&app, &start).await, "applied");

    // Another subscription of the same org (same checkout metadata, same
    // customer) expires later: recorded, not applied.
    let mut old = Sub::for_checkout(current.org, current.user, current.checkout);
    old.customer = current.customer.clone();
    old.clock = current.clock;
    let ended = SubState::new("expired", PRO_PRODUCT, period(-40, -10));
    let expiry = old.event("subscription.expired", &ended);
    assert_eq!(delivered(&app, &expiry).await, "superseded");
    assert_eq!(
        ledger_outcome(&app.db, &expiry.id).await.as_deref(),
        Some("superseded")
    );
    assert_eq!(
        subscription_row(&app.db, current.org).await,
        Some(expected_row(&current, &live, current.clock))
    );
    assert_eq!(quota_status(&db, current.org).await.plan, PlanId::Team);

    // Once the current one is over, a live replacement takes over.
    current.clock = old.clock;
    let over = SubState::new("expired", TEAM_PRODUCT, period(-2, 28));
    assert_eq!(
        delivered(&app, &current.event("subscription.expired", &over)).await,
        "applied"
    );
    old.clock = current.clock;
    let revived = SubState::new("active", PRO_PRODUCT, period(0, 30));
    assert_eq!(
        delivered(&app, &old.event("subscription.active", &revived)).await,
        "applied"
    );
    assert_eq!(
        subscription_row(&app.db, current.org).await,
        Some(expected_row(&old, &revived, old.clock))
    );
    assert_eq!(quota_status(&db, current.org).await.plan, PlanId::Pro);
}

/// A small deterministic generator (xorshift64*), so a failing storm can be
/// replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

pub(crate) struct Storm {
    subs: Vec<Sub>,
    /// Every send, duplicates included, in the order they are started.
    pub(crate) sends: Vec<Delivery>,
    pub(crate) unique: usize,
    /// Per org: the newest event's state and envelope time.
    newest: HashMap<OrgId, (SubState, DateTime<Utc>)>,
}

/// `orgs` linked orgs and `events` events across them (unique ids, strictly
/// increasing envelope times, random states), plus `duplicates` redeliveries,
/// shuffled.
pub(crate) async fn storm(
    test_db: &TestDb,
    orgs: usize,
    events: usize,
    duplicates: usize,
    seed: u64,
) -> Storm {
    let db = test_db.db(2).await;
    let mut subs = Vec::new();
    for n in 0..orgs {
        subs.push(Sub::seed(test_db, &db, &format!("storm-{n}")).await);
    }
    db.close().await;
    let mut rng = Rng(seed | 1);
    let base = DateTime::from_timestamp(Utc::now().timestamp() - 3_600, 0).unwrap();
    let types = [
        "subscription.active",
        "subscription.renewed",
        "subscription.updated",
        "subscription.on_hold",
        "subscription.cancelled",
        "subscription.expired",
        "subscription.plan_changed",
    ];
    let mut unique = Vec::with_capacity(events);
    let mut newest = HashMap::new();
    for i in 0..events {
        let sub = &subs[rng.below(orgs as u64) as usize];
        let status = rng.pick(&["active", "on_hold", "cancelled", "expired"]);
        let product = rng.pick(&[PRO_PRODUCT, TEAM_PRODUCT]);
        let start = rng.below(60) as i64;
        let length = 1 + rng.below(40) as i64;
        let mut state = SubState::new(status, product, period(-start, length - start));
        state.cancel_at_next = status == "cancelled" && rng.below(2) == 0;
        let at = base + chrono::Duration::milliseconds(10 * i as i64);
        unique.push(sub.event_at(rng.pick(&types), at, &state));
        newest.insert(sub.org, (state, at));
    }
    let mut sends = unique.clone();
    for _ in 0..duplicates {
        let copy = unique[rng.below(events as u64) as usize].clone();
        sends.push(copy);
    }
    rng.shuffle(&mut sends);
    Storm {
        subs,
        sends,
        unique: events,
        newest,
    }
}

pub(crate) struct Sent {
    pub(crate) status: u16,
    pub(crate) outcome: String,
    pub(crate) took: Duration,
}

/// Sends every delivery, at most `concurrency` at a time, to the apps in
/// turn.
pub(crate) async fn send_all(
    apps: &[Arc<TestApp>],
    sends: &[Delivery],
    concurrency: usize,
) -> Vec<Sent> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for (n, delivery) in sends.iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let app = apps[n % apps.len()].clone();
        let delivery = delivery.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let reply = deliver(&app, &delivery).await;
            let took = started.elapsed();
            drop(permit);
            let outcome = if reply.status == 200 {
                reply.json::<Value>()["outcome"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            } else {
                format!("HTTP {}: {}", reply.status, reply.body)
            };
            Sent {
                status: reply.status,
                outcome,
                took,
            }
        });
    }
    let mut sent = Vec::with_capacity(sends.len());
    while let Some(result) = tasks.join_next().await {
        sent.push(result.unwrap());
    }
    sent
}

fn tally(sent: &[Sent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in sent {
        *counts.entry(s.outcome.clone()).or_default() += 1;
    }
    counts
}

/// One delivery as a sender that retries (as Dodo does) saw it: every
/// refused attempt's status, then the acknowledgement.
pub(crate) struct Retried {
    pub(crate) refused: Vec<(u16, String)>,
    pub(crate) acknowledged: Sent,
    /// When the acknowledgement came, from the start of the sending.
    pub(crate) at: Duration,
}

/// Like [`send_all`], but an attempt that is not a 200 is sent again after
/// `pause`, until acknowledged or `give_up` after the start.
pub(crate) async fn send_until_acknowledged(
    app: Arc<TestApp>,
    sends: &[Delivery],
    concurrency: usize,
    pause: Duration,
    give_up: Duration,
) -> Vec<Retried> {
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for delivery in sends {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (app, delivery) = (app.clone(), delivery.clone());
        tasks.spawn(async move {
            let mut refused = Vec::new();
            loop {
                let started = Instant::now();
                let reply = deliver(&app, &delivery).await;
                if reply.status == 200 {
                    drop(permit);
                    let outcome = reply.json::<Value>()["outcome"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned();
                    let took = started.elapsed();
                    return Retried {
                        refused,
                        acknowledged: Sent {
                            status: 200,
                            outcome,
                            took,
                        },
                        at: start.elapsed(),
                    };
                }
                refused.push((reply.status, reply.body));
                assert!(
                    start.elapsed() < give_up,
                    "{} still refused after {give_up:?}: {refused:?}",
                    delivery.id
                );
                tokio::time::sleep(pause).await;
            }
        });
    }
    let mut retried = Vec::with_capacity(sends.len());
    while let Some(result) = tasks.join_next().await {
        retried.push(result.unwrap());
    }
    retried
}

/// Checks what a storm must leave behind; returns the outcome counts.
pub(crate) async fn check_storm(
    test_db: &TestDb,
    storm: &Storm,
    sent: &[Sent],
) -> BTreeMap<String, usize> {
    let counts = tally(sent);
    assert!(
        sent.iter().all(|s| s.status == 200),
        "not all acknowledged: {counts:?}"
    );
    let duplicates = storm.sends.len() - storm.unique;
    assert_eq!(
        counts.get("duplicate").copied().unwrap_or(0),
        duplicates,
        "{counts:?}"
    );
    assert_eq!(
        counts.get("applied").copied().unwrap_or(0) + counts.get("stale").copied().unwrap_or(0),
        storm.unique,
        "{counts:?}"
    );
    check_storm_effects(test_db, storm).await;
    counts
}

/// What the database must hold after every delivery of a storm was
/// acknowledged, however many attempts each took: one ledger row and one
/// billing event per unique event (none lost, none doubled), and each
/// org's subscription at its newest event's state.
pub(crate) async fn check_storm_effects(test_db: &TestDb, storm: &Storm) {
    assert_eq!(ledger_total(test_db).await, storm.unique as i64);
    assert_eq!(
        count_all(test_db, "billing_events").await,
        storm.unique as i64
    );
    let ids: HashSet<&str> = storm.sends.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), storm.unique);
    for sub in &storm.subs {
        let row = subscription_row(test_db, sub.org).await;
        match storm.newest.get(&sub.org) {
            Some((state, at)) => assert_eq!(row, Some(expected_row(sub, state, *at)), "{}", sub.id),
            None => assert_eq!(row, None),
        }
    }
}

async fn storm_instances(n: usize) -> Vec<Arc<TestApp>> {
    let vars = billing_vars(NO_DODO, &[("DATABASE_MAX_CONNECTIONS", "12")]);
    let first = spawn_app_with(&refs(&vars)).await;
    let mut apps = Vec::new();
    for _ in 1..n {
        apps.push(Arc::new(spawn_instance_with(&first.db, &refs(&vars)).await));
    }
    apps.insert(0, Arc::new(first));
    apps
}

pub(crate) fn seed() -> u64 {
    std::env::var("BILLING_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(7) as u64)
}

#[tokio::test]
async fn a_storm_of_shuffled_duplicated_events_ends_at_the_newest_state() {
    let apps = storm_instances(2).await;
    let seed = seed();
    println!("storm seed {seed} (BILLING_STORM_SEED to replay)");
    let storm = storm(&apps[0].db, 10, 1_000, 300, seed).await;
    let sent = send_all(&apps, &storm.sends, 32).await;
    let counts = check_storm(&apps[0].db, &storm, &sent).await;
    println!("storm outcomes (seed {seed}): {counts:?}");
}

// ===========================================================================
// 4. Quota periods follow the subscription.

#[tokio::test]
async fn a_renewal_starts_a_fresh_counter() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "renews").await;
    let first = SubState::new("active", PRO_PRODUCT, period(-29, 1));
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &first)).await,
        "applied"
    );
    reserve_n(&db, &sub, 0, 4).await;
    let status = quota_status(&db, sub.org).await;
    assert_eq!(
        (status.plan, status.used, status.limit),
        (PlanId::Pro, 4, PRO_LIMIT)
    );
    assert_eq!(status.period_start, first.start);
    assert_eq!(status.resets_at, first.end);

    let next = SubState::new("active", PRO_PRODUCT, period(0, 30));
    assert_eq!(
        delivered(&app, &sub.event("subscription.renewed", &next)).await,
        "applied"
    );
    let status = quota_status(&db, sub.org).await;
    assert_eq!((status.plan, status.used), (PlanId::Pro, 0));
    assert_eq!(
        (status.period_start, status.resets_at),
        (next.start, next.end)
    );
    reserve_n(&db, &sub, 10, 1).await;
    assert_eq!(quota_status(&db, sub.org).await.used, 1);
}

/// `POST /api/v1/orgs/{slug}/summaries` with the member's session cookie.
async fn request_summary(app: &TestApp, cookie: &str, slug: &str, video: &VideoId) -> Reply {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/orgs/{slug}/summaries")))
        .header("origin", &app.address)
        .header("cookie", cookie)
        .json(&json!({ "url": format!("https://youtu.be/{video}") }))
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn a_free_org_at_its_limit_can_summarize_again_once_pro_is_active() {
    // YouTube is unreachable: an accepted request fails later and is
    // refunded, which this test does not look at.
    let app = billing_app(NO_DODO, &[("TLDW_YOUTUBE_BASE_URL", "http://127.0.0.1:9/")]).await;
    let db = app.db.db(2).await;
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Upgrader").await;
    let page = app.org_page(&owner, &slug).await;
    let checkout = Uuid::new_v4();
    as_owner_in_org(
        &app.db,
        page.org.id,
        &format!(
            "insert into checkout_sessions (org_id, id, plan, created_by)
             values ('{}', '{checkout}', 'pro', '{}')",
            page.org.id.as_uuid(),
            page.org.user_id.as_uuid()
        ),
    )
    .await;
    let mut sub = Sub::for_checkout(page.org.id, page.org.user_id, checkout);
    reserve_n(&db, &sub, 0, FREE_LIMIT as usize).await;

    let refused = request_summary(&app, &owner, &slug, &video(99)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let body: Value = refused.json();
    assert_eq!(
        (
            &body["error"]["code"],
            &body["error"]["used"],
            &body["error"]["limit"]
        ),
        (
            &json!("quota_exceeded"),
            &json!(FREE_LIMIT),
            &json!(FREE_LIMIT)
        ),
        "{body}"
    );

    let pro = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &pro)).await,
        "applied"
    );
    let accepted = request_summary(&app, &owner, &slug, &video(99)).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let status = quota_status(&db, sub.org).await;
    assert_eq!((status.plan, status.limit), (PlanId::Pro, PRO_LIMIT));
    assert_eq!(status.period_start, pro.start);
}

#[tokio::test]
async fn a_downgrade_below_current_usage_refuses_more_and_keeps_the_count() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "downgrades").await;
    let span = period(-5, 25);
    let team = SubState::new("active", TEAM_PRODUCT, span);
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &team)).await,
        "applied"
    );
    let used = PRO_LIMIT + 2;
    reserve_n(&db, &sub, 0, used as usize).await;

    let pro = SubState::new("active", PRO_PRODUCT, span);
    assert_eq!(
        delivered(&app, &sub.event("subscription.plan_changed", &pro)).await,
        "applied"
    );
    let refused = reserve(&db, &sub, 99).await.unwrap_err();
    assert_eq!(
        (refused.plan, refused.used, refused.limit),
        (PlanId::Pro, used, PRO_LIMIT)
    );
    let status = quota_status(&db, sub.org).await;
    assert_eq!((status.used, status.period_start), (used, span.0));
    let counters: Vec<i32> =
        sqlx::query_scalar("select used from usage_counters where org_id = $1")
            .bind(sub.org.as_uuid())
            .fetch_all(&mut superuser_conn(&app.db).await)
            .await
            .unwrap();
    assert_eq!(counters, [used]);
}

#[tokio::test]
async fn lapsing_states_keep_the_paid_plan_only_until_the_period_ends() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(4).await;
    let running = period(-10, 20);
    let ended = period(-40, -10);
    let cases = [
        (
            "on hold, period running",
            SubState::new("on_hold", PRO_PRODUCT, running),
            PlanId::Pro,
        ),
        (
            "on hold, period over",
            SubState::new("on_hold", PRO_PRODUCT, ended),
            PlanId::Free,
        ),
        (
            "cancelled at period end, running",
            SubState::new("cancelled", TEAM_PRODUCT, running).cancelling_at_period_end(),
            PlanId::Team,
        ),
        (
            "cancelled at period end, over",
            SubState::new("cancelled", TEAM_PRODUCT, ended).cancelling_at_period_end(),
            PlanId::Free,
        ),
        (
            "cancelled now",
            SubState::new("cancelled", PRO_PRODUCT, running),
            PlanId::Free,
        ),
        (
            "expired",
            SubState::new("expired", PRO_PRODUCT, running),
            PlanId::Free,
        ),
        (
            "failed",
            SubState::new("failed", PRO_PRODUCT, running),
            PlanId::Free,
        ),
        // Active past its end (the renewal webhook is late) keeps the plan.
        (
            "active, renewal late",
            SubState::new("active", PRO_PRODUCT, ended),
            PlanId::Pro,
        ),
    ];
    for (n, (case, state, expected)) in cases.into_iter().enumerate() {
        let mut sub = Sub::seed(&app.db, &db, &format!("lapse-{n}")).await;
        let active = SubState::new("active", state.product, (state.start, state.end));
        assert_eq!(
            delivered(&app, &sub.event("subscription.active", &active)).await,
            "applied"
        );
        let event_type = format!("subscription.{}", state.status);
        assert_eq!(
            delivered(&app, &sub.event(&event_type, &state)).await,
            "applied",
            "{case}"
        );
        let status = quota_status(&db, sub.org).await;
        let limit = plans().limit(expected);
        assert_eq!((status.plan, status.limit), (expected, limit), "{case}");
        // The limit is enforced: exactly `limit` reservations pass.
        reserve_n(&db, &sub, 0, limit as usize).await;
        assert!(reserve(&db, &sub, 99).await.is_err(), "{case}");
    }
}

// ===========================================================================
// 5. Who may buy.

async fn org_with_roles(app: &TestApp) -> (String, OrgId, String, String, String) {
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Acme Video").await;
    let org = app.org_page(&owner, &slug).await.org.id;
    let admin = app.sign_up("admin@example.com").await;
    app.add_member(&owner, &slug, &admin, "admin@example.com", "admin")
        .await;
    let member = app.sign_up("member@example.com").await;
    app.add_member(&owner, &slug, &member, "member@example.com", "member")
        .await;
    (slug, org, owner, admin, member)
}

async fn checkout(app: &TestApp, cookie: &str, slug: &str, plan: &str) -> Reply {
    app.call(
        cookie,
        "billing/checkout",
        &[("slug", slug), ("plan", plan)],
    )
    .await
}

#[tokio::test]
async fn only_owners_and_admins_reach_checkout_and_the_portal() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let (slug, org, _owner, admin, member) = org_with_roles(&app).await;

    let refused = checkout(&app, &member, &slug, "pro").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = app
        .call(&member, "billing/portal", &[("slug", &slug)])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(dodo.seen().is_empty(), "{:?}", dodo.seen());

    // Without JavaScript the form post is answered with a redirect to Dodo.
    let response = app
        .client
        .post(app.url("/api/billing/checkout"))
        .header("origin", &app.address)
        .header("accept", "text/html")
        .header("referer", app.url(&format!("/o/{slug}/billing")))
        .header("cookie", &admin)
        .form(&[("slug", slug.as_str()), ("plan", "team")])
        .send()
        .await
        .unwrap();
    let redirected = Reply::read(response).await;
    assert_eq!(redirected.status, 302, "{redirected:?}");
    assert!(
        redirected.location().is_some_and(
            |l| l.starts_with("https://test.checkout.dodopayments.com/session/cks_fake")
        ),
        "{redirected:?}"
    );
    assert_eq!(dodo.checkouts().len(), 1);
    assert_eq!(
        dodo.checkouts()[0]["product_cart"][0]["product_id"],
        TEAM_PRODUCT
    );

    // Asking again for the same plan hands out the same open session; a
    // different plan waits until it is done or expired.
    let reply = checkout(&app, &admin, &slug, "team").await;
    let url: String = reply.ok().json();
    assert_eq!(Some(url.as_str()), redirected.location());
    let other = checkout(&app, &admin, &slug, "pro").await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert!(other.body.contains("Team"), "{}", other.body);
    let checkouts = dodo.checkouts();
    assert_eq!(checkouts.len(), 1, "{:?}", dodo.seen());
    // One customer created for the org, then the session for it.
    assert_eq!(dodo.seen().len(), 2);
    let customer = dodo.created_customer(0);
    assert_eq!(
        dodo.customer_requests()[0],
        json!({ "email": "admin@example.com", "name": "Acme Video", "metadata": { "tldw_org": org.to_string() } })
    );
    let body = &checkouts[0];
    assert_eq!(body["customer"], json!({ "customer_id": customer }));
    assert_eq!(body["metadata"]["tldw_org"], org.to_string());
    let reference = body["metadata"]["tldw_checkout"].as_str().unwrap();
    let reference = Uuid::parse_str(reference).unwrap();
    assert!(
        body["return_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/o/{slug}/billing/return?checkout={reference}")),
        "{body}"
    );
    // The session we stored is the one Dodo gave us.
    let mut conn = superuser_conn(&app.db).await;
    let session: Option<String> =
        sqlx::query_scalar("select dodo_session_id from checkout_sessions where id = $1")
            .bind(reference)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(session.is_some_and(|s| url.ends_with(&s)));

    // Before any subscription, the portal has nothing to open.
    let none = app.call(&admin, "billing/portal", &[("slug", &slug)]).await;
    assert_eq!(none.status, 404, "{}", none.body);
    assert_eq!(dodo.seen().len(), 2);
}

#[tokio::test]
async fn billing_off_refuses_checkout_and_names_the_operator_command() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Offline").await;
    let reply = checkout(&app, &owner, &slug, "pro").await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("tldw plan set"), "{}", reply.body);
    assert!(!overview(&app, &owner, &slug).await.billing_enabled);
}

// ===========================================================================
// 6. Checkout progress.

async fn overview(app: &TestApp, cookie: &str, slug: &str) -> BillingOverview {
    app.call(cookie, "billing/overview", &[("slug", slug)])
        .await
        .ok()
        .json()
}

async fn progress(app: &TestApp, cookie: &str, slug: &str, checkout: &str) -> Reply {
    app.call(
        cookie,
        "billing/checkout-progress",
        &[("slug", slug), ("checkout", checkout)],
    )
    .await
}

#[tokio::test]
async fn checkout_progress_waits_for_the_webhook_and_is_scoped_to_the_org() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Buyer Co").await;
    let page = app.org_page(&owner, &slug).await;
    checkout(&app, &owner, &slug, "pro").await.ok();
    let body = dodo.checkouts().pop().unwrap();
    let customer = dodo.created_customer(0);
    let reference = body["metadata"]["tldw_checkout"]
        .as_str()
        .unwrap()
        .to_owned();

    let waiting: CheckoutProgress = progress(&app, &owner, &slug, &reference).await.ok().json();
    assert_eq!(waiting, CheckoutProgress::Waiting);

    // Dodo copies the checkout's metadata onto the subscription.
    let mut sub = Sub::for_checkout(
        page.org.id,
        page.org.user_id,
        Uuid::parse_str(&reference).unwrap(),
    );
    sub.customer = customer;
    let state = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let data = subscription_data(&sub.id, &sub.customer, body["metadata"].clone(), &state);
    sub.clock += chrono::Duration::seconds(1);
    let event = Delivery::signed(&new_id(), envelope("subscription.active", sub.clock, data));
    assert_eq!(delivered(&app, &event).await, "applied");

    let confirmed: CheckoutProgress = progress(&app, &owner, &slug, &reference).await.ok().json();
    assert_eq!(confirmed, CheckoutProgress::Confirmed { plan: PlanId::Pro });
    let overview = overview(&app, &owner, &slug).await;
    assert_eq!(
        (overview.current, overview.quota.limit),
        (PlanId::Pro, PRO_LIMIT)
    );
    assert!(
        overview
            .subscription
            .as_ref()
            .is_some_and(|s| s.live && s.has_portal)
    );
    assert_eq!(overview.events.len(), 1);

    // A second checkout while the subscription runs is refused, before Dodo.
    let seen = dodo.seen().len();
    let again = checkout(&app, &owner, &slug, "team").await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(dodo.seen().len(), seen);
    // The portal now opens for the stored customer.
    let portal: String = app
        .call(&owner, "billing/portal", &[("slug", &slug)])
        .await
        .ok()
        .json();
    assert!(portal.starts_with("https://"), "{portal}");
    assert!(
        dodo.seen().last().is_some_and(
            |s| s.path == format!("/customers/{}/customer-portal/session", sub.customer)
        ),
        "{:?}",
        dodo.seen()
    );

    // Cancelled at period end: still paid until then, so no second
    // subscription can be bought (it would bill twice); the portal resumes it.
    let cancelling =
        SubState::new("active", PRO_PRODUCT, period(-1, 29)).cancelling_at_period_end();
    let data = subscription_data(
        &sub.id,
        &sub.customer,
        body["metadata"].clone(),
        &cancelling,
    );
    sub.clock += chrono::Duration::seconds(1);
    let event = Delivery::signed(
        &new_id(),
        envelope("subscription.cancelled", sub.clock, data),
    );
    assert_eq!(delivered(&app, &event).await, "applied");
    let view = self::overview(&app, &owner, &slug)
        .await
        .subscription
        .unwrap();
    assert!(
        !view.live && view.paid_period_running && view.warning.is_some(),
        "{view:?}"
    );
    let seen = dodo.seen().len();
    let twice = checkout(&app, &owner, &slug, "team").await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(twice.body.contains("billing portal"), "{}", twice.body);
    assert_eq!(dodo.seen().len(), seen);

    // Unknown checkouts and other orgs' checkouts are not found.
    let unknown = progress(&app, &owner, &slug, &Uuid::new_v4().to_string()).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let garbage = progress(&app, &owner, &slug, "not-a-uuid").await;
    assert_eq!(garbage.status, 404, "{}", garbage.body);
    let other = app.sign_up("other@example.com").await;
    let other_slug = app.create_org(&other, "Other Co").await;
    checkout(&app, &other, &other_slug, "team").await.ok();
    let other_reference = dodo.checkouts().pop().unwrap()["metadata"]["tldw_checkout"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = progress(&app, &owner, &slug, &other_reference).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let own: CheckoutProgress = progress(&app, &other, &other_slug, &other_reference)
        .await
        .ok()
        .json();
    assert_eq!(own, CheckoutProgress::Waiting);
}

// ===========================================================================
// 7. The operator command.

#[tokio::test]
async fn tldw_plan_set_changes_the_orgs_limit() {
    let app = spawn_app_with(
        &limit_vars()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Manual Co").await;
    let before = overview(&app, &owner, &slug).await;
    assert_eq!(
        (before.current, before.quota.limit),
        (PlanId::Free, FREE_LIMIT)
    );

    let settings = settings_for(&app.db, &[]);
    tldw::server::startup::set_plan(&settings, &slug, PlanId::Pro)
        .await
        .unwrap();
    let after = overview(&app, &owner, &slug).await;
    assert_eq!((after.current, after.quota.limit), (PlanId::Pro, PRO_LIMIT));
    assert!(after.subscription.is_some_and(|s| s.manual));

    let error = tldw::server::startup::set_plan(&settings, "no-such-org", PlanId::Team)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("no-such-org"), "{error:#}");
    let unchanged = overview(&app, &owner, &slug).await;
    assert_eq!(unchanged.current, PlanId::Pro);
}

// ===========================================================================
// 8. A report: webhook acknowledgement latency under a storm.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test]
#[ignore = "a report, not a test: run with --ignored --nocapture"]
async fn webhook_storm_report() {
    // One at a time (the acknowledgement itself), then 32 in flight.
    for (instances, in_flight) in [(1, 1), (1, 32), (2, 32)] {
        let apps = storm_instances(instances).await;
        let seed = seed();
        let storm = storm(&apps[0].db, 10, 1_000, 300, seed).await;
        let started = Instant::now();
        let sent = send_all(&apps, &storm.sends, in_flight).await;
        let wall = started.elapsed();
        let counts = check_storm(&apps[0].db, &storm, &sent).await;
        let mut took: Vec<Duration> = sent.iter().map(|s| s.took).collect();
        took.sort_unstable();
        println!(
            "webhook storm: {} deliveries ({} unique, 10 orgs), {instances} instance(s), {in_flight} in flight, seed {seed}",
            sent.len(),
            storm.unique
        );
        println!("  {:<28} {:>10.1?}", "wall time", wall);
        println!(
            "  {:<28} {:>10.1}",
            "throughput (deliveries/s)",
            sent.len() as f64 / wall.as_secs_f64()
        );
        println!(
            "  {:<28} {:>10.1?}",
            "ack latency median",
            percentile(&took, 0.5)
        );
        println!(
            "  {:<28} {:>10.1?}",
            "ack latency p99",
            percentile(&took, 0.99)
        );
        println!(
            "  {:<28} {:>10.1?}",
            "ack latency max",
            took[took.len() - 1]
        );
        for (outcome, count) in &counts {
            println!("  outcome {outcome:<20} {count:>10}");
        }
    }
}

// ===========================================================================
// 8. Billing boundaries (issue 12 item 5; review findings 5, 7, 11, 18f).

/// An org whose owner started a checkout (so the org has its own Dodo
/// customer) and whose subscription `state` then arrived from Dodo.
struct Paying {
    slug: String,
    owner: String,
    sub: Sub,
}

async fn paying_org(
    app: &TestApp,
    dodo: &FakeDodo,
    email: &str,
    name: &str,
    state: &SubState,
) -> Paying {
    let owner = app.sign_up(email).await;
    let slug = app.create_org(&owner, name).await;
    let page = app.org_page(&owner, &slug).await;
    checkout(app, &owner, &slug, "pro").await.ok();
    let body = dodo.checkouts().pop().unwrap();
    let reference = Uuid::parse_str(body["metadata"]["tldw_checkout"].as_str().unwrap()).unwrap();
    let mut sub = Sub::for_checkout(page.org.id, page.org.user_id, reference);
    sub.customer = body["customer"]["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(
        delivered(app, &sub.event("subscription.active", state)).await,
        "applied"
    );
    Paying { slug, owner, sub }
}

#[tokio::test]
async fn ten_concurrent_checkouts_create_one_dodo_session() {
    let dodo = FakeDodo::start().await;
    // A slow Dodo keeps the first start busy while the others arrive.
    dodo.delay_checkouts(Duration::from_millis(400));
    let app = Arc::new(billing_app(&dodo.base_url, &[("DATABASE_MAX_CONNECTIONS", "10")]).await);
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Double Click").await;

    let mut starts = JoinSet::new();
    for _ in 0..10 {
        let (app, owner, slug) = (app.clone(), owner.clone(), slug.clone());
        starts.spawn(async move { checkout(&app, &owner, &slug, "pro").await });
    }
    let mut urls = HashSet::new();
    while let Some(reply) = starts.join_next().await {
        let url: String = reply.unwrap().ok().json();
        urls.insert(url);
    }
    assert_eq!(dodo.checkouts().len(), 1, "{:?}", dodo.seen());
    assert_eq!(dodo.customer_requests().len(), 1, "{:?}", dodo.seen());
    assert_eq!(urls.len(), 1, "{urls:?}");
    // One row holds the slot.
    let mut conn = superuser_conn(&app.db).await;
    let open: i64 = sqlx::query_scalar("select count(*) from checkout_sessions where is_open")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(open, 1);
}

#[tokio::test]
async fn a_checkout_slot_frees_when_dodo_refuses_or_the_session_expires() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let owner = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner, "Second Thoughts").await;

    // Dodo refuses once: the slot is given back, the next start works.
    dodo.refuse_checkouts(1);
    let refused = checkout(&app, &owner, &slug, "pro").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let first: String = checkout(&app, &owner, &slug, "pro").await.ok().json();
    assert_eq!(dodo.checkouts().len(), 2);
    // The org keeps the one customer made for it.
    assert_eq!(dodo.customer_requests().len(), 1);

    // Another plan must wait for the open one ...
    let other = checkout(&app, &owner, &slug, "team").await;
    assert_eq!(other.status, 409, "{}", other.body);
    // ... until its time is up; then a new session is made.
    let mut conn = superuser_conn(&app.db).await;
    sqlx::query(
        "update checkout_sessions set expires_at = now() - interval '1 second' where is_open",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let second: String = checkout(&app, &owner, &slug, "team").await.ok().json();
    assert_ne!(first, second);
    assert_eq!(dodo.checkouts().len(), 3);
    let last = dodo.checkouts().pop().unwrap();
    assert_eq!(last["product_cart"][0]["product_id"], TEAM_PRODUCT);
    assert_eq!(last["customer"]["customer_id"], dodo.created_customer(0));
}

#[tokio::test]
async fn each_org_gets_its_own_customer_and_the_portal_never_opens_another() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let live = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    // One person pays for two orgs.
    let alice = app.sign_up("alice@example.com").await;
    let first = app.create_org(&alice, "Alice One").await;
    let second = app.create_org(&alice, "Alice Two").await;
    checkout(&app, &alice, &first, "pro").await.ok();
    checkout(&app, &alice, &second, "pro").await.ok();
    let (a, b) = (dodo.created_customer(0), dodo.created_customer(1));
    assert_ne!(a, b, "one customer per org, not per email");
    let checkouts = dodo.checkouts();
    assert_eq!(checkouts[0]["customer"], json!({ "customer_id": a }));
    assert_eq!(checkouts[1]["customer"], json!({ "customer_id": b }));

    // The first org's subscription arrives naming the second org's customer
    // (a payer who edited the checkout, or Dodo merging by email): recorded,
    // not applied.
    let page = app.org_page(&alice, &first).await;
    let reference =
        Uuid::parse_str(checkouts[0]["metadata"]["tldw_checkout"].as_str().unwrap()).unwrap();
    let mut sub = Sub::for_checkout(page.org.id, page.org.user_id, reference);
    sub.customer = b.clone();
    let crossed = sub.event("subscription.active", &live);
    assert_eq!(delivered(&app, &crossed).await, "customer_mismatch");
    assert_eq!(
        ledger_outcome(&app.db, &crossed.id).await.as_deref(),
        Some("customer_mismatch")
    );
    assert_eq!(subscription_row(&app.db, page.org.id).await, None);
    // With its own customer it applies, and the portal opens that one only.
    sub.customer = a.clone();
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &live)).await,
        "applied"
    );
    let link = app
        .call(&alice, "billing/portal", &[("slug", &first)])
        .await;
    assert_eq!(link.status, 200, "{}", link.body);
    assert_eq!(
        dodo.seen().last().unwrap().path,
        format!("/customers/{a}/customer-portal/session")
    );
    // An admin of the second org alone has nothing to open there yet: the
    // portal never falls back to a customer a webhook named.
    let none = app
        .call(&alice, "billing/portal", &[("slug", &second)])
        .await;
    assert_eq!(none.status, 404, "{}", none.body);

    // If Dodo ever hands back a customer that pays for another org, the
    // checkout is refused and nothing is stored for this org.
    dodo.reuse_customer(&a);
    let third = app.create_org(&alice, "Alice Three").await;
    let before = dodo.checkouts().len();
    let refused = checkout(&app, &alice, &third, "pro").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(dodo.checkouts().len(), before);
    assert_eq!(count_all(&app.db, "billing_customers").await, 2);
}

#[tokio::test]
async fn a_second_live_subscription_is_recorded_as_a_duplicate_and_keeps_the_first() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut first = Sub::seed(&app.db, &db, "twice-paid").await;
    let live = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    assert_eq!(
        delivered(&app, &first.event("subscription.active", &live)).await,
        "applied"
    );
    // A second checkout of the same org was paid too (two tabs before this
    // fix): same reference, same customer, another subscription.
    let mut second = Sub::for_checkout(first.org, first.user, first.checkout);
    second.customer = first.customer.clone();
    second.clock = first.clock;
    let team = SubState::new("active", TEAM_PRODUCT, period(0, 30));
    let duplicate = second.event("subscription.active", &team);
    assert_eq!(delivered(&app, &duplicate).await, "duplicate_subscription");
    assert_eq!(
        ledger_outcome(&app.db, &duplicate.id).await.as_deref(),
        Some("duplicate_subscription")
    );
    assert_eq!(
        subscription_row(&app.db, first.org).await,
        Some(expected_row(&first, &live, first.clock))
    );
    // The duplicate's cancellation does not take the plan either.
    let ended = SubState::new("cancelled", TEAM_PRODUCT, period(0, 30));
    assert_eq!(
        delivered(&app, &second.event("subscription.cancelled", &ended)).await,
        "superseded"
    );
    assert_eq!(quota_status(&db, first.org).await.plan, PlanId::Pro);
}

async fn delete_org(app: &TestApp, owner: &str, slug: &str) -> Reply {
    app.call(owner, "orgs/delete", &[("slug", slug), ("confirm", slug)])
        .await
}

#[tokio::test]
async fn deleting_an_org_whose_subscription_still_bills_is_refused_until_it_is_cancelled() {
    let dodo = FakeDodo::start().await;
    let app = billing_app(&dodo.base_url, &[]).await;
    let live = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    let mut paying = paying_org(&app, &dodo, "owner@example.com", "Paid Up", &live).await;
    let refused = delete_org(&app, &paying.owner, &paying.slug).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("Manage billing"), "{}", refused.body);
    assert!(app.get_org(&paying.owner, &paying.slug).await.status == 200);

    // On hold (a failed renewal) still bills once the card works again.
    let on_hold = SubState::new("on_hold", PRO_PRODUCT, period(-1, 29));
    assert_eq!(
        delivered(&app, &paying.sub.event("subscription.on_hold", &on_hold)).await,
        "applied"
    );
    let refused = delete_org(&app, &paying.owner, &paying.slug).await;
    assert_eq!(refused.status, 409, "{}", refused.body);

    // Cancelled in the portal (at the period's end): nothing more will be
    // charged, so the org can go.
    let cancelling = live.clone().cancelling_at_period_end();
    assert_eq!(
        delivered(
            &app,
            &paying.sub.event("subscription.cancelled", &cancelling)
        )
        .await,
        "applied"
    );
    let deleted = delete_org(&app, &paying.owner, &paying.slug).await;
    assert!(deleted.status < 400, "{deleted:?}");
    assert_eq!(count_all(&app.db, "subscriptions").await, 0);
}

fn payment_data(payment: &str, customer: &str, subscription: &str) -> Value {
    json!({
        "payload_type": "Payment",
        "payment_id": payment,
        "status": "succeeded",
        "total_amount": 1200,
        "currency": "USD",
        "customer": { "customer_id": customer, "email": "buyer@example.com", "name": "Buyer" },
        "subscription_id": subscription,
        "metadata": {},
    })
}

async fn payment_row(
    test_db: &TestDb,
    payment: &str,
) -> (String, Option<String>, Option<i64>, Option<String>) {
    let mut conn = superuser_conn(test_db).await;
    sqlx::query_as(
        "select status, refund_status, refunded_amount, dispute_status from payments where payment_id = $1",
    )
    .bind(payment)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn refunds_and_disputes_mark_the_payment_and_leave_the_plan_to_dodo() {
    let app = billing_app(NO_DODO, &[]).await;
    let db = app.db.db(2).await;
    let mut sub = Sub::seed(&app.db, &db, "refunded").await;
    let live = SubState::new("active", PRO_PRODUCT, period(-1, 29));
    assert_eq!(
        delivered(&app, &sub.event("subscription.active", &live)).await,
        "applied"
    );
    let paid_at = sub.clock + chrono::Duration::seconds(1);
    let paid = Delivery::signed(
        &new_id(),
        envelope(
            "payment.succeeded",
            paid_at,
            payment_data("pay_refundme", &sub.customer, &sub.id),
        ),
    );
    assert_eq!(delivered(&app, &paid).await, "recorded");

    // A full refund: found through the payment we stored.
    let refund = Delivery::signed(
        &new_id(),
        envelope(
            "refund.succeeded",
            paid_at + chrono::Duration::seconds(60),
            json!({
                "payload_type": "Refund", "refund_id": "ref_1", "payment_id": "pay_refundme",
                "business_id": "bus_test", "status": "succeeded", "is_partial": false,
                "amount": 1200, "currency": "USD", "created_at": rfc3339(paid_at),
            }),
        ),
    );
    assert_eq!(delivered(&app, &refund).await, "recorded");
    assert_eq!(
        payment_row(&app.db, "pay_refundme").await,
        (
            "refunded".into(),
            Some("succeeded".into()),
            Some(1200),
            None
        )
    );
    // A late copy of the payment event does not undo the refund.
    let late = Delivery::signed(
        &new_id(),
        envelope(
            "payment.succeeded",
            paid_at,
            payment_data("pay_refundme", &sub.customer, &sub.id),
        ),
    );
    delivered(&app, &late).await;
    assert_eq!(payment_row(&app.db, "pay_refundme").await.0, "refunded");

    // A dispute: recorded on the payment.
    let dispute = Delivery::signed(
        &new_id(),
        envelope(
            "dispute.opened",
            paid_at + chrono::Duration::seconds(120),
            json!({
                "payload_type": "Dispute", "dispute_id": "dsp_1", "payment_id": "pay_refundme",
                "business_id": "bus_test", "amount": "12.00", "currency": "USD",
                "dispute_stage": "dispute", "dispute_status": "dispute_opened",
                "created_at": rfc3339(paid_at),
            }),
        ),
    );
    assert_eq!(delivered(&app, &dispute).await, "recorded");
    assert_eq!(
        payment_row(&app.db, "pay_refundme").await.3.as_deref(),
        Some("dispute_opened")
    );
    // The org's own event list shows both; the plan follows the
    // subscription's events, which Dodo has not sent: still Pro.
    // subscription, payment, refund, the late payment copy, dispute.
    assert_eq!(count_all(&app.db, "billing_events").await, 5);
    assert_eq!(quota_status(&db, sub.org).await.plan, PlanId::Pro);

    // A refund for a payment nobody stored changes no org.
    let stray = Delivery::signed(
        &new_id(),
        envelope(
            "refund.succeeded",
            Utc::now(),
            json!({ "refund_id": "ref_2", "payment_id": "pay_nobody", "is_partial": true }),
        ),
    );
    assert_eq!(delivered(&app, &stray).await, "unknown_customer");
}
