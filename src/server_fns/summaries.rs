use leptos::prelude::*;

use crate::{
    domain::{Dashboard, SummaryStatus},
    error::AppError,
};

/// Starts summarizing a pasted link and goes to its page.
#[server(endpoint = "summaries/request")]
pub async fn summarize(slug: String, link: String) -> Result<(), AppError> {
    use crate::{domain::VideoId, server::http::ctx::serve};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let video = VideoId::parse(&link).map_err(|e| AppError::field("link", e.to_string()))?;
        ctx.state.summaries.request(&member, &video).await?;
        leptos_axum::redirect(&format!("/o/{slug}/v/{video}"));
        Ok(())
    })
    .await
}

#[server(endpoint = "summaries/status")]
pub async fn get_summary_status(slug: String, video: String) -> Result<SummaryStatus, AppError> {
    use crate::{domain::VideoId, server::http::ctx::serve};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let video = VideoId::try_from(video).map_err(|_| AppError::NotFound("video".into()))?;
        ctx.state.summaries.status(&member, &video).await
    })
    .await
}

#[server(endpoint = "summaries/dashboard")]
pub async fn get_dashboard(
    slug: String,
    filter: Option<String>,
    cursor: Option<String>,
) -> Result<Dashboard, AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        ctx.state
            .summaries
            .dashboard(&member, filter.as_deref(), cursor.as_deref())
            .await
    })
    .await
}

/// Summarizes a transcript the member pasted, for this org only.
#[server(endpoint = "summaries/own-transcript")]
pub async fn summarize_transcript(
    slug: String,
    video: String,
    transcript: String,
) -> Result<(), AppError> {
    use crate::{domain::VideoId, server::http::ctx::serve};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let video = VideoId::try_from(video).map_err(|_| AppError::NotFound("video".into()))?;
        ctx.state
            .summaries
            .summarize_own_transcript(&member, &video, &transcript)
            .await?;
        leptos_axum::redirect(&format!("/o/{slug}/v/{video}"));
        Ok(())
    })
    .await
}
