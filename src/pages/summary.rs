//! `/o/:slug/v/:video`: one summary, or its progress while it is being made.
//! With JavaScript the page polls and streams the text in place; without
//! it, a `<noscript>` refresh reloads it until the summary is done.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use std::time::Duration;

use super::org_home::slug_param;
use crate::{
    components::{
        form::{ErrorBanner, FormErrors, SubmitButton},
        load_error::LoadError,
    },
    domain::{SummaryStatus, SummaryView, VideoId, format_timestamp},
    server_fns::summaries::{Summarize, SummarizeTranscript, get_summary_status},
};

const POLL: Duration = Duration::from_millis(700);

#[component]
pub fn SummaryPage() -> impl IntoView {
    let slug = slug_param();
    let params = use_params_map();
    let video = move || params.read().get("video").unwrap_or_default();
    let tick = RwSignal::new(0usize);
    // The actions on this page redirect back to it; their versions make
    // the status reload when they finish.
    let paste = ServerAction::<SummarizeTranscript>::new();
    let summarize = ServerAction::<Summarize>::new();
    let status = Resource::new(
        move || {
            (
                slug(),
                video(),
                tick.get() + paste.version().get() + summarize.version().get(),
            )
        },
        |(slug, video, _)| get_summary_status(slug, video),
    );
    // Keep polling while the summary is being made (browser only).
    Effect::new(move |_| {
        if let Some(Ok(SummaryStatus::Working { .. })) = status.get() {
            set_timeout(move || tick.update(|t| *t += 1), POLL);
        }
    });
    view! {
        <div class="mx-auto max-w-3xl px-4 py-10 sm:px-6">
            <a href=move || format!("/o/{}", slug()) class="text-sm text-indigo-700 hover:underline">"← All summaries"</a>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(SummaryStatus::Ready { view, from_cache }) => view! { <Ready view=*view from_cache /> }.into_any(),
                        Ok(SummaryStatus::Working { stage, partial }) => view! { <Working stage partial /> }.into_any(),
                        Ok(SummaryStatus::Failed { message }) => view! { <Failed message slug=slug() video=video() paste /> }.into_any(),
                        Ok(SummaryStatus::NotRequested) => view! { <NotRequested slug=slug() video=video() summarize /> }.into_any(),
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn Ready(view: SummaryView, from_cache: bool) -> impl IntoView {
    let video = VideoId::try_from(view.video_id.clone()).ok();
    let title = view.title.clone().unwrap_or_else(|| view.video_id.clone());
    let watch = video
        .as_ref()
        .map(|v| v.watch_url(None))
        .unwrap_or_default();
    let private = view.private;
    let model = if view.built_in {
        "Built-in extractive summarizer (offline): key sentences picked from the transcript"
            .to_owned()
    } else {
        format!(
            "Summarized by {} (prompt {})",
            view.model, view.prompt_version
        )
    };
    view! {
        <Title text=title.clone() />
        <article class="mt-6 space-y-6" data-testid="summary">
            <header class="flex flex-col gap-4 sm:flex-row">
                {view.thumbnail_url.clone().map(|src| view! {
                    <img src=src alt="" class="aspect-video w-full rounded-xl bg-slate-200 object-cover sm:w-56" />
                })}
                <div class="space-y-1">
                    <h1 class="text-2xl font-bold tracking-tight"><a href=watch class="hover:underline">{title}</a></h1>
                    <p class="text-sm text-slate-600">
                        {view.channel.clone().unwrap_or_default()}
                        {view.duration_seconds.map(|d| format!(" · {}", format_timestamp(d)))}
                    </p>
                    <p class="flex flex-wrap gap-2 pt-1 text-xs">
                        <span class="rounded bg-slate-100 px-2 py-0.5 text-slate-700" data-testid="freshness">
                            {if private {
                                "From your pasted transcript: only your organization sees it"
                            } else if from_cache {
                                "Served from cache"
                            } else {
                                "Freshly summarized"
                            }}
                        </span>
                        <span class="rounded bg-indigo-50 px-2 py-0.5 text-indigo-800" data-testid="model">{model}</span>
                    </p>
                </div>
            </header>
            <section class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
                <h2 class="text-sm font-semibold uppercase tracking-wide text-slate-500">"TL;DR"</h2>
                <p class="mt-2 text-lg leading-relaxed text-slate-900" data-testid="tldr">{view.body.tldr.clone()}</p>
            </section>
            <section class="rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
                <h2 class="text-sm font-semibold uppercase tracking-wide text-slate-500">"Key points"</h2>
                <ol class="mt-3 space-y-3" data-testid="key-points">
                    {view.body.key_points.iter().map(|point| {
                        let href = video.as_ref().map(|v| v.watch_url(Some(point.at_seconds))).unwrap_or_default();
                        view! {
                            <li class="flex gap-3">
                                <a href=href class="shrink-0 rounded bg-indigo-50 px-2 py-0.5 font-mono text-sm text-indigo-700 hover:bg-indigo-100"
                                    aria-label=format!("Watch from {}", format_timestamp(point.at_seconds))>
                                    {format_timestamp(point.at_seconds)}
                                </a>
                                <span class="text-slate-800">{point.text.clone()}</span>
                            </li>
                        }
                    }).collect_view()}
                </ol>
            </section>
        </article>
    }
}

#[component]
fn Working(stage: String, partial: Option<String>) -> impl IntoView {
    let steps = [
        ("fetching_transcript", "Fetching the transcript"),
        ("summarizing", "Summarizing"),
        ("done", "Done"),
    ];
    let current = steps.iter().position(|(key, _)| *key == stage).unwrap_or(0);
    view! {
        <Title text="Summarizing…" />
        // Without JavaScript, reload until it is done (ignored when scripts run).
        <noscript inner_html=r#"<meta http-equiv="refresh" content="2">"# />
        <section class="mt-6 space-y-5 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm" aria-live="polite" data-testid="progress">
            <h1 class="text-xl font-semibold">"Making your summary…"</h1>
            <ol class="flex flex-wrap gap-3 text-sm">
                {steps.iter().enumerate().map(|(i, (key, label))| {
                    let class = if i < current {
                        "rounded-full bg-emerald-100 px-3 py-1 text-emerald-800"
                    } else if i == current {
                        "rounded-full bg-indigo-600 px-3 py-1 font-semibold text-white"
                    } else {
                        "rounded-full bg-slate-100 px-3 py-1 text-slate-500"
                    };
                    view! { <li class=class data-stage=*key aria-current=(i == current).then_some("step")>{*label}</li> }
                }).collect_view()}
            </ol>
            {partial.map(|text| view! {
                <p class="whitespace-pre-wrap text-slate-800" data-testid="partial">{text}</p>
            })}
            <p class="text-sm text-slate-500">"This page updates by itself. Long videos take a minute or two."</p>
        </section>
    }
}

#[component]
fn Failed(
    message: String,
    slug: String,
    video: String,
    paste: ServerAction<SummarizeTranscript>,
) -> impl IntoView {
    let errors = FormErrors::of(paste);
    view! {
        <Title text="Couldn't summarize" />
        <section class="mt-6 space-y-3 rounded-2xl border border-rose-200 bg-rose-50 p-6" role="alert" data-testid="failed">
            <h1 class="text-xl font-semibold text-rose-900">"We couldn't summarize this video"</h1>
            <p class="text-rose-800">{message}</p>
            <p class="text-sm text-rose-800">"Nothing was charged to your organization's quota."</p>
            <a href=format!("/o/{slug}") class="inline-block rounded-lg bg-white px-4 py-2 text-sm font-semibold text-rose-900 shadow-sm hover:bg-rose-100">"Back to your summaries"</a>
        </section>
        <section class="mt-6 space-y-3 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
            <h2 class="text-lg font-semibold">"Have the transcript? Paste it"</h2>
            <p class="text-sm text-slate-600">
                "Plain text, or the contents of a .srt or .vtt subtitle file. The summary stays in your organization: it is never shared with anyone else."
            </p>
            <ActionForm action=paste attr:class="space-y-3">
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="video" value=video />
                <label for="transcript" class="sr-only">"Transcript"</label>
                <textarea id="transcript" name="transcript" rows="8" required=true
                    aria-describedby="transcript-error"
                    class="block w-full rounded-lg border border-slate-300 px-3 py-2 font-mono text-sm"
                    placeholder="1\n00:00:01,000 --> 00:00:04,000\nHello and welcome…"></textarea>
                <p id="transcript-error" class="text-sm text-rose-700" role="alert">{move || errors.field("transcript").get()}</p>
                <ErrorBanner error=errors.general() />
                <SubmitButton label="Summarize my transcript" pending=paste.pending() />
            </ActionForm>
        </section>
    }
}

#[component]
fn NotRequested(slug: String, video: String, summarize: ServerAction<Summarize>) -> impl IntoView {
    view! {
        <Title text="Not summarized yet" />
        <section class="mt-6 space-y-4 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
            <h1 class="text-xl font-semibold">"This video isn't in your organization's summaries yet"</h1>
            <ActionForm action=summarize>
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="link" value=video />
                <SubmitButton label="Summarize it" pending=summarize.pending() />
            </ActionForm>
            {move || summarize.value().get().and_then(Result::err).map(|error| view! {
                <p role="alert" class="text-sm text-rose-700">{error.to_string()}</p>
            })}
        </section>
    }
}
