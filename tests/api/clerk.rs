//! Clerk session tokens, verified against a real JWKS server on 127.0.0.1
//! that counts its requests and can rotate keys, fail, or talk nonsense.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::{
    PrivateKey,
    pkcs1::EncodeRsaPrivateKey,
    pkcs8::{EncodePublicKey, LineEnding},
    traits::PublicKeyParts,
};
use serde_json::{Value, json};
use tldw::server::{
    auth::clerk::{ClerkError, ClerkOrg, ClerkSession, ClerkVerifier},
    config::ClerkSettings,
};

pub(crate) const ISSUER: &str = "https://clerk.tldw.test";
pub(crate) const APP_ORIGIN: &str = "https://app.tldw.test";

// ---- keys ---------------------------------------------------------------

pub(crate) struct TestKey {
    kid: &'static str,
    signing: EncodingKey,
    /// SubjectPublicKeyInfo PEM, as Clerk's dashboard shows it.
    public_pem: String,
    jwk: Value,
}

/// rsa 0.10 wants a rand_core 0.10 RNG; rand's thread RNG (a CSPRNG seeded
/// from the OS) is all a test needs.
struct ThreadRng;

impl rsa::rand_core::TryRng for ThreadRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(rand::random())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(rand::random())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand::fill(dst);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for ThreadRng {}

impl TestKey {
    fn generate(kid: &'static str) -> TestKey {
        let private = PrivateKey::new(&mut ThreadRng, 2048).expect("RSA key generation");
        let public = private.to_public_key();
        let private_pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
        TestKey {
            kid,
            signing: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
            jwk: json!({
                "use": "sig",
                "kty": "RSA",
                "kid": kid,
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
                "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
            }),
        }
    }
}

/// Two keys per test binary: RSA key generation is slow in debug builds.
pub(crate) fn keys() -> &'static [TestKey; 2] {
    static KEYS: OnceLock<[TestKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        std::thread::scope(|scope| {
            let b = scope.spawn(|| TestKey::generate("ins_test_b"));
            [TestKey::generate("ins_test_a"), b.join().unwrap()]
        })
    })
}

pub(crate) fn key_a() -> &'static TestKey {
    &keys()[0]
}

pub(crate) fn key_b() -> &'static TestKey {
    &keys()[1]
}

// ---- a fake Clerk Frontend API serving the JWKS ---------------------------

#[derive(Clone)]
enum Reply {
    Keys(Value),
    Status(StatusCode),
    Body(&'static str),
    Huge,
}

pub(crate) struct FakeClerk {
    pub(crate) jwks_url: url::Url,
    /// The Backend API's base URL (`CLERK_API_URL`).
    pub(crate) api_url: String,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    api: BackendApi,
}

/// The Backend API's `CLERK_SECRET_KEY`.
pub(crate) const SECRET_KEY: &str = "sk_test_fake_clerk_backend_key";

/// `GET /v1/users/{id}` of Clerk's Backend API: User objects by id, behind
/// the secret key, counting the requests it answers.
#[derive(Clone, Default)]
struct BackendApi {
    users: Arc<Mutex<HashMap<String, Value>>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_user(
    State(api): State<BackendApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    api.hits.fetch_add(1, Ordering::SeqCst);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {SECRET_KEY}").as_str());
    // Clerk's error envelope.
    let error = |status: StatusCode, code: &str| {
        (
            status,
            Json(json!({"errors": [{"message": code, "long_message": code, "code": code}]})),
        )
            .into_response()
    };
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "authentication_invalid");
    }
    match api.users.lock().unwrap().get(&id) {
        Some(user) => Json(user.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "resource_not_found"),
    }
}

