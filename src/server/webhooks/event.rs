//! A Dodo webhook's body, parsed once: the envelope (type, event time, data)
//! and the object it carries.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::server::clients::dodo::{Dispute, Payment, Refund, Subscription};

/// The metadata key of our checkout reference: we put it on every checkout
/// session, and Dodo copies it to the subscription and its payments.
pub const CHECKOUT_REF_KEY: &str = "tldw_checkout";

/// `{"business_id", "type", "timestamp", "data": {...}}`
#[derive(Clone, Debug)]
pub struct Envelope {
    pub event_type: String,
    /// When the event happened (not when it was delivered): orders effects.
    pub occurred_at: DateTime<Utc>,
    pub object: EventObject,
    /// The whole body, for the ledger.
    pub payload: serde_json::Value,
}

/// What the event is about.
#[derive(Clone, Debug)]
pub enum EventObject {
    Subscription(Box<Subscription>),
    /// A `subscription.*` event whose data we could not read in full (a new
    /// shape?): its current state must be fetched from Dodo.
    SubscriptionToFetch {
        subscription_id: String,
    },
    Payment(Box<Payment>),
    /// `refund.*`: money given back for one of the org's payments.
    Refund(Box<Refund>),
    /// `dispute.*`: a chargeback on one of the org's payments.
    Dispute(Box<Dispute>),
    /// Any other event type (payouts, licence keys, …), or a known type
    /// whose data we cannot read: recorded and acknowledged, nothing else.
    Other {
        unreadable: bool,
    },
}

/// Why a body is not a webhook envelope (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct MalformedEvent(pub String);

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: DateTime<Utc>,
    data: serde_json::Map<String, serde_json::Value>,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Envelope, MalformedEvent> {
        let payload: serde_json::Value = serde_json::from_slice(body)
            .map_err(|error| MalformedEvent(format!("the body is not JSON: {error}")))?;
        let raw: RawEnvelope = serde_json::from_value(payload.clone()).map_err(|error| {
            MalformedEvent(format!(
                "not a webhook envelope (type, timestamp, data): {error}"
            ))
        })?;
        if raw.event_type.is_empty() || raw.event_type.len() > 128 {
            return Err(MalformedEvent("the event type is empty or too long".into()));
        }
        let data = serde_json::Value::Object(raw.data);
        let object = if raw.event_type.starts_with("subscription.") {
            match serde_json::from_value::<Subscription>(data.clone()) {
                Ok(subscription) => EventObject::Subscription(Box::new(subscription)),
                Err(error) => match data.get("subscription_id").and_then(|v| v.as_str()) {
                    Some(id) => {
                        tracing::warn!(%error, subscription_id = id, "subscription event data unreadable; will fetch the subscription");
                        EventObject::SubscriptionToFetch {
                            subscription_id: id.to_owned(),
                        }
                    }
                    None => EventObject::Other { unreadable: true },
                },
            }
        } else if raw.event_type.starts_with("payment.") {
            match serde_json::from_value::<Payment>(data) {
                Ok(payment) => EventObject::Payment(Box::new(payment)),
                Err(error) => {
                    tracing::warn!(%error, "payment event data unreadable");
                    EventObject::Other { unreadable: true }
                }
            }
        } else if raw.event_type.starts_with("refund.") {
            match serde_json::from_value::<Refund>(data) {
                Ok(refund) => EventObject::Refund(Box::new(refund)),
                Err(error) => {
                    tracing::warn!(%error, "refund event data unreadable");
                    EventObject::Other { unreadable: true }
                }
            }
        } else if raw.event_type.starts_with("dispute.") {
            match serde_json::from_value::<Dispute>(data) {
                Ok(dispute) => EventObject::Dispute(Box::new(dispute)),
                Err(error) => {
                    tracing::warn!(%error, "dispute event data unreadable");
                    EventObject::Other { unreadable: true }
                }
            }
        } else {
            EventObject::Other { unreadable: false }
        };
        Ok(Envelope {
            event_type: raw.event_type,
            occurred_at: raw.timestamp,
            object,
            payload,
        })
    }
}

/// The ids an event offers for finding its org. Each is only a key into
/// what we stored; none is trusted on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgKeys {
    pub subscription_id: Option<String>,
    pub checkout_ref: Option<Uuid>,
    pub checkout_session_id: Option<String>,
    pub customer_id: Option<String>,
    /// A refund's or dispute's payment, found in the org's payment history.
    pub payment_id: Option<String>,
}

fn checkout_ref(metadata: &std::collections::BTreeMap<String, serde_json::Value>) -> Option<Uuid> {
    metadata
        .get(CHECKOUT_REF_KEY)
        .and_then(|v| v.as_str())
        .and_then(|v| Uuid::parse_str(v).ok())
}

