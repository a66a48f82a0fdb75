//! A Clerk webhook's body (delivered by Svix), parsed once: the envelope
//! (`type`, `timestamp` in milliseconds, `data`) and the change we act on.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    event::MalformedEvent,
    signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP},
};

/// Svix signs exactly as Standard Webhooks does, under other header names.
const SVIX_HEADERS: [(&str, &str); 3] = [
    ("svix-id", HEADER_ID),
    ("svix-timestamp", HEADER_TIMESTAMP),
    ("svix-signature", HEADER_SIGNATURE),
];

/// The `svix-*` headers under their Standard Webhooks names, as Clerk's own
/// SDK does before verifying; nothing else is carried over, so a
/// `webhook-*` header sent alongside cannot stand in for a missing one.
pub fn standard_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (svix, standard) in SVIX_HEADERS {
        for value in headers.get_all(svix) {
            out.append(HeaderName::from_static(standard), HeaderValue::clone(value));
        }
    }
    out
}

#[derive(Clone, Debug)]
pub struct ClerkEvent {
    pub event_type: String,
    /// When the event happened (Clerk's clock): orders the effects.
    pub occurred_at: DateTime<Utc>,
    pub change: ClerkChange,
    /// The whole body, for the ledger.
    pub payload: serde_json::Value,
}

/// What the event asks of us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkChange {
    /// `user.deleted`: the account loses every membership and may not
    /// come back.
    UserDeleted { user_id: String },
    /// `organizationMembership.deleted`
    MembershipDeleted { org_id: String, user_id: String },
    /// `organizationMembership.updated`: `role` as Clerk spells it (`org:admin`).
    MembershipUpdated {
        org_id: String,
        user_id: String,
        role: String,
    },
    /// Any other type, or one of ours whose data we cannot read: recorded
    /// and acknowledged, nothing else.
    Other { unreadable: bool },
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    /// Milliseconds since the epoch.
    timestamp: i64,
    data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Deleted {
    id: String,
}

#[derive(Deserialize)]
struct Membership {
    organization: Organization,
    public_user_data: PublicUserData,
    role: Option<String>,
}

#[derive(Deserialize)]
struct Organization {
    id: String,
}

#[derive(Deserialize)]
struct PublicUserData {
    user_id: String,
}

