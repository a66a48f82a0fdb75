//! The language an organization wants its summaries written in.
//!
//! A closed set of common languages, stored on `orgs.summary_language` by
//! code (`en`, `es`, …; NULL: "the video's own language") and used as the
//! `videos.variant` key of a summary written in another language than the
//! video's. Being a closed set is what keeps the shared cache free of
//! tenant data: a variant key is one of these codes, never text a user
//! typed.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! languages {
    ($($variant:ident => $code:literal, $name:literal, $native:literal;)+) => {
        /// A language a summary can be written in (ISO 639-1 code).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum SummaryLanguage {
            $($variant,)+
        }

        impl SummaryLanguage {
            /// Every language offered, in the order the settings page lists them.
            pub const ALL: &'static [SummaryLanguage] = &[$(SummaryLanguage::$variant,)+];

            /// The ISO 639-1 code, as stored (`orgs.summary_language`, `videos.variant`).
            pub fn code(self) -> &'static str {
                match self { $(SummaryLanguage::$variant => $code,)+ }
            }

            /// The English name, as the model is told (`Spanish`).
            pub fn name(self) -> &'static str {
                match self { $(SummaryLanguage::$variant => $name,)+ }
            }

            /// The name in the language itself (`Español`).
            pub fn native_name(self) -> &'static str {
                match self { $(SummaryLanguage::$variant => $native,)+ }
            }
        }
    };
}

languages! {
    English => "en", "English", "English";
    Spanish => "es", "Spanish", "Español";
    French => "fr", "French", "Français";
    German => "de", "German", "Deutsch";
    Italian => "it", "Italian", "Italiano";
    Portuguese => "pt", "Portuguese", "Português";
    Dutch => "nl", "Dutch", "Nederlands";
    Polish => "pl", "Polish", "Polski";
    Russian => "ru", "Russian", "Русский";
    Ukrainian => "uk", "Ukrainian", "Українська";
    Turkish => "tr", "Turkish", "Türkçe";
    Arabic => "ar", "Arabic", "العربية";
    Hindi => "hi", "Hindi", "हिन्दी";
    Bengali => "bn", "Bengali", "বাংলা";
    Urdu => "ur", "Urdu", "اردو";
    Indonesian => "id", "Indonesian", "Bahasa Indonesia";
    Vietnamese => "vi", "Vietnamese", "Tiếng Việt";
    Thai => "th", "Thai", "ไทย";
    Japanese => "ja", "Japanese", "日本語";
    Korean => "ko", "Korean", "한국어";
    Chinese => "zh", "Chinese", "中文";
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Choose one of the listed languages, or the video's own language.")]
pub struct SummaryLanguageError;

impl SummaryLanguage {
    /// A code from the closed set (`en`, `ES`, ` pt `); nothing else.
    pub fn parse(input: &str) -> Result<SummaryLanguage, SummaryLanguageError> {
        let code = input.trim().to_ascii_lowercase();
        SummaryLanguage::ALL
            .iter()
            .copied()
            .find(|l| l.code() == code)
            .ok_or(SummaryLanguageError)
    }

    /// The settings form's value: empty (or `video`) is "the video's own
    /// language", `None`; anything else must be a listed code.
    pub fn parse_setting(input: &str) -> Result<Option<SummaryLanguage>, SummaryLanguageError> {
        match input.trim() {
            "" | "video" => Ok(None),
            code => SummaryLanguage::parse(code).map(Some),
        }
    }

    /// The language of a caption track code (`es`, `es-419`, `pt-BR`,
    /// `zh-Hans`), when it is one of ours.
    pub fn of_track(code: &str) -> Option<SummaryLanguage> {
        let base = code.split(['-', '_']).next().unwrap_or("");
        SummaryLanguage::parse(base).ok()
    }

    /// True when a summary in the track's language (`en-GB`) already is in
    /// this language (`en`), so no variant is needed.
    pub fn matches_track(self, code: &str) -> bool {
        SummaryLanguage::of_track(code) == Some(self)
    }

    /// `English`, or `Español (Spanish)`: what the settings page shows.
    pub fn label(self) -> String {
        if self.name() == self.native_name() {
            self.name().to_owned()
        } else {
            format!("{} ({})", self.native_name(), self.name())
        }
    }
}

impl fmt::Display for SummaryLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for SummaryLanguage {
    type Error = SummaryLanguageError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SummaryLanguage::parse(&value)
    }
}

impl From<SummaryLanguage> for String {
    fn from(value: SummaryLanguage) -> String {
        value.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_round_trip() {
        for &language in SummaryLanguage::ALL {
            assert_eq!(SummaryLanguage::parse(language.code()), Ok(language));
            assert_eq!(language.code().len(), 2);
            assert!(language.code().chars().all(|c| c.is_ascii_lowercase()));
        }
        assert_eq!(SummaryLanguage::parse(" ES "), Ok(SummaryLanguage::Spanish));
    }

    #[test]
    fn anything_outside_the_set_is_refused() {
        for bad in [
            "",
            "xx",
            "english",
            "en-US",
            "es; drop table orgs",
            "zz",
            "video",
        ] {
            assert!(SummaryLanguage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_setting_has_a_none_for_the_videos_own_language() {
        assert_eq!(SummaryLanguage::parse_setting(""), Ok(None));
        assert_eq!(SummaryLanguage::parse_setting("video"), Ok(None));
        assert_eq!(
            SummaryLanguage::parse_setting("hi"),
            Ok(Some(SummaryLanguage::Hindi))
        );
        assert!(SummaryLanguage::parse_setting("klingon").is_err());
    }

    #[test]
    fn caption_tracks_match_on_their_base_language() {
        assert_eq!(
            SummaryLanguage::of_track("es-419"),
            Some(SummaryLanguage::Spanish)
        );
        assert_eq!(
            SummaryLanguage::of_track("pt-BR"),
            Some(SummaryLanguage::Portuguese)
        );
        assert_eq!(
            SummaryLanguage::of_track("zh-Hans"),
            Some(SummaryLanguage::Chinese)
        );
        assert_eq!(SummaryLanguage::of_track("cs"), None);
        assert!(SummaryLanguage::English.matches_track("en-GB"));
        assert!(!SummaryLanguage::English.matches_track("es"));
    }

    #[test]
    fn serde_uses_the_code_and_refuses_others() {
        assert_eq!(
            serde_json::to_string(&SummaryLanguage::Hindi).unwrap(),
            "\"hi\""
        );
        assert_eq!(
            serde_json::from_str::<SummaryLanguage>("\"de\"").unwrap(),
            SummaryLanguage::German
        );
        assert!(serde_json::from_str::<SummaryLanguage>("\"xx\"").is_err());
    }

    #[test]
    fn labels_name_both_when_they_differ() {
        assert_eq!(SummaryLanguage::English.label(), "English");
        assert_eq!(SummaryLanguage::Spanish.label(), "Español (Spanish)");
    }
}
