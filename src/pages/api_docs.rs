//! `/api/docs`: the REST API's reference for people, rendered on the
//! server from the same OpenAPI document programs read.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::load_error::LoadError,
    domain::api_reference::{ApiField, ApiGroup, ApiOperation, ApiReference},
    server_fns::api_docs::get_api_reference,
};

#[component]
pub fn ApiDocsPage() -> impl IntoView {
    let reference = Resource::new(|| (), |_| get_api_reference());
    view! {
        <Title text="API reference" />
        <Suspense fallback=|| view! { <p class="p-8 text-slate-500">"Loading the reference…"</p> }>
            {move || Suspend::new(async move {
                match reference.await {
                    Ok(reference) => view! { <Reference reference /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Reference(reference: ApiReference) -> impl IntoView {
    let nav = reference
        .groups
        .iter()
        .map(|group| {
            let href = format!("#{}", group.name);
            let name = group.name.clone();
            view! {
                <li>
                    <a href=href class="block rounded-full border border-slate-200 bg-white px-3 py-1 capitalize text-slate-700 hover:bg-slate-100 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 lg:rounded lg:border-0 lg:bg-transparent lg:px-2">
                        {name}
                    </a>
                </li>
            }
        })
        .collect_view();
    let groups = reference
        .groups
        .into_iter()
        .map(|group| view! { <Group group /> })
        .collect_view();
    view! {
        // On phones the sections are a row of links above the title; from
        // lg up, a sticky column beside the reference.
        <div class="mx-auto flex max-w-6xl flex-col gap-6 px-4 py-10 sm:px-6 lg:flex-row lg:gap-10">
            <nav aria-label="API sections" class="h-fit lg:sticky lg:top-6 lg:w-48 lg:shrink-0">
                <ul class="flex flex-wrap gap-2 text-sm lg:block lg:space-y-1">{nav}</ul>
            </nav>
            <div class="min-w-0 flex-1">
                <h1 class="text-3xl font-bold tracking-tight text-slate-900">{reference.title}</h1>
                <p class="mt-3 max-w-3xl text-slate-600">{rich(reference.description)}</p>
                <Quickstart />
                {groups}
            </div>
        </div>
    }
}

#[component]
fn Quickstart() -> impl IntoView {
    let example = "curl -s -X POST \"$TLDW/api/v1/orgs/$ORG/summaries\" \\\n  -H \"Authorization: Bearer $TLDW_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -H \"Idempotency-Key: $(uuidgen)\" \\\n  -d '{\"url\": \"https://youtu.be/dQw4w9WgXcQ\"}'";
    view! {
        <section aria-labelledby="quickstart" class="mt-8 rounded-2xl border border-slate-200 bg-white p-6 shadow-sm">
            <h2 id="quickstart" class="text-lg font-semibold text-slate-900">"Quick start"</h2>
            <ol class="mt-3 list-decimal space-y-2 pl-5 text-sm text-slate-700">
                <li>"An owner or admin creates an API key on the organization's settings page. It is shown once; keep it secret."</li>
                <li>"Send it as " <code class="rounded bg-slate-100 px-1">"Authorization: Bearer tldw_…"</code> " on every call."</li>
                <li>"A summary that is ready comes back at once (200); one being made answers 202 with " <code class="rounded bg-slate-100 px-1">"Location"</code> " and " <code class="rounded bg-slate-100 px-1">"Retry-After"</code> ": poll it."</li>
                <li>"Errors are " <code class="rounded bg-slate-100 px-1">"{\"error\": {\"code\", \"message\"}}"</code> "; 429 says " <code class="rounded bg-slate-100 px-1">"quota_exceeded"</code> " or " <code class="rounded bg-slate-100 px-1">"rate_limited"</code> "."</li>
            </ol>
            <pre class="mt-4 overflow-x-auto rounded-lg bg-slate-900 p-4 text-xs leading-relaxed text-slate-100"><code>{example}</code></pre>
            <p class="mt-3 text-sm text-slate-600">
                "The machine-readable document: "
                <a href="/api/v1/openapi.json" class="font-medium text-indigo-700 underline hover:text-indigo-900">"/api/v1/openapi.json"</a>
                " (OpenAPI 3.1)."
            </p>
        </section>
    }
}

#[component]
fn Group(group: ApiGroup) -> impl IntoView {
    let operations = group
        .operations
        .into_iter()
        .map(|operation| view! { <Operation operation /> })
        .collect_view();
    view! {
        <section id=group.name.clone() aria-labelledby=format!("{}-title", group.name) class="mt-12 scroll-mt-6">
            <h2 id=format!("{}-title", group.name) class="text-2xl font-bold capitalize tracking-tight text-slate-900">
                {group.name.clone()}
            </h2>
            <p class="mt-1 text-slate-600">{rich(group.description)}</p>
            <div class="mt-6 space-y-6">{operations}</div>
        </section>
    }
    // Erased: the nested Reference > Group > Operation types otherwise
    // overflow rustc's query depth when building the wasm bundle.
    .into_any()
}

#[component]
fn Operation(operation: ApiOperation) -> impl IntoView {
    let badge = match operation.method.as_str() {
        "GET" => "bg-emerald-100 text-emerald-800",
        "POST" => "bg-indigo-100 text-indigo-800",
        "PATCH" => "bg-amber-100 text-amber-800",
        "DELETE" => "bg-rose-100 text-rose-800",
        _ => "bg-slate-100 text-slate-800",
    };
    let answers = operation
        .responses
        .into_iter()
        .map(|answer| {
            view! {
                <li class="flex gap-3">
                    <span class="w-10 shrink-0 font-mono font-semibold text-slate-900">{answer.status}</span>
                    <span class="min-w-0 text-slate-600">{rich(answer.description)}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <article class="rounded-2xl border border-slate-200 bg-white p-5 shadow-sm">
            <h3 class="flex flex-wrap items-center gap-2 font-mono text-sm">
                <span class=format!("rounded px-2 py-0.5 text-xs font-bold {badge}")>{operation.method}</span>
                <span class="break-all text-slate-900">{operation.path}</span>
            </h3>
            <p class="mt-2 font-medium text-slate-900">{rich(operation.summary)}</p>
            <Show when={let d = operation.description.clone(); move || !d.is_empty()}>
                <p class="mt-1 text-sm text-slate-600">{rich(operation.description.clone())}</p>
            </Show>
            <Fields title="Parameters" fields=operation.parameters />
            <Fields title="JSON body" fields=operation.body />
            <h4 class="mt-4 text-xs font-semibold uppercase tracking-wide text-slate-500">"Answers"</h4>
            <ul class="mt-2 space-y-1 text-sm">{answers}</ul>
        </article>
    }
    .into_any()
}

#[component]
fn Fields(title: &'static str, fields: Vec<ApiField>) -> impl IntoView {
    if fields.is_empty() {
        return ().into_any();
    }
    let rows = fields
        .into_iter()
        .map(|field| {
            view! {
                <tr class="border-t border-slate-100 align-top">
                    <td class="py-1.5 pr-3 font-mono text-slate-900">
                        {field.name}
                        {field.required.then(|| view! { <span class="ml-1 text-rose-600" title="required">"*"</span> })}
                    </td>
                    <td class="py-1.5 pr-3 text-slate-500">{field.kind}</td>
                    <td class="py-1.5 text-slate-600">{rich(field.description)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h4 class="mt-4 text-xs font-semibold uppercase tracking-wide text-slate-500">{title}</h4>
        <div class="mt-1 overflow-x-auto">
            <table class="w-full text-left text-sm">
                <caption class="sr-only">{title}</caption>
                <thead class="sr-only">
                    <tr><th scope="col">"Name"</th><th scope="col">"Type"</th><th scope="col">"Description"</th></tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The document's prose marks code with backticks (it is written for
/// Markdown renderers too): shown as code here, not as literal backticks.
/// Text with an unmatched backtick is shown as it is.
fn rich(text: String) -> impl IntoView {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return text.into_any();
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                view! { <code class="rounded bg-slate-100 px-0.5 text-[0.9em] text-slate-800">{part.to_owned()}</code> }.into_any()
            } else {
                part.to_owned().into_any()
            }
        })
        .collect_view()
        .into_any()
}
