//! An org's own data to take away: its history and every summary it got,
//! as JSON (for programs) or Markdown (for people). Owners only. Read in one
//! tenant transaction, so the export is one consistent snapshot and RLS
//! keeps every other org's rows out of it.

use serde::{Deserialize, Serialize};

use crate::{
    domain::{Permission, SummaryBody, SummaryView, summary::summary_markdown},
    error::AppError,
    server::{auth::identity::CurrentMember, db::Db},
};

/// Everything an org has, as the export carries it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgExport {
    pub org: ExportedOrg,
    /// When the export was made (RFC 3339).
    pub exported_at: String,
    /// Newest first.
    pub summaries: Vec<ExportedSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedOrg {
    pub slug: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// One entry of the org's history, with its summary when there is one.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedSummary {
    pub video_id: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    /// When the org first asked for it (RFC 3339).
    pub requested_at: String,
    /// The member who asked, while they are still a member.
    pub requested_by: Option<String>,
    /// Served from the shared cache rather than made for this org.
    pub from_cache: bool,
    /// Made from a transcript a member pasted (the org's own content).
    pub private: bool,
    pub model: Option<String>,
    /// Written by the built-in extractive summarizer, not a language model.
    pub built_in: Option<bool>,
    /// `null` while the summary is not ready (or failed).
    pub summary: Option<SummaryBody>,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
    Option<String>,
    bool,
    bool,
    Option<String>,
    Option<bool>,
    Option<serde_json::Value>,
);

/// The org's export. Owners only: it holds every member's history.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn export(db: &Db, member: &CurrentMember) -> Result<OrgExport, AppError> {
    member.require(Permission::ExportData)?;
    let mut tx = db.tenant(member.scope()).await?;
    let (slug, name, created_at, now): (
        String,
        String,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as("select slug, name, created_at, now() from orgs where id = $1")
        .bind(member.org.id.as_uuid())
        .fetch_one(tx.conn())
        .await?;
    // A pasted transcript's summary wins over the shared one (as on the
    // summary page); `accounts` is global, read only for the member's email.
    let rows: Vec<Row> = sqlx::query_as(
        "select s.video_id,
                case when o.video_id is not null then coalesce(s.title, v.title) else coalesce(v.title, s.title) end,
                v.channel, s.created_at, a.email, s.from_cache, o.video_id is not null,
                coalesce(o.model, v.model), coalesce(o.built_in, v.built_in),
                coalesce(o.summary, case when v.status = 'ready' then v.summary end)
         from user_summaries s
         left join own_transcript_summaries o on o.org_id = s.org_id and o.video_id = s.video_id
         left join videos v on v.video_id = s.video_id and v.variant = s.variant
         left join users u on u.org_id = s.org_id and u.id = s.user_id
         left join accounts a on a.id = u.account_id
         where s.org_id = $1
         order by s.created_at desc, s.id desc",
    )
    .bind(member.org.id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    let summaries = rows
        .into_iter()
        .map(
            |(video_id, title, channel, at, by, from_cache, private, model, built_in, summary)| {
                ExportedSummary {
                    video_id,
                    title,
                    channel,
                    requested_at: at.to_rfc3339(),
                    requested_by: by,
                    from_cache,
                    private,
                    model,
                    built_in,
                    // A body in an older shape is left out, not a failed export.
                    summary: summary.and_then(|s| serde_json::from_value(s).ok()),
                }
            },
        )
        .collect();
    Ok(OrgExport {
        org: ExportedOrg {
            slug,
            name,
            created_at: created_at.to_rfc3339(),
        },
        exported_at: now.to_rfc3339(),
        summaries,
    })
}

/// The export as one Markdown document: a heading for the org, then each
/// summary as the summary page's "Copy as Markdown" writes it.
pub fn markdown(export: &OrgExport) -> String {
    let mut out = format!(
        "# {} — tldw export\n\nOrganization `{}`, exported {}. {} video{} in the history.\n",
        escape(&export.org.name),
        export.org.slug,
        export.exported_at,
        export.summaries.len(),
        if export.summaries.len() == 1 { "" } else { "s" }
    );
    for item in &export.summaries {
        out.push_str("\n---\n\n");
        let requested = format!(
            "Requested {}{}{}.",
            item.requested_at,
            item.requested_by
                .as_deref()
                .map(|by| format!(" by {}", escape(by)))
                .unwrap_or_default(),
            if item.private {
                " (from a pasted transcript)"
            } else if item.from_cache {
                " (from the shared cache)"
            } else {
                ""
            }
        );
        match &item.summary {
            Some(body) => {
                let view = SummaryView {
                    video_id: item.video_id.clone(),
                    title: item.title.clone(),
                    channel: item.channel.clone(),
                    duration_seconds: None,
                    thumbnail_url: None,
                    body: body.clone(),
                    model: item.model.clone().unwrap_or_default(),
                    prompt_version: String::new(),
                    built_in: item.built_in.unwrap_or(false),
                    private: item.private,
                };
                // One level down: the export's own title is the only `#`.
                for line in summary_markdown(&view).lines() {
                    if line.starts_with('#') {
                        out.push('#');
                    }
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str(&format!("\n_{requested}_\n"));
            }
            None => {
                out.push_str(&format!(
                    "## {}\n\nNo summary (it failed or is not ready).\n\n_{requested}_\n",
                    escape(item.title.as_deref().unwrap_or(&item.video_id))
                ));
            }
        }
    }
    out
}

/// Plain text in Markdown: characters that would format are escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_[]<>".contains(c) {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KeyPoint;

    fn sample() -> OrgExport {
        OrgExport {
            org: ExportedOrg {
                slug: "acme".into(),
                name: "Acme [Inc]".into(),
                created_at: "2026-12-01T00:00:00+00:00".into(),
            },
            exported_at: "2026-12-07T00:00:00+00:00".into(),
            summaries: vec![
                ExportedSummary {
                    video_id: "dQw4w9WgXcQ".into(),
                    title: Some("A *song*".into()),
                    channel: Some("Rick".into()),
                    requested_at: "2026-12-02T00:00:00+00:00".into(),
                    requested_by: Some("ada@example.com".into()),
                    from_cache: true,
                    private: false,
                    model: Some("gpt".into()),
                    built_in: Some(false),
                    summary: Some(SummaryBody {
                        tldr: "Never gives you up.".into(),
                        key_points: vec![KeyPoint {
                            text: "A promise".into(),
                            at_seconds: 43,
                        }],
                    }),
                },
                ExportedSummary {
                    video_id: "aaaaaaaaaaa".into(),
                    title: None,
                    channel: None,
                    requested_at: "2026-12-03T00:00:00+00:00".into(),
                    requested_by: None,
                    from_cache: false,
                    private: false,
                    model: None,
                    built_in: None,
                    summary: None,
                },
            ],
        }
    }

    #[test]
    fn markdown_has_one_title_and_every_summary_below_it() {
        let md = markdown(&sample());
        assert_eq!(
            md.lines().filter(|l| l.starts_with("# ")).count(),
            1,
            "{md}"
        );
        assert!(md.starts_with("# Acme \\[Inc\\] — tldw export"), "{md}");
        assert!(md.contains("Never gives you up."), "{md}");
        assert!(md.contains("## [A \\*song\\*]"), "{md}");
        assert!(md.contains("t=43s"), "{md}");
        assert!(md.contains("No summary"), "{md}");
        assert!(md.contains("2 videos"), "{md}");
    }
}
