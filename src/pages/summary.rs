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
        copy_button::{ACTION_CLASS, CopyButton},
        form::{ErrorBanner, FormErrors, SubmitButton},
        load_error::LoadError,
    },
    domain::{SummaryStatus, SummaryView, VideoId, format_timestamp, summary::summary_markdown},
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
                        Ok(SummaryStatus::Ready { view, from_cache }) => view! { <Ready view=*view from_cache slug=slug() /> }.into_any(),
                        Ok(SummaryStatus::Working { stage, partial }) => view! { <Working stage partial /> }.into_any(),
                        Ok(SummaryStatus::Failed { message }) => view! { <Failed message slug=slug() video=video() paste summarize /> }.into_any(),
                        Ok(SummaryStatus::NotRequested) => view! { <NotRequested slug=slug() video=video() summarize /> }.into_any(),
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn Ready(view: SummaryView, from_cache: bool, slug: String) -> impl IntoView {
    let video = VideoId::try_from(view.video_id.clone()).ok();
    let title = view.title.clone().unwrap_or_else(|| view.video_id.clone());
    let watch = video
        .as_ref()
        .map(|v| v.watch_url(None))
        .unwrap_or_default();
    let markdown = summary_markdown(&view);
    // The page's own address: what members share. Built from the parsed id;
    // the origin is added in the browser (where it is known for sure).
    let path = format!("/o/{slug}/v/{}", view.video_id);
    let share_url = RwSignal::new(path.clone());
    Effect::new({
        let path = path.clone();
        move |_| {
            if let Some(origin) = page_origin() {
                share_url.set(format!("{origin}{path}"));
            }
        }
    });
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
                <div class="min-w-0 space-y-1">
                    <h1 class="text-2xl font-bold tracking-tight break-words">
                        <a href=watch.clone() target="_blank" rel="noopener noreferrer" class="rounded hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600">{title}</a>
                    </h1>
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
            <div class="flex flex-wrap items-center gap-2" data-testid="summary-actions">
                <a href=watch target="_blank" rel="noopener noreferrer" class=ACTION_CLASS data-testid="open-on-youtube">
                    <svg aria-hidden="true" viewBox="0 0 24 24" class="h-4 w-4 fill-rose-600"><path d="M23 7.2a3 3 0 0 0-2.1-2.1C19 4.6 12 4.6 12 4.6s-7 0-8.9.5A3 3 0 0 0 1 7.2 31 31 0 0 0 .5 12 31 31 0 0 0 1 16.8a3 3 0 0 0 2.1 2.1c1.9.5 8.9.5 8.9.5s7 0 8.9-.5a3 3 0 0 0 2.1-2.1c.4-1.6.5-3.2.5-4.8s-.1-3.2-.5-4.8ZM9.8 15V9l5.8 3-5.8 3Z"/></svg>
                    "Open on YouTube"
                    <span class="sr-only">" (opens in a new tab)"</span>
                </a>
                <CopyButton text=markdown.clone() label="Copy as Markdown" copied="Copied the summary as Markdown" action=true testid="copy-markdown" />
            </div>
            <section class="rounded-2xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6">
                <h2 class="text-sm font-semibold uppercase tracking-wide text-slate-500">"TL;DR"</h2>
                <p class="mt-2 text-lg leading-relaxed text-slate-900" data-testid="tldr">{view.body.tldr.clone()}</p>
            </section>
            <section class="rounded-2xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6">
                <h2 class="text-sm font-semibold uppercase tracking-wide text-slate-500">"Key points"</h2>
                <ol class="mt-3 space-y-3" data-testid="key-points">
                    {view.body.key_points.iter().map(|point| {
                        let href = video.as_ref().map(|v| v.watch_url(Some(point.at_seconds))).unwrap_or_default();
                        let at = format_timestamp(point.at_seconds);
                        view! {
                            <li class="flex gap-3">
                                <a href=href target="_blank" rel="noopener noreferrer"
                                    class="h-fit shrink-0 rounded bg-indigo-50 px-2 py-0.5 font-mono text-sm text-indigo-700 hover:bg-indigo-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600"
                                    aria-label=format!("Watch from {at} on YouTube (opens in a new tab)")>
                                    {at.clone()}
                                </a>
                                <span class="min-w-0 break-words text-slate-800">{point.text.clone()}</span>
                            </li>
                        }
                    }).collect_view()}
                </ol>
            </section>
            <section id="share" class="rounded-2xl border border-slate-200 bg-slate-50 p-4 sm:p-6" aria-labelledby="share-heading" data-testid="share">
                <h2 id="share-heading" class="font-semibold text-slate-900">"Share with your organization"</h2>
                <p class="mt-1 text-sm text-slate-600">
                    "Send this page's link to a colleague. Only members of this organization can open it; anyone else is asked to sign in or sees “not found”."
                </p>
                <div class="mt-3 flex flex-col gap-2 sm:flex-row sm:items-center">
                    <a href=path class="min-w-0 flex-1 truncate rounded-lg border border-slate-300 bg-white px-3 py-1.5 font-mono text-sm text-indigo-700 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600" data-testid="share-link">
                        {move || share_url.get()}
                    </a>
                    <CopyButton text=share_url label="Copy link" copied="Copied the link to this page" action=true testid="copy-share-link" />
                </div>
            </section>
            <details class="group rounded-2xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6" data-testid="markdown-details">
                <summary class="cursor-pointer rounded font-semibold text-slate-900 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600">
                    "Show as Markdown"
                </summary>
                <p class="mt-2 text-sm text-slate-600">"To paste into notes, docs or chats: select it and copy it."</p>
                <pre class="mt-3 max-h-96 overflow-auto rounded-lg bg-slate-900 p-4 font-mono text-xs leading-relaxed whitespace-pre-wrap break-words text-slate-100 select-all" data-testid="markdown">{markdown}</pre>
            </details>
        </article>
    }
}