/// A User object as the Backend API documents it (trimmed, plus fields we
/// do not read), whose primary address is `email`.
pub(crate) fn clerk_user(id: &str, email: &str, verified: bool) -> Value {
    let status = if verified { "verified" } else { "unverified" };
    json!({
        "id": id,
        "object": "user",
        "username": null,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "image_url": "https://img.clerk.com/x",
        "has_image": false,
        "primary_email_address_id": "idn_primary",
        "primary_phone_number_id": null,
        "email_addresses": [
            {
                "id": "idn_other",
                "object": "email_address",
                "email_address": "other@example.com",
                "reserved": false,
                "verification": {"status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": 1},
                "linked_to": [],
            },
            {
                "id": "idn_primary",
                "object": "email_address",
                "email_address": email,
                "reserved": false,
                "verification": {"status": status, "strategy": "email_code", "attempts": 1, "expire_at": 1},
                "linked_to": [],
            },
        ],
        "phone_numbers": [],
        "external_accounts": [],
        "public_metadata": {},
        "private_metadata": {},
        "unsafe_metadata": {},
        "external_id": null,
        "last_sign_in_at": 1_700_000_000_000_i64,
        "banned": false,
        "locked": false,
        "created_at": 1_700_000_000_000_i64,
        "updated_at": 1_700_000_000_000_i64,
    })
}

type ServerState = (Arc<AtomicUsize>, Arc<Mutex<Reply>>);

async fn serve_jwks(State((hits, reply)): State<ServerState>) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let reply = reply.lock().unwrap().clone();
    match reply {
        Reply::Keys(jwks) => Json(jwks).into_response(),
        Reply::Status(status) => status.into_response(),
        Reply::Body(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Reply::Huge => {
            let padding = "x".repeat(200 * 1024);
            Json(json!({"keys": [key_a().jwk], "padding": padding})).into_response()
        }
    }
}

impl FakeClerk {
    pub(crate) async fn start(keys: &[&TestKey]) -> FakeClerk {
        let hits = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(Reply::Keys(jwks(keys))));
        let api = BackendApi::default();
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state((hits.clone(), reply.clone()))
            .merge(
                Router::new()
                    .route("/v1/users/{id}", get(serve_user))
                    .with_state(api.clone()),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeClerk {
            jwks_url: format!("http://{address}/.well-known/jwks.json")
                .parse()
                .unwrap(),
            api_url: format!("http://{address}"),
            hits,
            reply,
            api,
        }
    }

    /// The Backend API knows this user from now on.
    pub(crate) fn add_user(&self, user: Value) {
        let id = user["id"].as_str().unwrap().to_owned();
        self.api.users.lock().unwrap().insert(id, user);
    }

    /// Requests the Backend API answered.
    pub(crate) fn api_hits(&self) -> usize {
        self.api.hits.load(Ordering::SeqCst)
    }

    fn reply_with(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn verifier(&self) -> ClerkVerifier {
        ClerkVerifier::new(settings(self.jwks_url.clone(), None)).unwrap()
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() })
}

fn settings(jwks_url: url::Url, jwt_key_pem: Option<&str>) -> ClerkSettings {
    ClerkSettings {
        issuer: ISSUER.to_owned(),
        jwks_url,
        jwt_key_pem: jwt_key_pem.map(|pem| pem.to_owned().into()),
        authorized_parties: vec!["https://other.tldw.test".to_owned(), APP_ORIGIN.to_owned()],
        secret_key: None,
        api_url: "https://api.clerk.com".parse().unwrap(),
        webhooks: None,
    }
}

/// A URL nothing listens on: the port was free a moment ago.
async fn closed_port_url() -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/.well-known/jwks.json")
        .parse()
        .unwrap()
}

// ---- tokens ---------------------------------------------------------------

pub(crate) fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// The claims of a v2 session token with no active organization.
pub(crate) fn claims() -> Value {
    let now = now();
    json!({
        "azp": APP_ORIGIN,
        "exp": now + 60,
        "fva": [0, -1],
        "iat": now,
        "iss": ISSUER,
        "jti": "f1e2d3c4b5a6",
        "nbf": now - 5,
        "sid": "sess_2abc",
        "sts": "active",
        "sub": "user_2abc",
        "v": 2,
    })
}

pub(crate) fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn rs256_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header
}

pub(crate) fn sign(key: &TestKey, claims: &Value) -> String {
    jsonwebtoken::encode(&rs256_header(key.kid), claims, &key.signing).unwrap()
}

fn sign_as(key: &TestKey, kid: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&rs256_header(kid), claims, &key.signing).unwrap()
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn session(org: Option<ClerkOrg>) -> ClerkSession {
    ClerkSession {
        user_id: "user_2abc".to_owned(),
        session_id: "sess_2abc".to_owned(),
        org,
        issued_at: None,
        email: None,
    }
}

/// A verified session without its `iat`, which these tests set to "now".
trait Untimed {
    fn untimed(self) -> ClerkSession;
}

