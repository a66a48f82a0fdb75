//! The Dodo Payments client against a fake Dodo on 127.0.0.1 that implements
//! `POST /checkouts`, `POST /customers/{id}/customer-portal/session` and
//! `GET /subscriptions/{id}`, checks the bearer key, records every request,
//! and has knobs for failures (5xx then OK, 429, 422, slow, garbage,
//! oversized).

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tldw::server::clients::dodo::{
    CheckoutCustomer, CheckoutRequest, DodoClient, DodoError, DodoSettings, NewCustomer,
    Subscription, SubscriptionStatus,
};
use tokio::net::TcpListener;
use url::Url;

const KEY: &str = "sk_test_fake_dodo_key";
const SUBSCRIPTION: &str = "sub_2yCbCfP6bUJz6p7Vyer1N";
const CUSTOMER: &str = "cus_8VbC6JDZzPEqfBPUdpj0K";

/// A Subscription object as Dodo documents it, with fields this client does
/// not read and some it has never heard of.
fn subscription_json() -> Value {
    json!({
        "subscription_id": SUBSCRIPTION,
        "status": "active",
        "product_id": "pdt_pro_monthly",
        "quantity": 1,
        "customer": {
            "customer_id": CUSTOMER,
            "email": "owner@example.com",
            "name": "Olive Owner",
            "phone_number": null,
            "metadata": {}
        },
        "metadata": { "org_id": "0b5e0cde-0b1c-4b0c-9d35-6ea0b1f0c0de", "seats": 3, "trial": false },
        "previous_billing_date": "2025-09-01T10:15:30.123456Z",
        "next_billing_date": "2025-10-01T10:15:30.123456Z",
        "cancel_at_next_billing_date": false,
        "cancelled_at": null,
        "created_at": "2025-09-01T10:15:29Z",
        "currency": "USD",
        "recurring_pre_tax_amount": 900,
        "tax_inclusive": false,
        "payment_frequency_count": 1,
        "payment_frequency_interval": "Month",
        "subscription_period_count": 10,
        "subscription_period_interval": "Year",
        "trial_period_days": 0,
        "on_demand": false,
        "billing": { "country": "DE", "state": "BE", "city": "Berlin", "street": "Unter den Linden 1", "zipcode": "10117" },
        "addons": [],
        "meters": [],
        "discount_id": null,
        "discount_cycles_remaining": null,
        "brand_id": "bus_brand_1",
        "paused_at": null,
        "payment_method_id": "pm_123",
        "scheduled_change": null,
        "cancellation_feedback": null,
        "tax_id": null,
        "credit_entitlement_cart": [],
        "meter_credit_entitlement_cart": [],
        "a_field_from_the_future": { "nested": [1, 2, 3] }
    })
}

/// How the fake answers every endpoint.
#[derive(Clone, Debug)]
enum Behaviour {
    Normal,
    /// The first `times` requests get `status` with an error body, then normal.
    FailFirst {
        status: StatusCode,
        times: usize,
    },
    /// Always this status with `{code, message}`.
    Status(StatusCode),
    /// Answers normally, but only after this long.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a valid but huge JSON body.
    Oversized,
    /// 200 with a checkout/portal link that is not an http(s) URL.
    BadLink,
}

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

struct FakeState {
    behaviour: Behaviour,
    failures: AtomicUsize,
    calls: AtomicUsize,
    recorded: Mutex<Vec<Recorded>>,
    subscriptions: HashMap<String, Value>,
}

struct FakeDodo {
    base_url: Url,
    state: Arc<FakeState>,
}