impl OrgKeys {
    pub fn of_subscription(subscription: &Subscription) -> OrgKeys {
        OrgKeys {
            subscription_id: Some(subscription.subscription_id.clone()),
            checkout_ref: checkout_ref(&subscription.metadata),
            checkout_session_id: None,
            customer_id: Some(subscription.customer.customer_id.clone()),
            payment_id: None,
        }
    }

    pub fn of_payment(payment: &Payment) -> OrgKeys {
        OrgKeys {
            subscription_id: payment.subscription_id.clone(),
            checkout_ref: checkout_ref(&payment.metadata),
            checkout_session_id: payment.checkout_session_id.clone(),
            customer_id: payment.customer.as_ref().map(|c| c.customer_id.clone()),
            payment_id: None,
        }
    }

    pub fn of_refund(refund: &Refund) -> OrgKeys {
        OrgKeys {
            customer_id: refund.customer.as_ref().map(|c| c.customer_id.clone()),
            payment_id: Some(refund.payment_id.clone()),
            ..OrgKeys::default()
        }
    }

    pub fn of_dispute(dispute: &Dispute) -> OrgKeys {
        OrgKeys {
            customer_id: dispute.customer.as_ref().map(|c| c.customer_id.clone()),
            payment_id: Some(dispute.payment_id.clone()),
            ..OrgKeys::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription_data() -> serde_json::Value {
        serde_json::json!({
            "payload_type": "Subscription",
            "subscription_id": "sub_1",
            "status": "active",
            "product_id": "pdt_pro",
            "quantity": 1,
            "customer": {"customer_id": "cus_1", "email": "a@example.com", "name": "A"},
            "metadata": {"tldw_checkout": "8f7a4c1e-6f43-4a8e-9a0b-0c6f8b0f3a11"},
            "previous_billing_date": "2026-11-01T00:00:00Z",
            "next_billing_date": "2026-12-01T00:00:00Z",
            "cancel_at_next_billing_date": false
        })
    }

    fn body(event_type: &str, data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "business_id": "bus_1",
            "type": event_type,
            "timestamp": "2026-11-30T12:00:00.123Z",
            "data": data,
        }))
        .unwrap()
    }

    #[test]
    fn subscription_events_carry_their_object_and_keys() {
        let event = Envelope::parse(&body("subscription.active", subscription_data())).unwrap();
        let EventObject::Subscription(subscription) = &event.object else {
            panic!("expected a subscription, got {:?}", event.object);
        };
        let keys = OrgKeys::of_subscription(subscription);
        assert_eq!(keys.subscription_id.as_deref(), Some("sub_1"));
        assert_eq!(keys.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(
            keys.checkout_ref.map(|u| u.to_string()).as_deref(),
            Some("8f7a4c1e-6f43-4a8e-9a0b-0c6f8b0f3a11")
        );
        assert_eq!(event.occurred_at.timestamp_subsec_millis(), 123);
    }

    #[test]
    fn an_unreadable_subscription_is_fetched_and_unknown_types_pass() {
        let event = Envelope::parse(&body(
            "subscription.updated",
            serde_json::json!({"subscription_id": "sub_9", "status": 7}),
        ))
        .unwrap();
        assert!(matches!(
            event.object,
            EventObject::SubscriptionToFetch { ref subscription_id } if subscription_id == "sub_9"
        ));
        let event = Envelope::parse(&body(
            "refund.succeeded",
            serde_json::json!({"refund_id": "ref_1", "payment_id": "pay_1", "is_partial": false}),
        ))
        .unwrap();
        let EventObject::Refund(refund) = &event.object else {
            panic!("expected a refund, got {:?}", event.object);
        };
        assert_eq!(
            OrgKeys::of_refund(refund).payment_id.as_deref(),
            Some("pay_1")
        );
        let event = Envelope::parse(&body(
            "dispute.lost",
            serde_json::json!({"dispute_id": "dsp_1", "payment_id": "pay_2", "dispute_status": "dispute_lost", "amount": "12.00"}),
        ))
        .unwrap();
        assert!(matches!(event.object, EventObject::Dispute(_)));
        let event = Envelope::parse(&body("payout.success", serde_json::json!({}))).unwrap();
        assert!(matches!(
            event.object,
            EventObject::Other { unreadable: false }
        ));
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_malformed() {
        for bad in [
            &b"not json"[..],
            br#"{"type":"payment.succeeded"}"#,
            br#"{"type":"x","timestamp":"yesterday","data":{}}"#,
            br#"{"type":"x","timestamp":"2026-11-30T12:00:00Z","data":[]}"#,
            br#"[]"#,
        ] {
            assert!(
                Envelope::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
