//! The built-in summarizer: offline, free, deterministic.
//!
//! 1. The transcript becomes sentences: split at `.`, `!`, `?` when captions
//!    carry punctuation, and at line boundaries after ~25 words (at most 50)
//!    when they don't (auto-generated captions). Each sentence keeps the
//!    start time of its first line.
//! 2. Each sentence becomes a TF-IDF vector over its content words (lower
//!    case, stop words and filler removed, plurals folded), normalised.
//! 3. A sentence's score is its cosine similarity with the centroid of all
//!    sentences (how representative it is of the whole talk), damped for
//!    sentences with very few content words.
//! 4. Key points: the video is cut into N equal runs of sentences (N = 5…8,
//!    growing with length) and each run contributes its best sentence,
//!    penalised for resembling points already picked, so the points cover
//!    the whole video without repeating themselves. TL;DR: the one or two
//!    best-scoring sentences overall.
//!
//! Everything is O(words + sentences · N); ordered maps and index
//! tie-breaks keep the output byte-identical for the same input.

use super::{
    BoxFuture, KeyPoint, Language, PROMPT_VERSION, Progress, ProgressFn, SummarizeError,
    Summarizer, Summary, TranscriptLine, Usage, chunking::seconds, clean_caption,
};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

/// The `model` recorded on summaries it makes.
pub const EXTRACTIVE_MODEL: &str = "tldw-extractive";

const MIN_SENTENCE_WORDS: usize = 4;
const SOFT_MAX_WORDS: usize = 25;
const HARD_MAX_WORDS: usize = 50;
/// Sentences with fewer content words than this are damped.
const FULL_WEIGHT_TERMS: usize = 6;
/// How much resemblance to an already chosen point costs.
const REDUNDANCY_PENALTY: f64 = 0.5;

#[derive(Clone, Debug)]
pub struct ExtractiveSummarizer {
    pub min_points: usize,
    pub max_points: usize,
}

impl Default for ExtractiveSummarizer {
    fn default() -> Self {
        ExtractiveSummarizer {
            min_points: 5,
            max_points: 8,
        }
    }
}

impl Summarizer for ExtractiveSummarizer {
    fn name(&self) -> String {
        EXTRACTIVE_MODEL.to_owned()
    }

    fn built_in(&self) -> bool {
        true
    }

    /// Extracts sentences, so the summary is always in the transcript's
    /// language, whatever `_language` asks.
    fn summarize_in<'a>(
        &'a self,
        _title: &'a str,
        transcript: &'a [TranscriptLine],
        _language: Language<'a>,
        progress: &'a ProgressFn,
    ) -> BoxFuture<'a, Result<Summary, SummarizeError>> {
        Box::pin(async move {
            progress(Progress::Chunk { done: 0, total: 1 });
            let summary = self.summarize_now(transcript)?;
            progress(Progress::Text(summary.tldr.clone()));
            for point in &summary.key_points {
                progress(Progress::Text(format!("\n• {}", point.text)));
            }
            progress(Progress::Chunk { done: 1, total: 1 });
            Ok(summary)
        })
    }
}

struct Sentence {
    start_ms: u64,
    words: Vec<String>,
    /// (term id, weight), sorted by id, unit length.
    vector: Vec<(usize, f64)>,
    content_terms: usize,
}

impl ExtractiveSummarizer {
    /// The summary, computed synchronously (a 3-hour transcript takes
    /// milliseconds).
    pub fn summarize_now(&self, transcript: &[TranscriptLine]) -> Result<Summary, SummarizeError> {
        let mut sentences = split_sentences(transcript);
        if sentences.is_empty() {
            return Err(SummarizeError::EmptyTranscript);
        }
        vectorise(&mut sentences);
        let scores = centrality(&sentences);

        let wanted = (self.min_points + sentences.len() / 150)
            .min(self.max_points)
            .max(1)
            .min(sentences.len());
        let picked = pick_key_points(&sentences, &scores, wanted);
        let key_points = picked
            .iter()
            .map(|&i| KeyPoint {
                text: render(&sentences[i].words),
                at_seconds: seconds(sentences[i].start_ms),
            })
            .collect();

        let tldr = pick_tldr(&sentences, &scores)
            .iter()
            .map(|&i| render(&sentences[i].words))
            .collect::<Vec<_>>()
            .join(" ");

        Ok(Summary {
            tldr,
            key_points,
            model: EXTRACTIVE_MODEL.to_owned(),
            prompt_version: PROMPT_VERSION.to_owned(),
            usage: Usage::default(),
            built_in: true,
        })
    }
}

