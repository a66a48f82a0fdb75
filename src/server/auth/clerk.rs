//! Verifies Clerk session tokens: short-lived RS256 JWTs signed with the
//! instance's keys (see reference/clerk.md).
//!
//! Keys come from the instance's JWKS, cached by `kid`, or from a pinned PEM
//! key (`CLERK_JWT_KEY`), in which case no request ever leaves the process.
//!
//! A browser sends the same token with every request of its 60-second life,
//! so a token that verified is remembered (by its SHA-256, for up to a
//! minute): the RSA check is not repeated, while `exp` and the presence of
//! its signing key are still checked on every use.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use sha2::Digest as _;

use crate::server::config::ClerkSettings;

/// Clock skew allowed on `exp`, `nbf` and `iat`. Clerk's own SDK allows 5 s;
/// its tokens live only 60 s, so a larger allowance would noticeably stretch
/// the life of a stolen token.
const LEEWAY_SECS: u64 = 5;
/// Session tokens travel in a 4 KB cookie; anything far larger is not one,
/// and is refused before we spend time decoding it.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// A JWKS fetch happens while a user's request waits for it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A real JWKS is a few hundred bytes; the cap keeps a misbehaving endpoint
/// from filling memory.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Keys are re-read this often (as Clerk's SDK does), so a key that Clerk
/// withdraws stops being accepted here too.
const KEYS_TTL: Duration = Duration::from_secs(5 * 60);
/// After a fetch caused by an unknown `kid`, or after a failed fetch, we wait
/// this long before asking again, so forged tokens or an outage cannot turn
/// our traffic into a flood of requests to Clerk.
const REFETCH_COOLDOWN: Duration = Duration::from_secs(10);