/// `https://tldw.example.com`: where the browser found this page.
fn page_origin() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsValue;
        use web_sys::js_sys::Reflect;
        let window = web_sys::window()?;
        let location = Reflect::get(&window, &JsValue::from_str("location")).ok()?;
        Reflect::get(&location, &JsValue::from_str("origin"))
            .ok()?
            .as_string()
            .filter(|origin| origin.starts_with("http"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
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

/// When trying the same video again makes sense, read from the failure's
/// words (the server says it: "try again in 28 seconds", "you can try
/// again now", "try again later").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    Now,
    /// After this many seconds (a cool-down: asking sooner is refused).
    After(u32),
    /// Some time later; no exact moment.
    Later,
    /// Asking again for this video would fail the same way.
    Never,
}

fn retry_hint(message: &str) -> Retry {
    let lower = message.to_lowercase();
    if lower.contains("check the link") {
        return Retry::Never;
    }
    let Some(at) = lower.find("try again") else {
        return Retry::Never;
    };
    let rest = lower[at + "try again".len()..].trim_start();
    let number = |words: &str| -> Option<u32> {
        let digits: String = words.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if rest.starts_with("now") || rest.starts_with('.') || rest.is_empty() {
        Retry::Now
    } else if let Some(rest) = rest.strip_prefix("in about ").or(rest.strip_prefix("in ")) {
        if rest.starts_with("a second")
            || rest.starts_with("a moment")
            || rest.starts_with("a few seconds")
        {
            Retry::After(5)
        } else if rest.starts_with("a minute") {
            Retry::After(60)
        } else if let Some(n) = number(rest) {
            let unit = rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            if unit.starts_with("minute") {
                Retry::After(n.saturating_mul(60))
            } else if unit.starts_with("second") {
                Retry::After(n)
            } else {
                Retry::Later
            }
        } else {
            Retry::Later
        }
    } else {
        Retry::Later
    }
}

#[component]
fn Failed(
    message: String,
    slug: String,
    video: String,
    paste: ServerAction<SummarizeTranscript>,
    summarize: ServerAction<Summarize>,
) -> impl IntoView {
    let errors = FormErrors::of(paste);
    let retry = retry_hint(&message);
    let lower = message.to_lowercase();
    let says_not_charged = lower.contains("nothing was charged");
    // YouTube gave no transcript: pasting one is the way forward. Otherwise
    // (the AI failed) it is offered, folded away.
    let paste_first = lower.contains("paste") || lower.contains("transcript yourself");
    // Seconds left in the cool-down, counted down in the browser only: the
    // server's page keeps the button enabled (it works without JavaScript,
    // and a press too early is answered in words, charging nothing).
    let remaining = RwSignal::new(None::<u32>);
    Effect::new(move |_| {
        if let Retry::After(seconds) = retry {
            remaining.set(Some(seconds));
        }
    });
    Effect::new(move |_| {
        if let Some(left @ 1..) = remaining.get() {
            set_timeout(
                move || {
                    remaining.try_set(Some(left - 1));
                },
                Duration::from_secs(1),
            );
        }
    });
    let waiting = move || remaining.get().is_some_and(|left| left > 0);
    let retry_error = move || {
        summarize
            .value()
            .get()
            .and_then(Result::err)
            .map(|error| error.to_string())
    };
    let back = format!("/o/{slug}");
    let retry_form = (retry != Retry::Never).then(|| {
        let (slug, video) = (slug.clone(), video.clone());
        view! {
            <ActionForm action=summarize attr:data-testid="retry">
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="link" value=video />
                <button type="submit"
                    class="inline-flex min-w-32 items-center justify-center rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:cursor-not-allowed disabled:bg-slate-400"
                    disabled=move || waiting() || summarize.pending().get()
                    aria-busy=move || summarize.pending().get().to_string()>
                    {move || match remaining.get() {
                        _ if summarize.pending().get() => "Trying again…".to_owned(),
                        Some(left @ 1..) => format!("Try again in {left} s"),
                        _ => "Try again".to_owned(),
                    }}
                </button>
            </ActionForm>
        }
    });
    let paste_form = {
        view! {
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
        }
    };
    view! {
        <Title text="Couldn't summarize" />
        <section class="mt-6 space-y-4 rounded-2xl border border-rose-200 bg-rose-50 p-4 sm:p-6" data-testid="failed">
            <div role="alert" class="space-y-2">
                <h1 class="text-xl font-semibold text-rose-900">"We couldn't summarize this video"</h1>
                <p class="leading-relaxed text-rose-900" data-testid="failure-message">{message}</p>
                {(!says_not_charged).then(|| view! {
                    <p class="text-sm text-rose-800">"Nothing was charged to your organization's quota."</p>
                })}
            </div>
            <div class="flex flex-wrap items-center gap-3">
                {retry_form}
                // Heard, not seen: the button itself shows when it is ready.
                <p role="status" aria-live="polite" class="sr-only">
                    {move || (retry != Retry::Never && remaining.get() == Some(0)).then_some("You can try again now.")}
                </p>
                <a href=back class="inline-flex items-center rounded-lg border border-rose-200 bg-white px-4 py-2 text-sm font-semibold text-rose-900 shadow-sm hover:bg-rose-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-rose-700">"Back to your summaries"</a>
            </div>
            {(retry == Retry::Later).then(|| view! {
                <p class="text-sm text-rose-800">"Trying again right away will probably fail the same way; give it a few minutes."</p>
            })}
            {move || retry_error().map(|error| view! {
                <p role="alert" class="text-sm font-medium text-rose-800" data-testid="retry-error">{error}</p>
            })}
        </section>
        {if paste_first {
            view! {
                <section class="mt-6 space-y-3 rounded-2xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6">
                    <h2 class="text-lg font-semibold">"Have the transcript? Paste it"</h2>
                    {paste_form}
                </section>
            }.into_any()
        } else {
            view! {
                <details class="mt-6 rounded-2xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6">
                    <summary class="cursor-pointer rounded font-semibold focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600">"Have the transcript? Paste it instead"</summary>
                    <div class="mt-3 space-y-3">{paste_form}</div>
                </details>
            }.into_any()
        }}
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

#[cfg(test)]
mod tests {
    use super::{Retry, retry_hint};

    #[test]
    fn retry_follows_the_servers_words() {
        let cases = [
            (
                "The AI service failed to answer (it is busy or down). Nothing was charged; try again in 28 seconds.",
                Retry::After(28),
            ),
            (
                "The AI service failed. Nothing was charged; try again in a second.",
                Retry::After(5),
            ),
            (
                "The AI service failed. Nothing was charged; try again in about 4 minutes.",
                Retry::After(240),
            ),
            (
                "The AI service failed. Nothing was charged; you can try again now.",
                Retry::Now,
            ),
            (
                "We couldn't reach YouTube just now. Please try again in a minute.",
                Retry::After(60),
            ),
            ("Summarizing took too long. Please try again.", Retry::Now),
            (
                "YouTube is refusing our requests for now (rate limit or bot check). Try again in a few minutes. You can paste…",
                Retry::Later,
            ),
            (
                "The AI service could not summarize this transcript. Nothing was charged; please try again later.",
                Retry::Later,
            ),
            (
                "This video has no captions on YouTube, so there is no transcript to summarize. You can paste or upload the transcript yourself (.txt, .srt or .vtt) and we'll summarize that.",
                Retry::Never,
            ),
            (
                "This video is unavailable on YouTube: it may have been removed, made private, or the link may be mistyped. Check the link and try again.",
                Retry::Never,
            ),
        ];
        for (message, want) in cases {
            assert_eq!(retry_hint(message), want, "{message}");
        }
    }
}