impl FakeDodo {
    async fn start(behaviour: Behaviour) -> FakeDodo {
        let state = Arc::new(FakeState {
            behaviour,
            failures: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            recorded: Mutex::default(),
            subscriptions: HashMap::from([(SUBSCRIPTION.to_owned(), subscription_json())]),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeDodo {
            base_url: Url::parse(&format!("http://{addr}")).unwrap(),
            state,
        }
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }

    fn settings(&self) -> DodoSettings {
        settings_for(self.base_url.clone(), KEY)
    }

    fn client(&self) -> DodoClient {
        DodoClient::new(self.settings()).unwrap()
    }
}

fn settings_for(base_url: Url, key: &str) -> DodoSettings {
    DodoSettings {
        api_key: SecretString::from(key.to_owned()),
        base_url,
        timeout: Duration::from_millis(300),
        max_retries: 2,
        retry_base_delay: Duration::from_millis(10),
        max_body_bytes: 64 * 1024,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message })),
    )
        .into_response()
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or("<non-ascii>").to_owned())
    };
    state.recorded.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: header(header::AUTHORIZATION),
        content_type: header(header::CONTENT_TYPE),
        body: body.clone(),
    });

    if header(header::AUTHORIZATION).as_deref() != Some(&format!("Bearer {KEY}")) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid API key");
    }

    match &state.behaviour {
        Behaviour::Normal => {}
        Behaviour::FailFirst { status, times } => {
            if state.failures.fetch_add(1, Ordering::SeqCst) < *times {
                return error(*status, "TRANSIENT", "try again");
            }
        }
        Behaviour::Status(status) => {
            return error(
                *status,
                "INVALID_REQUEST",
                "product_cart[0].product_id: unknown product",
            );
        }
        Behaviour::Slow(delay) => tokio::time::sleep(*delay).await,
        Behaviour::Garbage => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>oops",
            )
                .into_response();
        }
        Behaviour::Oversized => {
            let mut json = subscription_json();
            json["padding"] = Value::String("x".repeat(200 * 1024));
            json["session_id"] = json!("cks_big");
            json["checkout_url"] = json!("https://test.checkout.dodopayments.com/session/cks_big");
            json["link"] = json!("https://portal.example/big");
            return axum::Json(json).into_response();
        }
        Behaviour::BadLink => {
            return axum::Json(json!({
                "session_id": "cks_bad",
                "checkout_url": "javascript:alert(1)",
                "link": "/relative/only",
            }))
            .into_response();
        }
    }

    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["checkouts"]) => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_JSON", "not JSON");
            };
            // `customer` is either `{customer_id}` (one we created) or
            // `{email, name?}` (Dodo finds or makes one).
            let customer_ok = match request["customer"]["customer_id"].as_str() {
                Some(id) => id == CUSTOMER,
                None => request["customer"]["email"].as_str().is_some(),
            };
            if request["product_cart"][0]["product_id"].as_str().is_none() || !customer_ok {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "MISSING",
                    "missing fields",
                );
            }
            axum::Json(json!({
                "session_id": "cks_0001",
                "checkout_url": "https://test.checkout.dodopayments.com/session/cks_0001",
                "payment_id": null,
            }))
            .into_response()
        }
        // `POST /customers`: email and name are required.
        (Method::POST, ["customers"]) => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_JSON", "not JSON");
            };
            let (Some(email), Some(name)) = (request["email"].as_str(), request["name"].as_str())
            else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "MISSING",
                    "email and name are required",
                );
            };
            axum::Json(json!({
                "business_id": "bus_fake",
                "created_at": "2026-12-07T12:00:00Z",
                "customer_id": CUSTOMER,
                "email": email,
                "name": name,
                "metadata": request["metadata"].clone(),
                "phone_number": null,
            }))
            .into_response()
        }
        (Method::POST, ["customers", customer, "customer-portal", "session"]) => {
            if *customer != CUSTOMER {
                return error(StatusCode::NOT_FOUND, "NOT_FOUND", "customer not found");
            }
            axum::Json(json!({ "link": format!("https://customer.dodopayments.com/login/{customer}?token=abc") }))
                .into_response()
        }
        (Method::GET, ["subscriptions", id]) => match state.subscriptions.get(*id) {
            Some(json) => axum::Json(json.clone()).into_response(),
            None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "subscription not found"),
        },
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
    }
}

fn checkout_request() -> CheckoutRequest {
    CheckoutRequest {
        product_id: "pdt_pro_monthly".into(),
        quantity: 1,
        customer: CheckoutCustomer::New {
            email: "owner@example.com".into(),
            name: Some("Olive Owner".into()),
        },
        return_url: "http://127.0.0.1:3000/billing/return".into(),
        metadata: BTreeMap::from([("org_id".to_owned(), "org-123".to_owned())]),
    }
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[tokio::test]
async fn checkout_sends_the_documented_request_and_returns_the_session() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let session = fake
        .client()
        .create_checkout(&checkout_request())
        .await
        .unwrap();
    assert_eq!(session.session_id, "cks_0001");
    assert_eq!(
        session.checkout_url,
        "https://test.checkout.dodopayments.com/session/cks_0001"
    );

    let recorded = fake.recorded();
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/checkouts");
    assert_eq!(request.query, None);
    assert_eq!(
        request.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "product_cart": [{ "product_id": "pdt_pro_monthly", "quantity": 1 }],
            "customer": { "email": "owner@example.com", "name": "Olive Owner" },
            "return_url": "http://127.0.0.1:3000/billing/return",
            "metadata": { "org_id": "org-123" }
        })
    );
}

