//! Standard Webhooks signature verification for Dodo Payments deliveries.
//!
//! Scheme (see `reference/dodo-payments.md`, "Webhooks"):
//!
//! - headers `webhook-id`, `webhook-timestamp` (integer Unix seconds) and `webhook-signature`;
//! - signed content is `"{id}.{timestamp}.{raw body}"`, always the raw request bytes;
//! - the signature is `HMAC-SHA256(key, content)`, base64 (standard alphabet, padded), where the
//!   key is the base64-decoded part of a `whsec_…` secret;
//! - the signature header is a space-separated list of `version,signature` entries; any valid
//!   `v1` entry passes, unknown versions (such as `v1a`) are ignored;
//! - the timestamp must be within 300 s of now, in both directions.
//!
//! During a secret rotation the verifier holds the current and the previous secret and accepts a
//! signature made with either.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretSlice};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the event id (stable across retries; the idempotency key).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the attempt time in integer Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `version,signature` list.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";
/// Shortest accepted HMAC key, in decoded bytes. Standard Webhooks secrets are 24 to 64 bytes.
const MIN_SECRET_LEN: usize = 16;
/// Longest accepted `webhook-id`.
pub const MAX_ID_LEN: usize = 256;
/// Default clock tolerance, applied in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Base64 with the standard alphabet that accepts the key with or without padding.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A webhook signing key: the decoded bytes of a `whsec_<base64>` secret.
///
/// The bytes are held in a [`SecretSlice`] (zeroed on drop) and never printed.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