impl Untimed for ClerkSession {
    fn untimed(self) -> ClerkSession {
        assert!(self.issued_at.is_some(), "every test token has an iat");
        ClerkSession {
            issued_at: None,
            ..self
        }
    }
}

// ---- accepted tokens ------------------------------------------------------

#[tokio::test]
async fn a_v2_token_carries_the_compact_org_claim() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let claims = with(
        claims(),
        "o",
        json!({"id": "org_2acme", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3,2"}),
    );

    let session_of = clerk.verifier().verify(&sign(key_a(), &claims)).await;

    let org = ClerkOrg {
        id: "org_2acme".to_owned(),
        slug: Some("acme".to_owned()),
        role: Some("admin".to_owned()),
    };
    assert_eq!(session_of.unwrap().untimed(), session(Some(org)));
}

#[tokio::test]
async fn a_v1_token_carries_flat_org_claims_with_prefixed_roles() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let mut claims = without(claims(), "v");
    claims["org_id"] = json!("org_2acme");
    claims["org_slug"] = json!("acme");
    claims["org_role"] = json!("org:admin");
    claims["org_permissions"] = json!(["org:sys_memberships:manage"]);

    let session_of = clerk.verifier().verify(&sign(key_a(), &claims)).await;

    let org = ClerkOrg {
        id: "org_2acme".to_owned(),
        slug: Some("acme".to_owned()),
        role: Some("admin".to_owned()),
    };
    assert_eq!(session_of.unwrap().untimed(), session(Some(org)));
}

#[tokio::test]
async fn tokens_without_an_org_claim_have_no_org() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();

    let v2 = verifier.verify(&sign(key_a(), &claims())).await;
    let v1 = verifier
        .verify(&sign(key_a(), &without(claims(), "v")))
        .await;

    assert_eq!(v2.unwrap().untimed(), session(None));
    assert_eq!(v1.unwrap().untimed(), session(None));
}

#[tokio::test]
async fn clerk_header_extras_oiat_and_cat_are_accepted() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let mut header = rs256_header(key_a().kid);
    header.extras.insert("oiat", now() - 3600);
    header.extras.insert("cat", "cl_B7d4PD111AAA");
    let token = jsonwebtoken::encode(&header, &claims(), &key_a().signing).unwrap();
    let raw_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(raw_header["oiat"].is_i64() && raw_header["cat"].is_string());

    assert_eq!(
        clerk.verifier().verify(&token).await.unwrap().untimed(),
        session(None)
    );
}

#[tokio::test]
async fn authorized_parties_match_with_or_without_a_trailing_slash() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let mut settings = settings(clerk.jwks_url.clone(), None);
    settings.authorized_parties = vec![format!("{APP_ORIGIN}/")];
    let verifier = ClerkVerifier::new(settings).unwrap();

    for azp in [APP_ORIGIN.to_owned(), format!("{APP_ORIGIN}/")] {
        let token = sign(key_a(), &with(claims(), "azp", json!(azp)));
        assert_eq!(
            verifier.verify(&token).await.unwrap().untimed(),
            session(None),
            "{azp}"
        );
    }
}

#[tokio::test]
async fn small_clock_skew_is_tolerated() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let now = now();
    let just_expired = with(claims(), "exp", json!(now - 1));
    let slightly_early = with(with(claims(), "nbf", json!(now + 2)), "iat", json!(now + 2));

    assert!(verifier.verify(&sign(key_a(), &just_expired)).await.is_ok());
    assert!(
        verifier
            .verify(&sign(key_a(), &slightly_early))
            .await
            .is_ok()
    );
}

// ---- refused tokens -------------------------------------------------------

#[tokio::test]
async fn alg_none_is_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": key_a().kid});
        let token = format!("{}.{}.", b64_json(&header), b64_json(&claims()));

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::UnsupportedAlgorithm),
            "{alg}: {error:?}"
        );
    }
    assert_eq!(clerk.hits(), 0, "no key is needed to refuse alg none");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let pinned =
        ClerkVerifier::new(settings(closed_port_url().await, Some(&key_a().public_pem))).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_a().kid.to_owned());
    let secrets = [
        key_a().public_pem.as_bytes().to_vec(),
        key_a().jwk.to_string().into_bytes(),
    ];

    for secret in secrets {
        let token = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        for verifier in [clerk.verifier(), pinned.clone()] {
            let error = verifier.verify(&token).await.unwrap_err();
            assert!(
                matches!(error, ClerkError::UnsupportedAlgorithm),
                "{error:?}"
            );
        }
    }
}