/// Checks Clerk session tokens. Cheap to clone: clones share one key cache.
#[derive(Clone)]
pub struct ClerkVerifier {
    inner: Arc<Inner>,
}

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClerkSession {
    /// `sub`: the Clerk user id (`user_…`).
    pub user_id: String,
    /// `sid`: the Clerk session id (`sess_…`).
    pub session_id: String,
    /// The organization active in that session, if any.
    pub org: Option<ClerkOrg>,
    /// `iat`: when Clerk stated all this. A webhook newer than that (a
    /// removal, a demotion) outranks the token.
    pub issued_at: Option<i64>,
    /// An `email` claim, present only when the instance's session token is
    /// customized to carry one (`{{user.primary_email_address}}`); otherwise
    /// the email comes from the Backend API.
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClerkOrg {
    /// `org_…`
    pub id: String,
    pub slug: Option<String>,
    /// Without the `org:` prefix, e.g. `admin`.
    pub role: Option<String>,
}

/// Why a token was refused. The messages are safe to show to the client and
/// never include the token.
#[derive(Debug, thiserror::Error)]
pub enum ClerkError {
    #[error("malformed session token")]
    Malformed,
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token signature")]
    BadSignature,
    #[error("session token expired")]
    Expired,
    #[error("session token not yet valid")]
    NotYetValid,
    #[error("session token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("session token issuer not accepted")]
    WrongIssuer,
    #[error("session token issued for another site")]
    WrongAuthorizedParty,
    /// Session tokens carry no `aud`; one that does was minted for something else.
    #[error("session token audience not accepted")]
    UnexpectedAudience,
    /// The JWKS could not be fetched: our problem (or Clerk's), not the client's.
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

struct Inner {
    issuer: String,
    /// Origins with trailing slashes trimmed.
    authorized_parties: Vec<String>,
    validation: Validation,
    keys: KeySource,
    /// SHA-256 of a verified token → who it speaks for, its `exp`, and the
    /// key that verified it.
    verified: moka::sync::Cache<Vec<u8>, (ClerkSession, f64, Arc<DecodingKey>)>,
}

enum KeySource {
    /// `CLERK_JWT_KEY`: one key for every token.
    Pinned(Arc<DecodingKey>),
    Jwks(Box<JwksCache>),
}

impl ClerkVerifier {
    /// Parses the pinned key, if any, so a bad `CLERK_JWT_KEY` stops start-up
    /// rather than the first sign-in.
    pub fn new(settings: ClerkSettings) -> anyhow::Result<ClerkVerifier> {
        anyhow::ensure!(!settings.issuer.is_empty(), "the Clerk issuer is empty");
        let authorized_parties: Vec<String> = settings
            .authorized_parties
            .iter()
            .map(|party| trim_origin(party.trim()).to_owned())
            .filter(|party| !party.is_empty())
            .collect();
        anyhow::ensure!(
            !authorized_parties.is_empty(),
            "no authorized parties are configured, so every Clerk token would be refused"
        );
        let keys = match &settings.jwt_key_pem {
            Some(pem) => KeySource::Pinned(Arc::new(parse_pem_key(pem.expose_secret())?)),
            None => KeySource::Jwks(Box::new(JwksCache::new(settings.jwks_url)?)),
        };
        Ok(ClerkVerifier {
            inner: Arc::new(Inner {
                issuer: settings.issuer,
                authorized_parties,
                validation: validation(),
                keys,
                // Kept as long as a link (a session token lives 60 s): every
                // use re-checks `exp` and the signing key anyway.
                verified: moka::sync::Cache::builder()
                    .max_capacity(super::cache::CAPACITY)
                    .time_to_live(super::cache::CLERK_TTL)
                    .build(),
            }),
        })
    }

    /// Checks the signature first, then the claims, and returns who the
    /// token speaks for.
    pub async fn verify(&self, token: &str) -> Result<ClerkSession, ClerkError> {
        let header = peek_header(token)?;
        // The key is looked up every time (in memory, unless the key set is
        // stale), so a key Clerk withdrew stops its tokens at once.
        let key = self.key_for(&header).await?;
        let digest = sha2::Sha256::digest(token.as_bytes()).to_vec();
        if let Some((session, exp, verified_with)) = self.inner.verified.get(&digest)
            && Arc::ptr_eq(&key, &verified_with)
        {
            if exp + LEEWAY_SECS as f64 > jsonwebtoken::get_current_timestamp() as f64 {
                return Ok(session);
            }
            self.inner.verified.invalidate(&digest);
            return Err(ClerkError::Expired);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map_err(from_jwt_error)?
            .claims;
        let exp = claims.exp;
        let session = self.session_from(claims)?;
        if let Some(exp) = exp {
            self.inner
                .verified
                .insert(digest, (session.clone(), exp, key));
        }
        Ok(session)
    }

    async fn key_for(&self, header: &PeekedHeader) -> Result<Arc<DecodingKey>, ClerkError> {
        match &self.inner.keys {
            KeySource::Pinned(key) => Ok(key.clone()),
            KeySource::Jwks(jwks) => {
                // Clerk always names its key; without a name there is nothing to look up.
                let kid = header.kid.as_deref().ok_or(ClerkError::UnknownKey)?;
                jwks.key(kid).await
            }
        }
    }

    fn session_from(&self, claims: Claims) -> Result<ClerkSession, ClerkError> {
        check_issued_at(claims.iat)?;
        self.check_issuer(claims.iss.as_deref())?;
        self.check_authorized_party(claims.azp.as_deref())?;
        let org = claims.org();
        Ok(ClerkSession {
            user_id: required(claims.sub, "sub")?,
            session_id: required(claims.sid, "sid")?,
            org,
            issued_at: claims.iat.map(|iat| iat as i64),
            email: claims.email.filter(|email| !email.is_empty()),
        })
    }

    fn check_issuer(&self, iss: Option<&str>) -> Result<(), ClerkError> {
        match iss {
            None => Err(ClerkError::MissingClaim("iss")),
            Some(iss) if iss == self.inner.issuer => Ok(()),
            Some(_) => Err(ClerkError::WrongIssuer),
        }
    }

    /// Stops a token minted for another site on the same Clerk instance
    /// from being replayed here.
    fn check_authorized_party(&self, azp: Option<&str>) -> Result<(), ClerkError> {
        let azp = azp
            .map(trim_origin)
            .filter(|azp| !azp.is_empty())
            .ok_or(ClerkError::MissingClaim("azp"))?;
        if self
            .inner
            .authorized_parties
            .iter()
            .any(|party| party == azp)
        {
            Ok(())
        } else {
            Err(ClerkError::WrongAuthorizedParty)
        }
    }
}

impl fmt::Debug for ClerkVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.inner.keys {
            KeySource::Pinned(_) => "pinned PEM key",
            KeySource::Jwks(jwks) => jwks.url.as_str(),
        };
        f.debug_struct("ClerkVerifier")
            .field("issuer", &self.inner.issuer)
            .field("authorized_parties", &self.inner.authorized_parties)
            .field("keys", &keys)
            .finish()
    }
}

/// The algorithm is fixed here, never read from the token: that is what
/// defeats `alg: none` and HS256-with-the-public-key forgeries.
fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    validation
}

