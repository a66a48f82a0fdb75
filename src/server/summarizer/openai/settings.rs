//! Settings of the OpenAI-compatible summarizer, from the environment.

use crate::server::config::ConfigError;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// How the JSON answer is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `response_format: json_schema` with a strict schema (OpenAI, recent
    /// Ollama and vLLM).
    JsonSchema,
    /// `response_format: json_object`.
    JsonObject,
    /// Nothing: rely on the prompt (servers that reject the field).
    None,
}

#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    /// `OPENAI_API_KEY`. Any non-empty value for servers without keys.
    pub api_key: SecretString,
    /// `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub base_url: Url,
    /// `OPENAI_MODEL`, default `gpt-4o-mini`.
    pub model: String,
    /// `OPENAI_TIMEOUT_SECS`: the longest wait for the response to start and
    /// for each further piece of a streaming answer.
    pub timeout: Duration,
    /// The longest one call may take in all, streaming included.
    pub max_call_duration: Duration,
    /// `OPENAI_MAX_COMPLETION_TOKENS`: the output cap of each call.
    pub max_completion_tokens: u32,
    /// `OPENAI_MAX_RETRIES`: retries after the first attempt of each call.
    pub max_retries: u32,
    /// Backoff before retry n is uniform in `0..=min(max, base·2ⁿ)`.
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// `OPENAI_CHUNK_TOKENS`: transcript (and notes) per call, in
    /// approximate tokens (chars / 4). Longer transcripts are map-reduced.
    pub chunk_tokens: usize,
    /// `OPENAI_RESPONSE_FORMAT`: `json_schema` (default), `json_object`, `none`.
    pub response_format: ResponseFormat,
    /// Cap on the bytes of one response.
    pub max_response_bytes: usize,
    /// `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`: sent as `OpenAI-Organization`
    /// and `OpenAI-Project`.
    pub org_id: Option<String>,
    pub project_id: Option<String>,
    /// `OPENAI_API_VERSION`: Azure OpenAI. The base URL is the resource
    /// (`https://NAME.openai.azure.com`), the model is the deployment, and
    /// requests go to `/openai/deployments/{model}/chat/completions` with
    /// `api-version` and an `api-key` header.
    pub azure_api_version: Option<String>,
}

impl OpenAiSettings {
    /// Defaults for everything but the key.
    pub fn new(api_key: SecretString) -> OpenAiSettings {
        OpenAiSettings {
            api_key,
            base_url: Url::parse(DEFAULT_BASE_URL).expect("a valid default URL"),
            model: DEFAULT_MODEL.to_owned(),
            timeout: Duration::from_secs(60),
            max_call_duration: Duration::from_secs(300),
            max_completion_tokens: 1500,
            max_retries: 3,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(20),
            chunk_tokens: 12_000,
            response_format: ResponseFormat::JsonSchema,
            max_response_bytes: 2 * 1024 * 1024,
            org_id: None,
            project_id: None,
            azure_api_version: None,
        }
    }

    /// `None` without `OPENAI_API_KEY` (the built-in summarizer is used).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OpenAiSettings>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get("OPENAI_API_KEY") else {
            return Ok(None);
        };
        let mut settings = OpenAiSettings::new(SecretString::from(key));
        if let Some(v) = get("OPENAI_BASE_URL") {
            settings.base_url = Url::parse(&v)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| ConfigError {
                    var: "OPENAI_BASE_URL",
                    reason: format!(
                        "expected an http(s) URL ending in /v1, such as https://api.openai.com/v1 or http://localhost:11434/v1, got {v:?}"
                    ),
                })?;
        }
        if let Some(v) = get("OPENAI_MODEL") {
            settings.model = v;
        }
        settings.org_id = get("OPENAI_ORG_ID");
        settings.project_id = get("OPENAI_PROJECT_ID");
        settings.azure_api_version = get("OPENAI_API_VERSION");
        let number = |var: &'static str, range: std::ops::RangeInclusive<u64>| {
            get(var)
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| ConfigError {
                            var,
                            reason: format!(
                                "expected a number from {} to {}, got {v:?}",
                                range.start(),
                                range.end()
                            ),
                        })
                })
                .transpose()
        };
        if let Some(n) = number("OPENAI_TIMEOUT_SECS", 1..=3600)? {
            settings.timeout = Duration::from_secs(n);
            settings.max_call_duration = settings.max_call_duration.max(settings.timeout * 5);
        }
        if let Some(n) = number("OPENAI_MAX_COMPLETION_TOKENS", 64..=100_000)? {
            settings.max_completion_tokens = n as u32;
        }
        if let Some(n) = number("OPENAI_MAX_RETRIES", 0..=10)? {
            settings.max_retries = n as u32;
        }
        if let Some(n) = number("OPENAI_CHUNK_TOKENS", 500..=1_000_000)? {
            settings.chunk_tokens = n as usize;
        }
        if let Some(v) = get("OPENAI_RESPONSE_FORMAT") {
            settings.response_format = match v.as_str() {
                "json_schema" => ResponseFormat::JsonSchema,
                "json_object" => ResponseFormat::JsonObject,
                "none" => ResponseFormat::None,
                _ => {
                    return Err(ConfigError {
                        var: "OPENAI_RESPONSE_FORMAT",
                        reason: format!("expected json_schema, json_object or none, got {v:?}"),
                    });
                }
            };
        }
        Ok(Some(settings))
    }

    /// OpenAI itself (or Azure OpenAI), as opposed to a compatible server.
    pub(super) fn is_openai(&self) -> bool {
        self.base_url.host_str().is_some_and(|h| {
            h == "openai.com" || h.ends_with(".openai.com") || h.ends_with(".openai.azure.com")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment() {
        assert!(OpenAiSettings::from_lookup(|_| None).unwrap().is_none());
        let settings = OpenAiSettings::from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some("sk-test".into()),
            "OPENAI_BASE_URL" => Some("http://localhost:11434/v1".into()),
            "OPENAI_MODEL" => Some("llama3.2:1b".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        assert_eq!(settings.model, "llama3.2:1b");
        assert!(!settings.is_openai());
        assert!(!format!("{settings:?}").contains("sk-test"));
        let bad = OpenAiSettings::from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some("k".into()),
            "OPENAI_MAX_RETRIES" => Some("lots".into()),
            _ => None,
        });
        assert_eq!(bad.unwrap_err().var, "OPENAI_MAX_RETRIES");
    }
}