#[tokio::test]
async fn checkout_without_a_name_leaves_it_out() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let request = CheckoutRequest {
        customer: CheckoutCustomer::New {
            email: "owner@example.com".into(),
            name: None,
        },
        metadata: BTreeMap::new(),
        ..checkout_request()
    };
    fake.client().create_checkout(&request).await.unwrap();
    let body: Value = serde_json::from_slice(&fake.recorded()[0].body).unwrap();
    assert_eq!(body["customer"], json!({ "email": "owner@example.com" }));
    assert_eq!(body["metadata"], json!({}));
}

#[tokio::test]
async fn a_customer_is_created_with_the_documented_request_and_checkout_passes_its_id() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let client = fake.client();
    let created = client
        .create_customer(&NewCustomer {
            email: "owner@example.com".into(),
            name: "Acme Video".into(),
            metadata: BTreeMap::from([("tldw_org".to_owned(), "org-123".to_owned())]),
        })
        .await
        .unwrap();
    assert_eq!(created.customer_id, CUSTOMER);
    let request = CheckoutRequest {
        customer: CheckoutCustomer::Existing {
            customer_id: created.customer_id.clone(),
        },
        ..checkout_request()
    };
    client.create_checkout(&request).await.unwrap();

    let recorded = fake.recorded();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (recorded[0].method.clone(), recorded[0].path.as_str()),
        (Method::POST, "/customers")
    );
    let body: Value = serde_json::from_slice(&recorded[0].body).unwrap();
    assert_eq!(
        body,
        json!({ "email": "owner@example.com", "name": "Acme Video", "metadata": { "tldw_org": "org-123" } })
    );
    let body: Value = serde_json::from_slice(&recorded[1].body).unwrap();
    assert_eq!(body["customer"], json!({ "customer_id": CUSTOMER }));

    // An id that could leave its path is refused before anything is sent.
    let request = CheckoutRequest {
        customer: CheckoutCustomer::Existing {
            customer_id: "../cus_x".into(),
        },
        ..checkout_request()
    };
    assert!(matches!(
        client.create_checkout(&request).await,
        Err(DodoError::Invalid(_))
    ));
    assert_eq!(fake.recorded().len(), 2);
}

#[tokio::test]
async fn creating_a_customer_is_not_retried_after_an_ambiguous_500() {
    let fake = FakeDodo::start(Behaviour::FailFirst {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        times: 1,
    })
    .await;
    let result = fake
        .client()
        .create_customer(&NewCustomer {
            email: "owner@example.com".into(),
            name: "Acme".into(),
            metadata: BTreeMap::new(),
        })
        .await;
    assert!(
        matches!(result, Err(DodoError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn portal_link_with_and_without_a_return_url() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let client = fake.client();
    let link = client
        .customer_portal(CUSTOMER, Some("http://127.0.0.1:3000/billing?tab=1&x=y"))
        .await
        .unwrap();
    assert_eq!(
        link,
        format!("https://customer.dodopayments.com/login/{CUSTOMER}?token=abc")
    );
    let link_again = client.customer_portal(CUSTOMER, None).await.unwrap();
    assert_eq!(link_again, link);

    let recorded = fake.recorded();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].method, Method::POST);
    assert_eq!(
        recorded[0].path,
        format!("/customers/{CUSTOMER}/customer-portal/session")
    );
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(recorded[0].query.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        query,
        vec![(
            "return_url".to_owned(),
            "http://127.0.0.1:3000/billing?tab=1&x=y".to_owned()
        )]
    );
    assert!(recorded[0].body.is_empty());
    assert_eq!(recorded[1].query, None);
    assert!(recorded[1].body.is_empty());
}

#[tokio::test]
async fn subscription_is_parsed_ignoring_unknown_fields() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let subscription = fake.client().get_subscription(SUBSCRIPTION).await.unwrap();
    let recorded = fake.recorded();
    assert_eq!(recorded[0].method, Method::GET);
    assert_eq!(recorded[0].path, format!("/subscriptions/{SUBSCRIPTION}"));

    assert_eq!(subscription.subscription_id, SUBSCRIPTION);
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(subscription.product_id, "pdt_pro_monthly");
    assert_eq!(subscription.customer.customer_id, CUSTOMER);
    assert_eq!(subscription.customer.email, "owner@example.com");
    assert_eq!(subscription.customer.name.as_deref(), Some("Olive Owner"));
    assert_eq!(
        subscription.previous_billing_date.to_rfc3339(),
        "2025-09-01T10:15:30.123456+00:00"
    );
    assert_eq!(
        subscription.next_billing_date.to_rfc3339(),
        "2025-10-01T10:15:30.123456+00:00"
    );
    assert!(!subscription.cancel_at_next_billing_date);
    assert_eq!(
        subscription.metadata["org_id"],
        json!("0b5e0cde-0b1c-4b0c-9d35-6ea0b1f0c0de")
    );
    assert_eq!(subscription.metadata["seats"], json!(3));
    assert_eq!(subscription.metadata["trial"], json!(false));
    assert_eq!(subscription.cancelled_at, None);
    assert_eq!(subscription.expires_at, None);
}