/// Env files often hold the PEM on one line with literal `\n`s.
fn parse_pem_key(pem: &str) -> anyhow::Result<DecodingKey> {
    let pem = pem.trim().replace("\\n", "\n");
    DecodingKey::from_rsa_pem(pem.as_bytes())
        .context("the Clerk JWT key is not an RSA public key in PEM form")
}

fn trim_origin(origin: &str) -> &str {
    origin.trim_end_matches('/')
}

fn required(value: Option<String>, claim: &'static str) -> Result<String, ClerkError> {
    value
        .filter(|value| !value.is_empty())
        .ok_or(ClerkError::MissingClaim(claim))
}

/// jsonwebtoken ignores `iat`; Clerk's SDK refuses tokens issued in the future.
fn check_issued_at(iat: Option<f64>) -> Result<(), ClerkError> {
    let latest = (jsonwebtoken::get_current_timestamp() + LEEWAY_SECS) as f64;
    match iat {
        Some(iat) if iat > latest => Err(ClerkError::NotYetValid),
        _ => Ok(()),
    }
}

/// The part of the header that picks the key. Parsed by hand because the
/// algorithm must be judged before anything else, including names such as
/// `none` that jsonwebtoken's `Header` cannot even represent.
/// `jsonwebtoken::decode` parses the whole header again afterwards.
#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

fn peek_header(token: &str) -> Result<PeekedHeader, ClerkError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ClerkError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClerkError::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| ClerkError::Malformed)?;
    let header: PeekedHeader =
        serde_json::from_slice(&header).map_err(|_| ClerkError::Malformed)?;
    if header.alg != "RS256" {
        return Err(ClerkError::UnsupportedAlgorithm);
    }
    if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
        return Err(ClerkError::Malformed);
    }
    Ok(header)
}

fn from_jwt_error(error: jsonwebtoken::errors::Error) -> ClerkError {
    match error.kind() {
        ErrorKind::InvalidSignature => ClerkError::BadSignature,
        ErrorKind::ExpiredSignature => ClerkError::Expired,
        ErrorKind::ImmatureSignature => ClerkError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => ClerkError::MissingClaim("exp"),
        ErrorKind::InvalidAudience => ClerkError::UnexpectedAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => ClerkError::UnsupportedAlgorithm,
        // A published key that is not a usable RSA key verifies nothing.
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Signing(_)
        | ErrorKind::Provider(_) => ClerkError::BadSignature,
        _ => ClerkError::Malformed,
    }
}

/// Typed as `Option<String>` so a claim of the wrong JSON type (an `iss`
/// array, a numeric `sub`) fails parsing instead of slipping past a check.
#[derive(Deserialize)]
struct Claims {
    /// Checked by `jsonwebtoken` on decoding; kept to re-check a remembered token.
    exp: Option<f64>,
    iss: Option<String>,
    sub: Option<String>,
    sid: Option<String>,
    azp: Option<String>,
    iat: Option<f64>,
    /// Not a standard Clerk claim: only a customized session token has it.
    email: Option<String>,
    /// Token version: 2 for the current format, absent in v1.
    v: Option<u64>,
    /// v2's compact organization claim.
    o: Option<CompactOrg>,
    org_id: Option<String>,
    org_slug: Option<String>,
    /// v1 spells roles with a prefix: `org:admin`.
    org_role: Option<String>,
}

#[derive(Deserialize)]
struct CompactOrg {
    id: String,
    slg: Option<String>,
    rol: Option<String>,
}

impl Claims {
    /// Versions after 2 are read like 2: a newer format most likely keeps
    /// `o`, and if it does not, parsing fails loudly rather than silently
    /// dropping the user's organization.
    fn org(&self) -> Option<ClerkOrg> {
        if self.v.is_some_and(|v| v >= 2) {
            let o = self.o.as_ref()?;
            org(&o.id, o.slg.as_deref(), o.rol.as_deref())
        } else {
            org(
                self.org_id.as_deref()?,
                self.org_slug.as_deref(),
                self.org_role.as_deref(),
            )
        }
    }
}

fn org(id: &str, slug: Option<&str>, role: Option<&str>) -> Option<ClerkOrg> {
    let present = |value: &&str| !value.is_empty();
    Some(ClerkOrg {
        id: Some(id).filter(present)?.to_owned(),
        slug: slug.filter(present).map(str::to_owned),
        role: role
            .map(|role| role.strip_prefix("org:").unwrap_or(role))
            .filter(present)
            .map(str::to_owned),
    })
}

