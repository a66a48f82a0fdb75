//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane). Hashing is slow on purpose, so it runs off the async threads,
//! and only a few at once: each run holds 19 MiB, and the blocking pool
//! would otherwise start one per request (512 at once is 9.5 GiB).

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use std::sync::{
    OnceLock,
    atomic::{AtomicUsize, Ordering},
};
use tokio::sync::Semaphore;

use crate::domain::NewPassword;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// How many argon2 runs may hold their memory at once: one per core (they
/// are CPU-bound, more would only queue inside the kernel), at least two.
fn permits() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(permits()))
}

/// Runs argon2 work on the blocking pool once a permit is free. Requests
/// beyond the permits wait their turn (sign-in is rate limited before it
/// gets here, so the queue stays short).
async fn gated<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _permit = gate()
        .acquire()
        .await
        .context("the argon2 gate is closed")?;
    tokio::task::spawn_blocking(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        let out = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        out
    })
    .await
    .context("password hashing panicked")
}

/// argon2 runs in progress, and the most there ever were at once (a test
/// reads it to check the gate).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: NewPassword) -> anyhow::Result<String> {
    gated(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))
    })
    .await?
}

/// Checks `password` against `stored`. With no stored hash (no such account)
/// it still does the full work against a decoy, so a wrong email costs the
/// same time as a wrong password and does not reveal which accounts exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    gated(move || {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => (decoy().to_owned(), false),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    })
    .await
    .unwrap_or(false)
}

fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"decoy password that nobody has", &salt)
            .expect("argon2 works")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn argon2_work_is_capped_however_many_ask_at_once() {
        let runs: Vec<_> = (0..24)
            .map(|_| tokio::spawn(verify("a guess".into(), None)))
            .collect();
        for run in runs {
            assert!(!run.await.unwrap());
        }
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(peak >= 1, "nothing ran");
        assert!(peak <= permits(), "{peak} runs at once, cap {}", permits());
    }

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let password = NewPassword::parse("correct horse battery", "a@example.com").unwrap();
        let stored = hash(password).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(stored)).await);
        assert!(!verify("decoy password that nobody has".into(), None).await);
    }
}