fn split_sentences(transcript: &[TranscriptLine]) -> Vec<Sentence> {
    let mut sentences = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start_ms = 0;
    let mut flush = |words: &mut Vec<String>, start_ms: u64| {
        if !words.is_empty() {
            sentences.push(Sentence {
                start_ms,
                words: std::mem::take(words),
                vector: Vec::new(),
                content_terms: 0,
            });
        }
    };
    for line in transcript {
        let cleaned = clean_caption(&line.text);
        for word in cleaned.split_whitespace() {
            if words.is_empty() {
                start_ms = line.start_ms;
            }
            words.push(word.to_owned());
            if (ends_sentence(word) && words.len() >= MIN_SENTENCE_WORDS)
                || words.len() >= HARD_MAX_WORDS
            {
                flush(&mut words, start_ms);
            }
        }
        if words.len() >= SOFT_MAX_WORDS {
            flush(&mut words, start_ms);
        }
    }
    flush(&mut words, start_ms);
    sentences
}

fn ends_sentence(word: &str) -> bool {
    let trimmed = word.trim_end_matches(['"', '\'', ')', '”', '’', ']']);
    if !trimmed.ends_with(['.', '!', '?', '…']) {
        return false;
    }
    let lower = trimmed.to_lowercase();
    !matches!(
        lower.as_str(),
        "mr." | "mrs." | "ms." | "dr." | "prof." | "st." | "vs." | "e.g." | "i.e." | "approx."
    )
}

/// Content words of one caption word: lower case, punctuation stripped,
/// stop words dropped, simple plurals folded.
fn terms(word: &str, out: &mut Vec<String>) {
    for piece in word
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|p| !p.is_empty())
    {
        let mut term = piece.to_lowercase().replace('’', "'");
        term = term.trim_matches('\'').to_owned();
        if let Some(stem) = term.strip_suffix("'s") {
            term = stem.to_owned();
        }
        if term.chars().count() < 2 || STOP_WORDS.contains(term.as_str()) {
            continue;
        }
        if term.len() > 4 && term.ends_with("ies") {
            term.truncate(term.len() - 3);
            term.push('y');
        } else if term.len() > 3
            && term.ends_with('s')
            && !term.ends_with("ss")
            && !term.ends_with("us")
            && !term.ends_with("is")
        {
            term.pop();
        }
        out.push(term);
    }
}

fn vectorise(sentences: &mut [Sentence]) {
    let mut vocabulary: BTreeMap<String, usize> = BTreeMap::new();
    let mut counts: Vec<BTreeMap<usize, u32>> = Vec::with_capacity(sentences.len());
    let mut buffer = Vec::new();
    for sentence in sentences.iter() {
        let mut tf: BTreeMap<usize, u32> = BTreeMap::new();
        for word in &sentence.words {
            buffer.clear();
            terms(word, &mut buffer);
            for term in buffer.drain(..) {
                let next = vocabulary.len();
                let id = *vocabulary.entry(term).or_insert(next);
                *tf.entry(id).or_default() += 1;
            }
        }
        counts.push(tf);
    }
    let mut df = vec![0u32; vocabulary.len()];
    for tf in &counts {
        for &id in tf.keys() {
            df[id] += 1;
        }
    }
    let n = sentences.len() as f64;
    for (sentence, tf) in sentences.iter_mut().zip(counts) {
        sentence.content_terms = tf.values().map(|&c| c as usize).sum();
        let mut vector: Vec<(usize, f64)> = tf
            .into_iter()
            .map(|(id, count)| {
                let idf = ((1.0 + n) / (1.0 + f64::from(df[id]))).ln() + 1.0;
                (id, (1.0 + f64::from(count).ln()) * idf)
            })
            .collect();
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut vector {
                *w /= norm;
            }
        }
        sentence.vector = vector;
    }
}