#[test]
fn subscription_parses_webhook_data_and_every_status() {
    let mut data = subscription_json();
    data["payload_type"] = json!("Subscription");
    data["status"] = json!("cancelled");
    data["cancel_at_next_billing_date"] = json!(true);
    data["cancelled_at"] = json!("2025-09-15T08:00:00+02:00");
    data["expires_at"] = json!("2025-10-01T10:15:30Z");
    data["metadata"] = Value::Null;
    data["customer"]["name"] = Value::Null;
    let envelope = json!({
        "business_id": "bus_1",
        "type": "subscription.cancelled",
        "timestamp": "2025-09-15T06:00:01Z",
        "data": data,
    });
    let subscription: Subscription = serde_json::from_value(envelope["data"].clone()).unwrap();
    assert_eq!(subscription.status, SubscriptionStatus::Cancelled);
    assert!(subscription.cancel_at_next_billing_date);
    assert_eq!(
        subscription.cancelled_at.unwrap().to_rfc3339(),
        "2025-09-15T06:00:00+00:00"
    );
    assert!(subscription.expires_at.is_some());
    assert!(subscription.metadata.is_empty());
    assert_eq!(subscription.customer.name, None);

    for (raw, status) in [
        ("pending", SubscriptionStatus::Pending),
        ("active", SubscriptionStatus::Active),
        ("on_hold", SubscriptionStatus::OnHold),
        ("cancelled", SubscriptionStatus::Cancelled),
        ("failed", SubscriptionStatus::Failed),
        ("expired", SubscriptionStatus::Expired),
        ("paused", SubscriptionStatus::Paused),
        (
            "frozen_in_2027",
            SubscriptionStatus::Unknown("frozen_in_2027".into()),
        ),
    ] {
        let mut json = subscription_json();
        json["status"] = json!(raw);
        let parsed: Subscription = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.status, status);
        assert_eq!(parsed.status.as_str(), raw);
        // And back again, unchanged.
        assert_eq!(serde_json::to_value(&parsed.status).unwrap(), json!(raw));
    }
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_not_retried() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let client = DodoClient::new(settings_for(fake.base_url.clone(), "sk_test_wrong")).unwrap();
    assert_eq!(
        client.get_subscription(SUBSCRIPTION).await,
        Err(DodoError::Unauthorized)
    );
    assert_eq!(
        client.create_checkout(&checkout_request()).await,
        Err(DodoError::Unauthorized)
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn unknown_objects_are_not_found() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let client = fake.client();
    assert_eq!(
        client.get_subscription("sub_nope").await,
        Err(DodoError::NotFound)
    );
    assert_eq!(
        client.customer_portal("cus_nope", None).await,
        Err(DodoError::NotFound)
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_422_is_invalid_with_dodos_message_and_not_retried() {
    let fake = FakeDodo::start(Behaviour::Status(StatusCode::UNPROCESSABLE_ENTITY)).await;
    assert_eq!(
        fake.client().create_checkout(&checkout_request()).await,
        Err(DodoError::Invalid(
            "product_cart[0].product_id: unknown product".into()
        ))
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_500_then_success_is_retried_for_reads() {
    let fake = FakeDodo::start(Behaviour::FailFirst {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        times: 1,
    })
    .await;
    let subscription = fake.client().get_subscription(SUBSCRIPTION).await.unwrap();
    assert_eq!(subscription.subscription_id, SUBSCRIPTION);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_500_then_success_is_retried_for_the_portal() {
    let fake = FakeDodo::start(Behaviour::FailFirst {
        status: StatusCode::BAD_GATEWAY,
        times: 2,
    })
    .await;
    fake.client().customer_portal(CUSTOMER, None).await.unwrap();
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_bounded_retries() {
    let fake = FakeDodo::start(Behaviour::Status(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let error = fake
        .client()
        .get_subscription(SUBSCRIPTION)
        .await
        .unwrap_err();
    assert!(matches!(error, DodoError::Unavailable(_)), "{error:?}");
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn checkout_is_not_retried_after_an_ambiguous_500() {
    let fake = FakeDodo::start(Behaviour::FailFirst {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        times: 1,
    })
    .await;
    let error = fake
        .client()
        .create_checkout(&checkout_request())
        .await
        .unwrap_err();
    assert!(matches!(error, DodoError::Unavailable(_)), "{error:?}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn checkout_is_retried_after_429_and_503() {
    for status in [
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let fake = FakeDodo::start(Behaviour::FailFirst { status, times: 1 }).await;
        let session = fake
            .client()
            .create_checkout(&checkout_request())
            .await
            .unwrap();
        assert_eq!(session.session_id, "cks_0001");
        assert_eq!(fake.calls(), 2, "{status}");
    }
}

#[tokio::test]
async fn a_persistent_429_is_rate_limited_after_the_bounded_retries() {
    let fake = FakeDodo::start(Behaviour::Status(StatusCode::TOO_MANY_REQUESTS)).await;
    assert_eq!(
        fake.client().get_subscription(SUBSCRIPTION).await,
        Err(DodoError::RateLimited)
    );
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn a_slow_dodo_times_out_as_unavailable_after_bounded_attempts() {
    let fake = FakeDodo::start(Behaviour::Slow(Duration::from_secs(3))).await;
    let client = fake.client();

    let started = Instant::now();
    let error = client.get_subscription(SUBSCRIPTION).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, DodoError::Unavailable(_)), "{error:?}");
    assert_eq!(fake.calls(), 3);
    // Three 300 ms timeouts plus two short backoffs, well under the 3 s delay.
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");

    // A timed-out checkout may have been created: it is not sent again.
    let error = client
        .create_checkout(&checkout_request())
        .await
        .unwrap_err();
    assert!(matches!(error, DodoError::Unavailable(_)), "{error:?}");
    assert_eq!(fake.calls(), 4);
}

#[tokio::test]
async fn garbage_is_a_bad_response() {
    let fake = FakeDodo::start(Behaviour::Garbage).await;
    let client = fake.client();
    let error = client.get_subscription(SUBSCRIPTION).await.unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
    let error = client
        .create_checkout(&checkout_request())
        .await
        .unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn an_oversized_body_is_a_bad_response() {
    let fake = FakeDodo::start(Behaviour::Oversized).await;
    let client = fake.client();
    let error = client.get_subscription(SUBSCRIPTION).await.unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
    let error = client.customer_portal(CUSTOMER, None).await.unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
    assert_eq!(fake.calls(), 2);

    // The same body is fine under a bigger cap.
    let mut settings = fake.settings();
    settings.max_body_bytes = 1024 * 1024;
    let big = DodoClient::new(settings).unwrap();
    assert!(big.get_subscription(SUBSCRIPTION).await.is_ok());
}

#[tokio::test]
async fn links_that_are_not_http_urls_are_refused() {
    let fake = FakeDodo::start(Behaviour::BadLink).await;
    let client = fake.client();
    let error = client
        .create_checkout(&checkout_request())
        .await
        .unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
    let error = client.customer_portal(CUSTOMER, None).await.unwrap_err();
    assert!(matches!(error, DodoError::BadResponse(_)), "{error:?}");
}

#[tokio::test]
async fn ids_that_could_leave_their_path_are_refused_without_a_request() {
    let fake = FakeDodo::start(Behaviour::Normal).await;
    let client = fake.client();
    for id in [
        "",
        "..",
        "../checkouts",
        "sub_1/../x",
        "sub_1?x=1",
        "sub%2F1",
        "sub 1",
    ] {
        assert!(
            matches!(
                client.get_subscription(id).await,
                Err(DodoError::Invalid(_))
            ),
            "{id:?}"
        );
        assert!(
            matches!(
                client.customer_portal(id, None).await,
                Err(DodoError::Invalid(_))
            ),
            "{id:?}"
        );
    }
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_after_retries() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = DodoClient::new(settings_for(
        Url::parse(&format!("http://{addr}")).unwrap(),
        KEY,
    ))
    .unwrap();
    let error = client.get_subscription(SUBSCRIPTION).await.unwrap_err();
    assert!(
        matches!(error, DodoError::Unavailable(ref m) if m.contains("3 attempts")),
        "{error:?}"
    );
    // Nothing reached Dodo, so checkout creation may be retried too.
    let error = client
        .create_checkout(&checkout_request())
        .await
        .unwrap_err();
    assert!(
        matches!(error, DodoError::Unavailable(ref m) if m.contains("3 attempts")),
        "{error:?}"
    );
    assert!(!error.to_string().contains(KEY));
}

#[test]
fn settings_are_off_without_an_api_key() {
    assert!(DodoSettings::from_lookup(lookup(&[])).unwrap().is_none());
    assert!(
        DodoSettings::from_lookup(lookup(&[
            ("DODO_PAYMENTS_API_KEY", "  "),
            ("DODO_PAYMENTS_ENVIRONMENT", "live_mode"),
        ]))
        .unwrap()
        .is_none()
    );
}

#[test]
fn settings_choose_the_base_url_by_environment() {
    let default = DodoSettings::from_lookup(lookup(&[("DODO_PAYMENTS_API_KEY", "sk_x")]))
        .unwrap()
        .unwrap();
    assert_eq!(default.base_url.as_str(), "https://test.dodopayments.com/");
    assert!(default.max_retries > 0 && default.max_body_bytes > 0);
    assert!(!default.timeout.is_zero());

    let test = DodoSettings::from_lookup(lookup(&[
        ("DODO_PAYMENTS_API_KEY", "sk_x"),
        ("DODO_PAYMENTS_ENVIRONMENT", "test_mode"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(test.base_url.as_str(), "https://test.dodopayments.com/");

    let live = DodoSettings::from_lookup(lookup(&[
        ("DODO_PAYMENTS_API_KEY", "sk_x"),
        ("DODO_PAYMENTS_ENVIRONMENT", "live_mode"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(live.base_url.as_str(), "https://live.dodopayments.com/");
    DodoClient::new(live).unwrap();
}

#[test]
fn the_base_url_variable_overrides_the_environment() {
    let settings = DodoSettings::from_lookup(lookup(&[
        ("DODO_PAYMENTS_API_KEY", "sk_x"),
        ("DODO_PAYMENTS_ENVIRONMENT", "live_mode"),
        ("DODO_PAYMENTS_BASE_URL", "http://127.0.0.1:4010/dodo"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(settings.base_url.as_str(), "http://127.0.0.1:4010/dodo");

    for bad in [
        "not a url",
        "ftp://example.com",
        "https://user:pw@example.com",
    ] {
        let error = DodoSettings::from_lookup(lookup(&[
            ("DODO_PAYMENTS_API_KEY", "sk_secret_value"),
            ("DODO_PAYMENTS_BASE_URL", bad),
        ]))
        .unwrap_err();
        assert!(error.contains("DODO_PAYMENTS_BASE_URL"), "{error}");
        assert!(!error.contains("sk_secret_value"), "{error}");
    }
}

#[test]
fn an_invalid_environment_is_an_error_naming_the_variable() {
    let error = DodoSettings::from_lookup(lookup(&[
        ("DODO_PAYMENTS_API_KEY", "sk_secret_value"),
        ("DODO_PAYMENTS_ENVIRONMENT", "production"),
    ]))
    .unwrap_err();
    assert!(error.contains("DODO_PAYMENTS_ENVIRONMENT"), "{error}");
    assert!(error.contains("production"), "{error}");
    assert!(!error.contains("sk_secret_value"), "{error}");
}