#[tokio::test]
async fn rs384_and_rs512_are_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let mut header = Header::new(alg);
        header.kid = Some(key_a().kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims(), &key_a().signing).unwrap();

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::UnsupportedAlgorithm),
            "{alg:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_exactly_one_refetch() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    verifier.verify(&sign(key_a(), &claims())).await.unwrap();
    assert_eq!(clerk.hits(), 1);

    let error = verifier
        .verify(&sign_as(key_a(), "ins_nobody", &claims()))
        .await
        .unwrap_err();

    assert!(matches!(error, ClerkError::UnknownKey), "{error:?}");
    assert_eq!(clerk.hits(), 2);
}

#[tokio::test]
async fn a_token_without_a_kid_is_refused_without_fetching() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &key_a().signing).unwrap();

    let error = clerk.verifier().verify(&token).await.unwrap_err();

    assert!(matches!(error, ClerkError::UnknownKey), "{error:?}");
    assert_eq!(clerk.hits(), 0);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for age in [61, 120] {
        let now = now();
        let claims = with(
            with(claims(), "exp", json!(now - age)),
            "iat",
            json!(now - age - 60),
        );

        let error = verifier.verify(&sign(key_a(), &claims)).await.unwrap_err();

        assert!(matches!(error, ClerkError::Expired), "{age}: {error:?}");
    }
}

#[tokio::test]
async fn tokens_from_the_future_are_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let later = now() + 120;
    let future_nbf = with(
        with(claims(), "nbf", json!(later)),
        "exp",
        json!(later + 60),
    );
    let future_iat = with(
        with(claims(), "iat", json!(later)),
        "exp",
        json!(later + 60),
    );

    for claims in [future_nbf, future_iat] {
        let error = verifier.verify(&sign(key_a(), &claims)).await.unwrap_err();
        assert!(matches!(error, ClerkError::NotYetValid), "{error:?}");
    }
}

#[tokio::test]
async fn missing_claims_are_named() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for claim in ["exp", "iss", "sub", "sid", "azp"] {
        let token = sign(key_a(), &without(claims(), claim));

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::MissingClaim(name) if name == claim),
            "{claim}: {error:?}"
        );
    }
}

#[tokio::test]
async fn empty_subject_session_and_party_count_as_missing() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for claim in ["sub", "sid", "azp"] {
        let token = sign(key_a(), &with(claims(), claim, json!("")));

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::MissingClaim(name) if name == claim),
            "{claim}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_foreign_issuer_is_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for iss in [
        "https://clerk.evil.test",
        "https://clerk.tldw.test/",
        "http://clerk.tldw.test",
    ] {
        let token = sign(key_a(), &with(claims(), "iss", json!(iss)));

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(matches!(error, ClerkError::WrongIssuer), "{iss}: {error:?}");
    }
}

#[tokio::test]
async fn an_issuer_array_is_malformed_even_if_it_lists_ours() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let token = sign(key_a(), &with(claims(), "iss", json!([ISSUER])));

    let error = clerk.verifier().verify(&token).await.unwrap_err();

    assert!(matches!(error, ClerkError::Malformed), "{error:?}");
}

#[tokio::test]
async fn a_foreign_authorized_party_is_refused() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    for azp in [
        "https://evil.test",
        "https://app.tldw.test.evil.test",
        "http://app.tldw.test",
    ] {
        let token = sign(key_a(), &with(claims(), "azp", json!(azp)));

        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::WrongAuthorizedParty),
            "{azp}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_token_with_an_audience_is_not_a_session_token() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let token = sign(key_a(), &with(claims(), "aud", json!("convex")));

    let error = clerk.verifier().verify(&token).await.unwrap_err();

    assert!(matches!(error, ClerkError::UnexpectedAudience), "{error:?}");
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let token = sign(key_a(), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = with(claims(), "sub", json!("user_admin"));
    let tampered = format!("{}.{}.{}", parts[0], b64_json(&forged), parts[2]);

    let error = clerk.verifier().verify(&tampered).await.unwrap_err();

    assert!(matches!(error, ClerkError::BadSignature), "{error:?}");
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_our_kid_fails_the_signature() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let token = sign_as(key_b(), key_a().kid, &claims());

    let error = clerk.verifier().verify(&token).await.unwrap_err();

    assert!(matches!(error, ClerkError::BadSignature), "{error:?}");
}