/// Cosine similarity of each sentence with the centroid, damped for
/// sentences with few content words.
fn centrality(sentences: &[Sentence]) -> Vec<f64> {
    let dims = sentences
        .iter()
        .flat_map(|s| s.vector.iter().map(|&(id, _)| id + 1))
        .max()
        .unwrap_or(0);
    let mut centroid = vec![0.0f64; dims];
    for sentence in sentences {
        for &(id, w) in &sentence.vector {
            centroid[id] += w;
        }
    }
    let norm = centroid.iter().map(|w| w * w).sum::<f64>().sqrt();
    sentences
        .iter()
        .map(|s| {
            if norm == 0.0 {
                return 0.0;
            }
            let cosine = s
                .vector
                .iter()
                .map(|&(id, w)| w * centroid[id])
                .sum::<f64>()
                / norm;
            let damping =
                (s.content_terms.min(FULL_WEIGHT_TERMS) as f64 / FULL_WEIGHT_TERMS as f64).sqrt();
            cosine * damping
        })
        .collect()
}

fn similarity(a: &[(usize, f64)], b: &[(usize, f64)]) -> f64 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// The best candidate in `range` by score minus resemblance to `chosen`;
/// sentences with enough words are preferred when the range has any.
fn best_in(
    sentences: &[Sentence],
    scores: &[f64],
    range: std::ops::Range<usize>,
    chosen: &[usize],
) -> Option<usize> {
    let substantial: Vec<usize> = range
        .clone()
        .filter(|&i| sentences[i].words.len() >= MIN_SENTENCE_WORDS && !chosen.contains(&i))
        .collect();
    let candidates: Vec<usize> = if substantial.is_empty() {
        range.filter(|i| !chosen.contains(i)).collect()
    } else {
        substantial
    };
    let value = |i: usize| {
        let redundancy = chosen
            .iter()
            .map(|&c| similarity(&sentences[i].vector, &sentences[c].vector))
            .fold(0.0f64, f64::max);
        scores[i] - REDUNDANCY_PENALTY * redundancy
    };
    let mut best: Option<(usize, f64)> = None;
    for i in candidates {
        let v = value(i);
        // Strictly greater: ties go to the earlier sentence.
        if best.is_none_or(|(_, bv)| v > bv) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

fn pick_key_points(sentences: &[Sentence], scores: &[f64], wanted: usize) -> Vec<usize> {
    let n = sentences.len();
    let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
    for k in 0..wanted {
        let range = (k * n / wanted)..((k + 1) * n / wanted);
        if let Some(i) = best_in(sentences, scores, range, &chosen) {
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

fn pick_tldr(sentences: &[Sentence], scores: &[f64]) -> Vec<usize> {
    let all = 0..sentences.len();
    let Some(first) = best_in(sentences, scores, all.clone(), &[]) else {
        return Vec::new();
    };
    let mut picked = vec![first];
    if sentences[first].words.len() <= 30
        && let Some(second) = best_in(sentences, scores, all, &picked)
        && second != first
        && scores[second] > 0.0
    {
        picked.push(second);
    }
    picked.sort_unstable();
    picked
}

/// Words back into a sentence: first letter upper case, ends with
/// punctuation.
fn render(words: &[String]) -> String {
    let mut text = words.join(" ");
    if let Some(first) = text.chars().next()
        && first.is_lowercase()
    {
        let upper: String = first.to_uppercase().collect();
        text.replace_range(..first.len_utf8(), &upper);
    }
    if !text.ends_with(['.', '!', '?', '…', '"', '”', ')']) {
        text.push('.');
    }
    text
}

#[rustfmt::skip]
static STOP_WORDS: LazyLock<BTreeSet<&'static str>> = LazyLock::new(|| {
    [
        // English function words.
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
        "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below",
        "between", "both", "but", "by", "can", "can't", "cannot", "could", "couldn't", "did",
        "didn't", "do", "does", "doesn't", "doing", "don't", "down", "during", "each", "even",
        "ever", "every", "few", "for", "from", "further", "had", "hadn't", "has", "hasn't",
        "have", "haven't", "having", "he", "he'd", "he'll", "her", "here", "hers", "herself",
        "him", "himself", "his", "how", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is",
        "isn't", "it", "it'll", "its", "itself", "let", "let's", "me", "more", "most", "much",
        "must", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "one",
        "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "same",
        "she", "she'd", "she'll", "should", "shouldn't", "so", "some", "such", "than", "that",
        "that'll", "the", "their", "theirs", "them", "themselves", "then", "there", "these",
        "they", "they'd", "they'll", "they're", "they've", "this", "those", "through", "to",
        "too", "under", "until", "up", "upon", "us", "very", "was", "wasn't", "we", "we'd",
        "we'll", "we're", "we've", "were", "weren't", "what", "when", "where", "which", "while",
        "who", "whom", "why", "will", "with", "won't", "would", "wouldn't", "yet", "you", "you'd",
        "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves", "also",
        "another", "around", "away", "back", "many", "may", "might", "maybe", "still", "though",
        "thing", "things", "way", "ways", "well", "whether", "within", "without", "two", "three",
        "first", "next", "last", "new", "lot", "lots", "bit",
        // Spoken filler, common in captions.
        "actually", "ah", "alright", "anyway", "basically", "definitely", "eh", "going", "gonna",
        "got", "gotta", "get", "gets", "getting", "go", "goes", "guys", "hey", "hi", "hmm",
        "just", "kind", "kinda", "know", "like", "literally", "mean", "mm", "oh", "ok", "okay",
        "pretty", "probably", "quite", "really", "right", "said", "say", "says", "see", "so",
        "sort", "sorta", "stuff", "sure", "thank", "thanks", "think", "uh", "um", "wanna", "want",
        "yeah", "yes", "yep", "make", "made", "put", "take", "look", "lets", "come", "something",
        "someone", "anything", "everything", "nothing", "thats", "dont", "im", "youre", "theyre",
        "weve", "ive", "isnt", "doesnt", "didnt", "cant", "wont",
    ]
    .into_iter()
    .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: u64, text: &str) -> TranscriptLine {
        TranscriptLine {
            start_ms: s * 1000,
            text: text.into(),
        }
    }

    #[test]
    fn sentences_split_on_punctuation_and_keep_start_times() {
        let sentences = split_sentences(&[
            line(0, "Rust is a systems language. It has"),
            line(3, "no garbage collector at all."),
        ]);
        let texts: Vec<String> = sentences.iter().map(|s| s.words.join(" ")).collect();
        assert_eq!(
            texts,
            [
                "Rust is a systems language.",
                "It has no garbage collector at all."
            ]
        );
        assert_eq!(sentences[0].start_ms, 0);
        assert_eq!(sentences[1].start_ms, 0);
    }

    #[test]
    fn unpunctuated_captions_split_by_length() {
        let lines: Vec<_> = (0..20)
            .map(|i| line(i * 3, "so we take the borrow checker and then"))
            .collect();
        let sentences = split_sentences(&lines);
        assert!(sentences.len() > 3);
        assert!(sentences.iter().all(|s| s.words.len() <= HARD_MAX_WORDS));
    }

    #[test]
    fn terms_drop_stop_words_and_fold_plurals() {
        let mut out = Vec::new();
        for w in "The borrow checker's rules, and the libraries!".split_whitespace() {
            terms(w, &mut out);
        }
        assert_eq!(out, ["borrow", "checker", "rule", "library"]);
    }
}
