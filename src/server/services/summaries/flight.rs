//! One wait per cache row per process (security review 18g): when many
//! settle tasks of this process need the same row of the same video (many
//! orgs asking for one long video), the first one claims or polls for it
//! and the rest take its outcome, instead of each running its own
//! claim-and-peek loop against the pool. Across processes the lease still
//! decides who works; this only stops one process from asking N times.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};
use tokio::sync::watch;

use super::{Obtained, limits::TokenCap};
use crate::domain::{SummaryLanguage, VideoId};

/// A row (video, variant) as obtained under one cap: followers share a
/// flight only with a leader that had the same cap, so an org on a bigger
/// plan never inherits a smaller plan's "over the cap".
pub(super) type Key = (VideoId, Option<SummaryLanguage>, TokenCap);

type Outcome = watch::Receiver<Option<Obtained>>;

#[derive(Clone, Default)]
pub(super) struct Flights {
    open: Arc<Mutex<HashMap<Key, Outcome>>>,
}

enum Role {
    Leader(watch::Sender<Option<Obtained>>),
    Follower(Outcome),
}

/// Takes the leader's entry out when it is done, or dropped half way.
struct Landing<'a> {
    flights: &'a Flights,
    key: &'a Key,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.flights
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.key);
    }
}

impl Flights {
    /// Runs `work` if nobody in this process is obtaining `key`; otherwise
    /// waits for the one who is and takes its outcome as a waiter would:
    /// not from the cache (it waited) and with nothing billed to it. If
    /// that one goes away without an outcome, runs `work` itself.
    pub(super) async fn join(&self, key: Key, work: impl Future<Output = Obtained>) -> Obtained {
        let role = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.get(&key) {
                Some(outcome) => Role::Follower(outcome.clone()),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    open.insert(key.clone(), receiver);
                    Role::Leader(sender)
                }
            }
        };
        match role {
            Role::Leader(sender) => {
                let _landing = Landing {
                    flights: self,
                    key: &key,
                };
                let outcome = work.await;
                sender.send_replace(Some(outcome.clone()));
                outcome
            }
            Role::Follower(mut receiver) => {
                let shared = receiver
                    .wait_for(Option::is_some)
                    .await
                    .map(|outcome| outcome.clone());
                match shared {
                    Ok(Some(Ok((view, _)))) => Ok((view, false)),
                    Ok(Some(Err(failed))) => Err(failed.as_waiter()),
                    Ok(None) | Err(_) => work.await,
                }
            }
        }
    }

    /// How many rows this process is obtaining right now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::PlanId, server::services::summaries::Failed};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key() -> Key {
        (
            VideoId::parse("flightTest1").unwrap(),
            None,
            TokenCap {
                plan: PlanId::Free,
                max_tokens: 10,
            },
        )
    }

    #[tokio::test]
    async fn concurrent_joins_run_the_work_once_and_followers_are_not_billed() {
        let flights = Flights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let joins: Vec<_> = (0..20)
            .map(|_| {
                let (flights, runs, mut gate) = (flights.clone(), runs.clone(), gate.clone());
                tokio::spawn(async move {
                    flights
                        .join(key(), async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let _ = gate.wait_for(|open| *open).await;
                            Err(Failed {
                                message: "no".into(),
                                billed: crate::server::summarizer::Usage {
                                    prompt_tokens: 7,
                                    completion_tokens: 1,
                                },
                            })
                        })
                        .await
                })
            })
            .collect();
        // Every join is in (one leader waiting at the gate) before it opens.
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        let mut billed = 0;
        for join in joins {
            let failed = join.await.unwrap().unwrap_err();
            assert_eq!(failed.message, "no");
            billed += failed.billed_tokens();
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "the work ran more than once"
        );
        assert_eq!(billed, 8, "exactly the leader is billed");
        assert_eq!(flights.len(), 0, "the flight landed");
    }

    #[tokio::test]
    async fn a_follower_whose_leader_vanished_does_the_work_itself() {
        let flights = Flights::default();
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .join(key(), std::future::pending::<Obtained>())
                    .await
            })
        };
        while flights.len() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.join(key(), async { Err("mine".into()) }).await })
        };
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        let failed = follower.await.unwrap().unwrap_err();
        assert_eq!(failed.message, "mine");
        assert_eq!(flights.len(), 0);
    }
}