#[tokio::test]
async fn garbage_is_malformed_and_never_echoed() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let valid = sign(key_a(), &claims());
    let huge = format!(
        "{}.{}.sig",
        b64_json(&json!({"alg": "RS256"})),
        "A".repeat(20_000)
    );
    let garbage = [
        "".to_owned(),
        "not-a-jwt".to_owned(),
        "a.b.c".to_owned(),
        "eyJhbGciOiJSUzI1NiJ9.e30".to_owned(),
        format!("{valid}.extra"),
        // Correctly signed, but not claims we can read.
        sign(key_a(), &json!("not an object")),
        sign(key_a(), &with(claims(), "sub", json!(42))),
        format!(
            "{}.{}.sig",
            b64_json(&json!({"alg": "RS256", "kid": key_a().kid, "typ": "JWE"})),
            b64_json(&claims())
        ),
        huge,
    ];

    for token in garbage {
        let error = verifier.verify(&token).await.unwrap_err();

        assert!(
            matches!(error, ClerkError::Malformed),
            "{token:.60}: {error:?}"
        );
        let message = error.to_string();
        assert!(token.len() < 8 || !message.contains(&token), "{message}");
    }
}

// ---- the key cache --------------------------------------------------------

#[tokio::test]
async fn keys_are_fetched_once_for_many_verifications() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let token = sign(key_a(), &claims());

    for _ in 0..20 {
        verifier.verify(&token).await.unwrap();
    }

    assert_eq!(clerk.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_verifications_share_one_fetch() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let token = sign(key_a(), &claims());
    let mut tasks = tokio::task::JoinSet::new();

    for _ in 0..20 {
        let (verifier, token) = (verifier.clone(), token.clone());
        tasks.spawn(async move { verifier.verify(&token).await });
    }

    for result in tasks.join_all().await {
        result.unwrap();
    }
    assert_eq!(clerk.hits(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_the_withdrawn_one_dropped() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let old_token = sign(key_a(), &claims());
    verifier.verify(&old_token).await.unwrap();
    assert_eq!(clerk.hits(), 1);

    clerk.reply_with(Reply::Keys(jwks(&[key_b()])));
    let rotated = verifier.verify(&sign(key_b(), &claims())).await;

    assert_eq!(rotated.unwrap().untimed(), session(None));
    assert_eq!(clerk.hits(), 2);
    let error = verifier.verify(&old_token).await.unwrap_err();
    assert!(matches!(error, ClerkError::UnknownKey), "{error:?}");
    assert_eq!(clerk.hits(), 2, "the refetch is rate-limited");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_extra_fetch() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    verifier.verify(&sign(key_a(), &claims())).await.unwrap();

    for i in 0..50 {
        let token = sign_as(key_a(), &format!("ins_bogus_{i}"), &claims());
        let error = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(error, ClerkError::UnknownKey), "{error:?}");
    }

    assert_eq!(clerk.hits(), 2);
    verifier.verify(&sign(key_a(), &claims())).await.unwrap();
    assert_eq!(
        clerk.hits(),
        2,
        "known keys are still served from the cache"
    );
}

#[tokio::test]
async fn clones_share_one_cache() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    let token = sign(key_a(), &claims());

    verifier.verify(&token).await.unwrap();
    verifier.clone().verify(&token).await.unwrap();

    assert_eq!(clerk.hits(), 1);
}

// ---- networkless mode -----------------------------------------------------

#[tokio::test]
async fn a_pinned_pem_key_verifies_without_any_network() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let one_line_pem = key_a().public_pem.replace('\n', "\\n");
    let verifiers = [
        ClerkVerifier::new(settings(clerk.jwks_url.clone(), Some(&key_a().public_pem))).unwrap(),
        ClerkVerifier::new(settings(closed_port_url().await, Some(&key_a().public_pem))).unwrap(),
        ClerkVerifier::new(settings(closed_port_url().await, Some(&one_line_pem))).unwrap(),
    ];

    for verifier in verifiers {
        let token = sign(key_a(), &claims());
        assert_eq!(
            verifier.verify(&token).await.unwrap().untimed(),
            session(None)
        );
        let other_kid = sign_as(key_a(), "ins_whatever", &claims());
        assert!(verifier.verify(&other_kid).await.is_ok());
        let error = verifier
            .verify(&sign(key_b(), &claims()))
            .await
            .unwrap_err();
        assert!(matches!(error, ClerkError::BadSignature), "{error:?}");
    }
    assert_eq!(clerk.hits(), 0);
}