impl ClerkEvent {
    pub fn parse(body: &[u8]) -> Result<ClerkEvent, MalformedEvent> {
        let payload: serde_json::Value = serde_json::from_slice(body)
            .map_err(|error| MalformedEvent(format!("the body is not JSON: {error}")))?;
        let raw: RawEnvelope = serde_json::from_value(payload.clone()).map_err(|error| {
            MalformedEvent(format!(
                "not a Clerk event envelope (type, timestamp, data): {error}"
            ))
        })?;
        if raw.event_type.is_empty() || raw.event_type.len() > 128 {
            return Err(MalformedEvent("the event type is empty or too long".into()));
        }
        let occurred_at = DateTime::from_timestamp_millis(raw.timestamp)
            .filter(|_| raw.timestamp > 0)
            .ok_or_else(|| MalformedEvent("the timestamp is out of range".into()))?;
        let data = serde_json::Value::Object(raw.data);
        let change = match raw.event_type.as_str() {
            "user.deleted" => match serde_json::from_value::<Deleted>(data) {
                Ok(deleted) if valid_id(&deleted.id) => ClerkChange::UserDeleted {
                    user_id: deleted.id,
                },
                _ => ClerkChange::Other { unreadable: true },
            },
            kind @ ("organizationMembership.deleted" | "organizationMembership.updated") => {
                match serde_json::from_value::<Membership>(data) {
                    Ok(m)
                        if valid_id(&m.organization.id)
                            && valid_id(&m.public_user_data.user_id) =>
                    {
                        if kind.ends_with("deleted") {
                            ClerkChange::MembershipDeleted {
                                org_id: m.organization.id,
                                user_id: m.public_user_data.user_id,
                            }
                        } else {
                            match m.role {
                                Some(role) if !role.is_empty() => ClerkChange::MembershipUpdated {
                                    org_id: m.organization.id,
                                    user_id: m.public_user_data.user_id,
                                    role,
                                },
                                _ => ClerkChange::Other { unreadable: true },
                            }
                        }
                    }
                    _ => ClerkChange::Other { unreadable: true },
                }
            }
            _ => ClerkChange::Other { unreadable: false },
        };
        Ok(ClerkEvent {
            event_type: raw.event_type,
            occurred_at,
            change,
            payload,
        })
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(event_type: &str, data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "data": data,
            "object": "event",
            "type": event_type,
            "timestamp": 1_654_012_591_835_i64,
            "instance_id": "ins_123",
        }))
        .unwrap()
    }

    fn membership(role: &str) -> serde_json::Value {
        serde_json::json!({
            "id": "orgmem_1",
            "object": "organization_membership",
            "role": role,
            "permissions": ["org:sys_memberships:read"],
            "organization": {"id": "org_1", "name": "Acme", "slug": "acme"},
            "public_user_data": {"user_id": "user_1", "identifier": "a@example.com"},
            "created_at": 1_654_012_591_000_i64,
            "updated_at": 1_654_012_591_835_i64,
        })
    }

    #[test]
    fn the_three_changes_we_act_on() {
        let deleted = ClerkEvent::parse(&body(
            "user.deleted",
            serde_json::json!({"id": "user_1", "object": "user", "deleted": true}),
        ))
        .unwrap();
        assert_eq!(
            deleted.change,
            ClerkChange::UserDeleted {
                user_id: "user_1".into()
            }
        );
        assert_eq!(deleted.occurred_at.timestamp_millis(), 1_654_012_591_835);
        let updated = ClerkEvent::parse(&body(
            "organizationMembership.updated",
            membership("org:admin"),
        ))
        .unwrap();
        assert_eq!(
            updated.change,
            ClerkChange::MembershipUpdated {
                org_id: "org_1".into(),
                user_id: "user_1".into(),
                role: "org:admin".into()
            }
        );
        let removed = ClerkEvent::parse(&body(
            "organizationMembership.deleted",
            membership("org:member"),
        ))
        .unwrap();
        assert_eq!(
            removed.change,
            ClerkChange::MembershipDeleted {
                org_id: "org_1".into(),
                user_id: "user_1".into()
            }
        );
    }

    #[test]
    fn other_types_pass_and_unreadable_data_is_marked() {
        let created = ClerkEvent::parse(&body("user.created", serde_json::json!({}))).unwrap();
        assert_eq!(created.change, ClerkChange::Other { unreadable: false });
        let odd = ClerkEvent::parse(&body(
            "organizationMembership.deleted",
            serde_json::json!({"id": "orgmem_1", "deleted": true}),
        ))
        .unwrap();
        assert_eq!(odd.change, ClerkChange::Other { unreadable: true });
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_malformed() {
        for bad in [
            &b"not json"[..],
            br#"{"type":"user.deleted","data":{}}"#,
            br#"{"type":"user.deleted","timestamp":"yesterday","data":{}}"#,
            br#"{"type":"x","timestamp":1,"data":[]}"#,
            br#"{"type":"","timestamp":1,"data":{}}"#,
        ] {
            assert!(
                ClerkEvent::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn svix_headers_become_standard_ones_and_nothing_else_does() {
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", HeaderValue::from_static("msg_1"));
        headers.insert("svix-timestamp", HeaderValue::from_static("1"));
        headers.insert("webhook-signature", HeaderValue::from_static("v1,x"));
        let out = standard_headers(&headers);
        assert_eq!(out.get(HEADER_ID).unwrap(), "msg_1");
        assert_eq!(out.get(HEADER_TIMESTAMP).unwrap(), "1");
        assert!(out.get(HEADER_SIGNATURE).is_none());
    }
}
