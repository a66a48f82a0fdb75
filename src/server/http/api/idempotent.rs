//! `Idempotency-Key` on the POSTs that have an effect (a summary, an
//! invitation, a checkout): the rules are the idempotency service's; this
//! turns a handler's response into the stored answer and back.

use axum::{
    body::{Body, to_bytes},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        db::Db,
        services::idempotency::{
            self, IdempotencyKey, Principal, RequestFingerprint, StoredAnswer,
        },
    },
};

/// The most of an answer we keep (every answer of these routes is small).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Runs `handler` once per `Idempotency-Key` (when the request has one):
/// a retry with the same key and body gets the first answer, marked
/// `Idempotent-Replayed: true`. `route` is the route's template, so the
/// fingerprint does not depend on how the path was spelled.
pub async fn once<F, Fut>(
    db: &Db,
    member: &CurrentMember,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    handler: F,
) -> Result<Response, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, AppError>>,
{
    let key = match headers.get(idempotency::HEADER) {
        None => return handler().await,
        Some(raw) => IdempotencyKey::parse(raw.to_str().map_err(|_| {
            AppError::field(
                idempotency::HEADER,
                "The key must be visible ASCII characters.",
            )
        })?)?,
    };
    let fingerprint = RequestFingerprint::new("POST", route, body);
    let answered = idempotency::run(
        db,
        member.scope(),
        principal(member),
        Some(&key),
        &fingerprint,
        || async { stored(handler().await).await },
    )
    .await?;
    let mut response = replayed(answered.answer);
    if answered.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Whose keys these are: a program's own (its API key) or a person's.
fn principal(member: &CurrentMember) -> Principal {
    match member.api_key() {
        Some(key) => Principal::ApiKey(key.as_uuid()),
        None => Principal::Member(member.org.user_id),
    }
}

async fn stored(result: Result<Response, AppError>) -> StoredAnswer {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    let status = response.status().as_u16();
    let headers = [header::LOCATION, header::RETRY_AFTER]
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let body = match to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => {
            tracing::error!(%error, "an answer could not be read to store it");
            return StoredAnswer {
                status: 500,
                body: String::new(),
                headers: Vec::new(),
            };
        }
    };
    StoredAnswer {
        status,
        body,
        headers,
    }
}

fn replayed(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}