/// Clerk's published keys, fetched lazily and kept by `kid`.
struct JwksCache {
    url: url::Url,
    http: reqwest::Client,
    /// Held only for lookups and updates, never across a fetch.
    cache: RwLock<KeyCache>,
    /// Held across a fetch, so tasks that miss together share one request.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// Last successful fetch.
    loaded_at: Option<Instant>,
    /// Last fetch made because a fresh cache lacked the token's `kid`.
    refetched_at: Option<Instant>,
    /// Last failed fetch.
    failed_at: Option<Instant>,
}

/// What a lookup should do next.
enum Plan {
    Use(Arc<DecodingKey>),
    Fail(ClerkError),
    Fetch(FetchReason),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FetchReason {
    /// The cache is empty or older than `KEYS_TTL`.
    Load,
    /// The cache is fresh but lacks the `kid`: Clerk may have rotated keys.
    UnknownKid,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("response is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("response is not a JWKS document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the JWKS holds no RS256 signing key")]
    NoUsableKeys,
}

impl JwksCache {
    fn new(url: url::Url) -> anyhow::Result<JwksCache> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("tldw/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for Clerk's JWKS")?;
        Ok(JwksCache {
            url,
            http,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, ClerkError> {
        if let Some(answer) = self.plan(kid).answer() {
            return answer;
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        // Whoever held the lock before us may have fetched what we need.
        let reason = match self.plan(kid) {
            Plan::Use(key) => return Ok(key),
            Plan::Fail(error) => return Err(error),
            Plan::Fetch(reason) => reason,
        };
        let fetched = self.fetch().await;
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .settle(kid, reason, fetched.ok(), Instant::now())
    }

    fn plan(&self, kid: &str) -> Plan {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .plan(kid, Instant::now())
    }

    #[tracing::instrument(name = "clerk_jwks_fetch", skip_all, fields(url = %self.url))]
    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, FetchError> {
        let result = self.download().await.and_then(|body| parse_jwks(&body));
        match &result {
            Ok(keys) => tracing::info!(keys = keys.len(), "fetched Clerk signing keys"),
            Err(error) => tracing::warn!(%error, "could not fetch Clerk signing keys"),
        }
        result
    }

    async fn download(&self) -> Result<Vec<u8>, FetchError> {
        let mut response = self
            .http
            .get(self.url.clone())
            .send()
            .await?
            .error_for_status()?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        // Content-Length may be absent or wrong, so count what arrives.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl Plan {
    /// `None` when only a fetch can answer.
    fn answer(self) -> Option<Result<Arc<DecodingKey>, ClerkError>> {
        match self {
            Plan::Use(key) => Some(Ok(key)),
            Plan::Fail(error) => Some(Err(error)),
            Plan::Fetch(_) => None,
        }
    }
}

impl KeyCache {
    fn plan(&self, kid: &str, now: Instant) -> Plan {
        let within = |at: Option<Instant>, period: Duration| {
            at.is_some_and(|at| now.saturating_duration_since(at) < period)
        };
        let fresh = within(self.loaded_at, KEYS_TTL);
        let failed_recently = within(self.failed_at, REFETCH_COOLDOWN);
        match self.keys.get(kid) {
            // While Clerk is unreachable a stale key beats signing everyone out.
            Some(key) if fresh || failed_recently => Plan::Use(key.clone()),
            _ if failed_recently => Plan::Fail(ClerkError::KeysUnavailable),
            _ if !fresh => Plan::Fetch(FetchReason::Load),
            None if within(self.refetched_at, REFETCH_COOLDOWN) => {
                Plan::Fail(ClerkError::UnknownKey)
            }
            _ => Plan::Fetch(FetchReason::UnknownKid),
        }
    }

    /// Records a fetch's outcome and answers the lookup that caused it.
    fn settle(
        &mut self,
        kid: &str,
        reason: FetchReason,
        fetched: Option<HashMap<String, Arc<DecodingKey>>>,
        now: Instant,
    ) -> Result<Arc<DecodingKey>, ClerkError> {
        if reason == FetchReason::UnknownKid {
            self.refetched_at = Some(now);
        }
        let missing = match fetched {
            Some(keys) => {
                // Replaced, not merged: a key Clerk withdrew must stop working.
                self.keys = keys;
                self.loaded_at = Some(now);
                self.failed_at = None;
                ClerkError::UnknownKey
            }
            None => {
                self.failed_at = Some(now);
                ClerkError::KeysUnavailable
            }
        };
        self.keys.get(kid).cloned().ok_or(missing)
    }
}

/// Keeps the RS256 signing keys and skips any others, so one odd entry
/// (another key type, an encryption key) does not hide the rest.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, FetchError> {
    #[derive(Deserialize)]
    struct JwkSet {
        keys: Vec<serde_json::Value>,
    }
    let set: JwkSet = serde_json::from_slice(body)?;
    let keys: HashMap<_, _> = set.keys.into_iter().filter_map(rs256_key).collect();
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(keys)
}

fn rs256_key(jwk: serde_json::Value) -> Option<(String, Arc<DecodingKey>)> {
    #[derive(Deserialize)]
    struct RsaJwk {
        kty: String,
        kid: String,
        #[serde(rename = "use")]
        usage: Option<String>,
        alg: Option<String>,
        n: String,
        e: String,
    }
    let jwk: RsaJwk = serde_json::from_value(jwk).ok()?;
    let usable = jwk.kty == "RSA"
        && jwk.usage.as_deref().is_none_or(|usage| usage == "sig")
        && jwk.alg.as_deref().is_none_or(|alg| alg == "RS256");
    if !usable {
        return None;
    }
    let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?;
    Some((jwk.kid, Arc::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_key() -> Arc<DecodingKey> {
        Arc::new(DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap())
    }

    fn loaded(at: Instant) -> KeyCache {
        KeyCache {
            keys: HashMap::from([("ins_a".to_owned(), some_key())]),
            loaded_at: Some(at),
            ..KeyCache::default()
        }
    }

    fn fetch_reason(plan: Plan) -> Option<FetchReason> {
        match plan {
            Plan::Fetch(reason) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn an_empty_cache_loads() {
        let plan = KeyCache::default().plan("ins_a", Instant::now());
        assert!(fetch_reason(plan) == Some(FetchReason::Load));
    }

    #[test]
    fn a_fresh_key_is_used_and_an_old_one_reloaded() {
        let now = Instant::now();
        assert!(matches!(loaded(now).plan("ins_a", now), Plan::Use(_)));
        let later = now + KEYS_TTL + Duration::from_secs(1);
        assert!(fetch_reason(loaded(now).plan("ins_a", later)) == Some(FetchReason::Load));
    }

    #[test]
    fn unknown_kids_refetch_once_per_cooldown() {
        let now = Instant::now();
        let mut cache = loaded(now);
        assert!(fetch_reason(cache.plan("ins_b", now)) == Some(FetchReason::UnknownKid));
        let fetched = HashMap::from([("ins_a".to_owned(), some_key())]);
        let answer = cache.settle("ins_b", FetchReason::UnknownKid, Some(fetched), now);
        assert!(matches!(answer, Err(ClerkError::UnknownKey)));
        assert!(matches!(
            cache.plan("ins_c", now + Duration::from_secs(1)),
            Plan::Fail(ClerkError::UnknownKey)
        ));
        let after_cooldown = now + REFETCH_COOLDOWN + Duration::from_secs(1);
        assert!(fetch_reason(cache.plan("ins_c", after_cooldown)) == Some(FetchReason::UnknownKid));
    }

    #[test]
    fn a_failed_reload_keeps_stale_keys_and_backs_off() {
        let start = Instant::now();
        let later = start + KEYS_TTL + Duration::from_secs(1);
        let mut cache = loaded(start);
        let answer = cache.settle("ins_a", FetchReason::Load, None, later);
        assert!(answer.is_ok(), "the stale key should still be used");
        assert!(matches!(cache.plan("ins_a", later), Plan::Use(_)));
        assert!(matches!(
            cache.plan("ins_b", later),
            Plan::Fail(ClerkError::KeysUnavailable)
        ));
        let after_cooldown = later + REFETCH_COOLDOWN + Duration::from_secs(1);
        assert!(fetch_reason(cache.plan("ins_a", after_cooldown)) == Some(FetchReason::Load));
    }

    #[test]
    fn v1_roles_lose_their_prefix_and_empty_ids_mean_no_org() {
        assert_eq!(
            org("org_1", Some("acme"), Some("org:admin")),
            Some(ClerkOrg {
                id: "org_1".into(),
                slug: Some("acme".into()),
                role: Some("admin".into()),
            })
        );
        assert_eq!(org("", Some("acme"), None), None);
    }
}