/// Why a configured webhook secret was rejected. Never contains secret material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("webhook secret is empty")]
    Empty,
    #[error("webhook secret is not valid base64 (expected `whsec_<base64>`)")]
    InvalidBase64,
    #[error("webhook secret is too short: {len} bytes decoded, at least {min} required")]
    TooShort { len: usize, min: usize },
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` or a bare base64 key. Surrounding whitespace is ignored.
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let value = value.trim();
        let encoded = value.strip_prefix(SECRET_PREFIX).unwrap_or(value);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT_STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::InvalidBase64)?;
        if key.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort {
                len: key.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Self(SecretSlice::from(key)))
    }

    /// A MAC already fed with the signed content `{id}.{timestamp}.{body}`.
    fn mac_for(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(self.0.expose_secret())
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a delivery was rejected. `Display` is a short reason that is safe to return to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("invalid webhook-id")]
    BadId,
    #[error("invalid webhook-timestamp")]
    BadTimestamp,
    #[error("webhook timestamp too old")]
    TooOld,
    #[error("webhook timestamp too far in the future")]
    TooNew,
    #[error("no valid signature")]
    NoValidSignature,
}

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The `webhook-id` header: the event's idempotency key.
    pub id: String,
    /// The `webhook-timestamp` header (attempt time, Unix seconds).
    pub timestamp: i64,
}

/// Verifies Standard Webhooks signatures against the current and, during rotation, the previous
/// secret.
#[derive(Clone)]
pub struct WebhookVerifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier with the default 300 s tolerance.
    pub fn new(current: WebhookSecret, previous: Option<WebhookSecret>) -> Self {
        let mut secrets = vec![current];
        secrets.extend(previous);
        Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The clock tolerance applied in both directions.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies `body` (the raw bytes, never re-serialized) against the `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature` headers at time `now` (Unix seconds).
    /// Returns the verified id and timestamp.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedWebhook, SignatureError> {
        let id = header_str(headers, HEADER_ID)?;
        let timestamp = header_str(headers, HEADER_TIMESTAMP)?;
        let signatures = header_str(headers, HEADER_SIGNATURE)?;

        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(SignatureError::BadId);
        }
        let timestamp = parse_timestamp(timestamp)?;
        self.check_timestamp(timestamp, now)?;

        let macs: Vec<HmacSha256> = self
            .secrets
            .iter()
            .map(|secret| secret.mac_for(id, timestamp, body))
            .collect();

        let valid = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .filter_map(|(_, signature)| decode_signature(signature))
            .any(|tag| {
                // `verify_slice` compares in constant time and rejects a tag of the wrong length.
                macs.iter()
                    .any(|mac| mac.clone().verify_slice(&tag).is_ok())
            });

        if valid {
            Ok(VerifiedWebhook {
                id: id.to_owned(),
                timestamp,
            })
        } else {
            Err(SignatureError::NoValidSignature)
        }
    }

    /// Signs a delivery: returns the `v1,<base64>` entry for the `webhook-signature` header.
    /// Used by tests and the fake Dodo server.
    pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = secret.mac_for(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    fn check_timestamp(&self, timestamp: i64, now: i64) -> Result<(), SignatureError> {
        let tolerance = i128::from(self.tolerance.as_secs());
        let age = i128::from(now) - i128::from(timestamp);
        if age > tolerance {
            Err(SignatureError::TooOld)
        } else if -age > tolerance {
            Err(SignatureError::TooNew)
        } else {
            Ok(())
        }
    }
}

/// A header's value as text; absent → `MissingHeader`, not visible ASCII → `MalformedHeader`.
/// A header sent twice is ambiguous and rejected as malformed.
fn header_str<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(SignatureError::MissingHeader(name))?;
    if values.next().is_some() {
        return Err(SignatureError::MalformedHeader(name));
    }
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureError::MalformedHeader(name))
}

/// Integer Unix seconds: ASCII digits only (no sign, no fraction), within `i64`.
fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::BadTimestamp);
    }
    value.parse().map_err(|_| SignatureError::BadTimestamp)
}

/// Decodes one signature; anything that is not exactly a base64 HMAC-SHA256 tag is `None`.
fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    // A 32-byte tag is 44 base64 characters; refuse to decode anything much larger.
    if signature.is_empty() || signature.len() > 64 {
        return None;
    }
    let tag = LENIENT_STANDARD.decode(signature).ok()?;
    (tag.len() == TAG_LEN).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    const V1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const V1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const V1_TS: i64 = 1_614_265_330;
    const V1_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const V1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const V2_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const V2_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const V2_TS: i64 = 1_649_367_553;
    const V2_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const V2_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    // 32 bytes of 0x01 and 0x02, base64.
    const OTHER_SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const UNRELATED_SECRET: &str = "whsec_AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    fn secret(value: &str) -> WebhookSecret {
        WebhookSecret::parse(value).expect("valid test secret")
    }

    fn verifier(value: &str) -> WebhookVerifier {
        WebhookVerifier::new(secret(value), None)
    }

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_ID, HeaderValue::from_str(id).unwrap());
        h.insert(HEADER_TIMESTAMP, HeaderValue::from_str(ts).unwrap());
        h.insert(HEADER_SIGNATURE, HeaderValue::from_str(sig).unwrap());
        h
    }

    fn v1_headers(sig: &str) -> HeaderMap {
        headers(V1_ID, &V1_TS.to_string(), sig)
    }

    #[test]
    fn vector_1_go_js() {
        let v = verifier(V1_SECRET);
        assert_eq!(
            WebhookVerifier::sign(&secret(V1_SECRET), V1_ID, V1_TS, V1_BODY),
            V1_SIG
        );
        let ok = v.verify(&v1_headers(V1_SIG), V1_BODY, V1_TS).unwrap();
        assert_eq!(
            ok,
            VerifiedWebhook {
                id: V1_ID.into(),
                timestamp: V1_TS
            }
        );
    }

    #[test]
    fn vector_2_rust_crate() {
        let v = verifier(V2_SECRET);
        assert_eq!(
            WebhookVerifier::sign(&secret(V2_SECRET), V2_ID, V2_TS, V2_BODY),
            V2_SIG
        );
        let h = headers(V2_ID, &V2_TS.to_string(), V2_SIG);
        let ok = v.verify(&h, V2_BODY, V2_TS).unwrap();
        assert_eq!(ok.id, V2_ID);
        assert_eq!(ok.timestamp, V2_TS);
    }

    #[test]
    fn bare_base64_secret_is_accepted() {
        let bare = V1_SECRET.strip_prefix("whsec_").unwrap();
        let v = verifier(bare);
        assert!(v.verify(&v1_headers(V1_SIG), V1_BODY, V1_TS).is_ok());
    }

    #[test]
    fn tampered_body_fails() {
        let v = verifier(V1_SECRET);
        let body = br#"{"test": 2432232315}"#;
        assert_eq!(
            v.verify(&v1_headers(V1_SIG), body, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
        // Re-serialized JSON (whitespace removed) is a different body.
        assert_eq!(
            v.verify(&v1_headers(V1_SIG), br#"{"test":2432232314}"#, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn tampered_id_fails() {
        let v = verifier(V1_SECRET);
        let h = headers("msg_p5jXN8AQM9LWM0D4loKWxJel", &V1_TS.to_string(), V1_SIG);
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn tampered_timestamp_fails() {
        let v = verifier(V1_SECRET);
        let h = headers(V1_ID, &(V1_TS + 1).to_string(), V1_SIG);
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn each_missing_header_is_named() {
        let v = verifier(V1_SECRET);
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut h = v1_headers(V1_SIG);
            h.remove(name);
            let err = v.verify(&h, V1_BODY, V1_TS).unwrap_err();
            assert_eq!(err, SignatureError::MissingHeader(name));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn empty_short_garbage_and_unknown_version_signatures_are_rejected() {
        let v = verifier(V1_SECRET);
        let good_b64 = V1_SIG.strip_prefix("v1,").unwrap();
        let truncated = &good_b64[..good_b64.len() - 4];
        let v1a = format!("v1a,{good_b64}");
        let v2 = format!("v2,{good_b64}");
        let truncated_entry = format!("v1,{truncated}");
        let no_comma = good_b64.to_string();
        let doubled = format!("v1,{good_b64}{good_b64}");
        for sig in [
            "v1,",
            "v1,short",
            "v1,!!!garbage",
            "v1,====",
            "v1",
            ",",
            "",
            "   ",
            v1a.as_str(),
            v2.as_str(),
            truncated_entry.as_str(),
            no_comma.as_str(),
            doubled.as_str(),
        ] {
            assert_eq!(
                v.verify(&v1_headers(sig), V1_BODY, V1_TS),
                Err(SignatureError::NoValidSignature),
                "signature {sig:?}"
            );
        }
    }

    #[test]
    fn any_valid_v1_among_several_passes() {
        let v = verifier(V1_SECRET);
        let wrong = WebhookVerifier::sign(&secret(UNRELATED_SECRET), V1_ID, V1_TS, V1_BODY);
        let good_b64 = V1_SIG.strip_prefix("v1,").unwrap();
        let sig = format!("v1,!!!garbage v1a,{good_b64} {wrong} {V1_SIG}");
        assert!(v.verify(&v1_headers(&sig), V1_BODY, V1_TS).is_ok());
        let sig = format!("{wrong} {V1_SIG}");
        assert!(v.verify(&v1_headers(&sig), V1_BODY, V1_TS).is_ok());
        // Only invalid entries → rejected.
        let sig = format!("{wrong} v1,short");
        assert_eq!(
            v.verify(&v1_headers(&sig), V1_BODY, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn timestamp_tolerance_is_300_seconds_both_ways() {
        let v = verifier(V1_SECRET);
        let h = v1_headers(V1_SIG);
        for delta in [-300, -299, 0, 299, 300] {
            assert!(
                v.verify(&h, V1_BODY, V1_TS + delta).is_ok(),
                "delta {delta}"
            );
        }
        // now is 301 s after the timestamp: too old.
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS + 301),
            Err(SignatureError::TooOld)
        );
        // now is 301 s before the timestamp: too far in the future.
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS - 301),
            Err(SignatureError::TooNew)
        );
        assert_eq!(v.verify(&h, V1_BODY, i64::MAX), Err(SignatureError::TooOld));
        assert_eq!(v.verify(&h, V1_BODY, i64::MIN), Err(SignatureError::TooNew));
        assert_eq!(v.tolerance(), Duration::from_secs(300));
    }

    #[test]
    fn timestamps_signed_at_plus_minus_299_and_301() {
        // Signed freshly at ts = now ± delta (the header and signature agree).
        let s = secret(V2_SECRET);
        let v = WebhookVerifier::new(s.clone(), None);
        let now = 1_700_000_000;
        for (delta, expected) in [
            (-301, Err(SignatureError::TooOld)),
            (-299, Ok(())),
            (299, Ok(())),
            (301, Err(SignatureError::TooNew)),
        ] {
            let ts = now + delta;
            let sig = WebhookVerifier::sign(&s, "msg_1", ts, b"{}");
            let h = headers("msg_1", &ts.to_string(), &sig);
            assert_eq!(
                v.verify(&h, b"{}", now).map(|_| ()),
                expected,
                "delta {delta}"
            );
        }
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        let v = verifier(V1_SECRET);
        for ts in [
            "",
            "abc",
            "-1614265330",
            "+1614265330",
            "1614265330.5",
            "1614265330 1",
            "99999999999999999999999",
        ] {
            let mut h = v1_headers(V1_SIG);
            h.insert(HEADER_TIMESTAMP, HeaderValue::from_str(ts).unwrap());
            assert_eq!(
                v.verify(&h, V1_BODY, V1_TS),
                Err(SignatureError::BadTimestamp),
                "timestamp {ts:?}"
            );
        }
    }

    #[test]
    fn bad_ids_are_rejected() {
        let v = verifier(V1_SECRET);
        let long = "m".repeat(MAX_ID_LEN + 1);
        for id in ["", "   ", long.as_str()] {
            let h = headers(id, &V1_TS.to_string(), V1_SIG);
            assert_eq!(
                v.verify(&h, V1_BODY, V1_TS),
                Err(SignatureError::BadId),
                "id {id:?}"
            );
        }
        // Non-visible-ASCII header bytes are malformed, not a panic.
        let mut h = v1_headers(V1_SIG);
        h.insert(HEADER_ID, HeaderValue::from_bytes(b"msg_\xff").unwrap());
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS),
            Err(SignatureError::MalformedHeader(HEADER_ID))
        );
        // A bounded id of maximum length is accepted.
        let id = "m".repeat(MAX_ID_LEN);
        let sig = WebhookVerifier::sign(&secret(V1_SECRET), &id, V1_TS, V1_BODY);
        let h = headers(&id, &V1_TS.to_string(), &sig);
        assert!(v.verify(&h, V1_BODY, V1_TS).is_ok());
    }

    #[test]
    fn duplicated_header_is_rejected() {
        let v = verifier(V1_SECRET);
        let mut h = v1_headers(V1_SIG);
        h.append(HEADER_ID, HeaderValue::from_static("msg_other"));
        assert_eq!(
            v.verify(&h, V1_BODY, V1_TS),
            Err(SignatureError::MalformedHeader(HEADER_ID))
        );
    }

    #[test]
    fn rotation_accepts_previous_secret_only() {
        let current = secret(OTHER_SECRET);
        let previous = secret(V1_SECRET);
        let v = WebhookVerifier::new(current.clone(), Some(previous));
        // Signed with the previous secret.
        assert!(v.verify(&v1_headers(V1_SIG), V1_BODY, V1_TS).is_ok());
        // Signed with the current secret.
        let sig = WebhookVerifier::sign(&current, V1_ID, V1_TS, V1_BODY);
        assert!(v.verify(&v1_headers(&sig), V1_BODY, V1_TS).is_ok());
        // Signed with an unrelated secret.
        let sig = WebhookVerifier::sign(&secret(UNRELATED_SECRET), V1_ID, V1_TS, V1_BODY);
        assert_eq!(
            v.verify(&v1_headers(&sig), V1_BODY, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
        // Without the previous secret, the old signature no longer passes.
        let v = WebhookVerifier::new(current, None);
        assert_eq!(
            v.verify(&v1_headers(V1_SIG), V1_BODY, V1_TS),
            Err(SignatureError::NoValidSignature)
        );
    }

    #[test]
    fn secret_parse_errors() {
        assert_eq!(WebhookSecret::parse("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            WebhookSecret::parse("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            SecretError::InvalidBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_a").unwrap_err(),
            SecretError::InvalidBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2VjcmV0").unwrap_err(),
            SecretError::TooShort { len: 6, min: 16 }
        );
        // Padding optional, surrounding whitespace ignored.
        assert!(
            WebhookSecret::parse(" whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n").is_ok()
        );
        let msg = WebhookSecret::parse("whsec_not base64!")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("base64"), "{msg}");
        assert!(!msg.contains("not base64!"), "{msg}");
    }

    #[test]
    fn debug_does_not_leak() {
        let s = secret(V1_SECRET);
        let raw = V1_SECRET.strip_prefix("whsec_").unwrap();
        let key_bytes = STANDARD.decode(raw).unwrap();
        for text in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", WebhookVerifier::new(s.clone(), Some(s.clone()))),
        ] {
            assert!(!text.contains(raw), "{text}");
            assert!(!text.contains(&format!("{key_bytes:?}")), "{text}");
            assert!(!text.contains(&format!("{:?}", &key_bytes[..4])), "{text}");
        }
        assert!(format!("{s:?}").contains("[REDACTED]"));
    }

    #[test]
    fn error_messages_are_short_and_public() {
        for err in [
            SignatureError::MissingHeader(HEADER_SIGNATURE),
            SignatureError::MalformedHeader(HEADER_ID),
            SignatureError::BadId,
            SignatureError::BadTimestamp,
            SignatureError::TooOld,
            SignatureError::TooNew,
            SignatureError::NoValidSignature,
        ] {
            let msg = err.to_string();
            assert!(!msg.is_empty() && msg.len() < 64, "{msg}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn sign_verify_round_trip_and_any_byte_change_fails(
            id in "[A-Za-z0-9_.-]{1,64}",
            ts in 0i64..=4_102_444_800,
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<proptest::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let s = secret(V2_SECRET);
            let v = WebhookVerifier::new(s.clone(), None);
            let sig = WebhookVerifier::sign(&s, &id, ts, &body);
            let h = headers(&id, &ts.to_string(), &sig);
            let ok = v.verify(&h, &body, ts).unwrap();
            prop_assert_eq!(ok.id, id.clone());
            prop_assert_eq!(ok.timestamp, ts);

            let mut tampered = body.clone();
            let i = index.index(tampered.len());
            tampered[i] ^= flip;
            prop_assert_eq!(
                v.verify(&h, &tampered, ts),
                Err(SignatureError::NoValidSignature)
            );
        }

        #[test]
        fn arbitrary_signature_headers_never_panic_or_pass(sig in "[ -~]{0,200}") {
            let v = verifier(V1_SECRET);
            if let Ok(value) = HeaderValue::from_str(&sig) {
                let mut h = v1_headers(V1_SIG);
                h.insert(HEADER_SIGNATURE, value);
                prop_assert_eq!(
                    v.verify(&h, V1_BODY, V1_TS),
                    Err(SignatureError::NoValidSignature)
                );
            }
        }
    }
}