#[tokio::test]
async fn bad_settings_fail_at_start_up() {
    let url = closed_port_url().await;
    let not_a_key = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n";
    assert!(ClerkVerifier::new(settings(url.clone(), Some(not_a_key))).is_err());

    let mut no_parties = settings(url, None);
    no_parties.authorized_parties = vec![" ".to_owned(), "/".to_owned()];
    assert!(ClerkVerifier::new(no_parties).is_err());
}

// ---- Clerk unreachable or confused ------------------------------------------

#[tokio::test]
async fn an_unreachable_jwks_means_keys_unavailable() {
    let verifier = ClerkVerifier::new(settings(closed_port_url().await, None)).unwrap();

    let error = verifier
        .verify(&sign(key_a(), &claims()))
        .await
        .unwrap_err();

    assert!(matches!(error, ClerkError::KeysUnavailable), "{error:?}");
}

#[tokio::test]
async fn bad_jwks_answers_mean_keys_unavailable_and_back_off() {
    let replies = [
        Reply::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Reply::Status(StatusCode::NOT_FOUND),
        Reply::Body("<html>Service Unavailable</html>"),
        Reply::Body(r#"{"keys": "nope"}"#),
        Reply::Body(r#"{"keys": []}"#),
        Reply::Body(
            r#"{"keys": [{"kty": "EC", "kid": "ins_test_a", "crv": "P-256", "x": "AA", "y": "AA"}]}"#,
        ),
        Reply::Huge,
    ];
    for (i, reply) in replies.into_iter().enumerate() {
        let clerk = FakeClerk::start(&[key_a()]).await;
        clerk.reply_with(reply);
        let verifier = clerk.verifier();
        let token = sign(key_a(), &claims());

        let error = verifier.verify(&token).await.unwrap_err();
        assert!(
            matches!(error, ClerkError::KeysUnavailable),
            "reply {i}: {error:?}"
        );
        assert_eq!(clerk.hits(), 1, "reply {i}");

        // Clerk recovers, but we do not ask again straight away.
        clerk.reply_with(Reply::Keys(jwks(&[key_a()])));
        let error = verifier.verify(&token).await.unwrap_err();
        assert!(
            matches!(error, ClerkError::KeysUnavailable),
            "reply {i}: {error:?}"
        );
        assert_eq!(clerk.hits(), 1, "reply {i}");
    }
}

#[tokio::test]
async fn odd_entries_in_the_jwks_do_not_hide_the_good_key() {
    let clerk = FakeClerk::start(&[]).await;
    clerk.reply_with(Reply::Keys(json!({"keys": [
        {"kty": "EC", "kid": "ins_ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "ins_enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA"},
        key_a().jwk,
    ]})));

    let session_of = clerk.verifier().verify(&sign(key_a(), &claims())).await;

    assert_eq!(session_of.unwrap().untimed(), session(None));
}

#[tokio::test]
async fn a_remembered_token_still_expires() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let verifier = clerk.verifier();
    // Expired 3 s ago: still inside the 5 s leeway, for about two seconds.
    let now = now();
    let claims = with(
        with(claims(), "exp", json!(now - 3)),
        "iat",
        json!(now - 60),
    );
    let token = sign(key_a(), &claims);
    assert_eq!(
        verifier.verify(&token).await.unwrap().untimed(),
        session(None)
    );
    assert_eq!(clerk.hits(), 1, "the JWKS was fetched for the first use");
    // The second use (remembered) gives the same answer, with no fetch.
    assert_eq!(
        verifier.verify(&token).await.unwrap().untimed(),
        session(None)
    );
    assert_eq!(clerk.hits(), 1);
    // Past exp + leeway it is refused, remembered or not.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(error, ClerkError::Expired), "{error:?}");
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(error, ClerkError::Expired), "{error:?}");
}
