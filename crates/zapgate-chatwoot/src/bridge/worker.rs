//! The worker: claims due jobs (the oldest of each chat), runs them
//! concurrently, and records each outcome: done, retried with backoff,
//! waiting, or parked as a dead letter.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::task::{JoinError, JoinSet};
use zapgate_core::{
    Result,
    chatwoot::IntegrationStatus,
    jobs::{ClaimShare, Job, MessageLink},
    time::now_ms,
    token::random_bytes,
};

use super::{
    Bridge, Failure,
    payload::{INBOUND, JobPayload},
};

/// After a claim that found less than it could take, the next one waits
/// this long: under load the jobs stored and released meanwhile are claimed
/// together, instead of one claim (a write) for each of them.
const CLAIM_GAP: Duration = Duration::from_millis(1);

/// The `last_error` of a job whose integration is gone (deactivated or
/// replaced while it was stored): kept as a dead letter, never dropped.
const ORPHANED: &str = "its Chatwoot integration no longer exists (deactivated or replaced)";

/// The `last_error` of a job cut off by shutdown.
pub(super) const INTERRUPTED: &str = "interrupted by shutdown before it finished";

/// Keeps up to `batch` jobs running: claims again as soon as a slot frees
/// (a finished job may have released the next one of its chat) or a job is
/// stored, instead of waiting for a whole batch to finish. On shutdown it
/// claims nothing more, lets running jobs finish for up to `drain`, and
/// releases the rest (see [`Bridge::release`]).
pub(super) async fn run(bridge: Arc<Bridge>) {
    let slots = bridge.config.batch.max(1) as usize;
    let mut running = Running::default();
    let mut drained_at: Option<Instant> = None;
    let mut stop = bridge.stop.subscribe();
    loop {
        if *stop.borrow() {
            break;
        }
        while let Some(joined) = running.set.try_join_next_with_id() {
            running.finished(joined);
        }
        let free = slots.saturating_sub(running.set.len());
        if free > 0 {
            let gap = drained_at.map(|at| CLAIM_GAP.saturating_sub(at.elapsed()));
            if let Some(gap) = gap.filter(|g| !g.is_zero()) {
                tokio::time::sleep(gap).await;
            }
            // Read before the claim: an idle wait that began earlier is
            // answered only by a claim that began after it.
            let asked = bridge.idle.asked.load(Ordering::SeqCst);
            let now = now_ms();
            let lease_until = now + bridge.config.lease.as_millis() as i64;
            let share = running.share(
                bridge.config.per_integration,
                bridge.whatsapp.get().and_then(|w| w.session_owner()),
            );
            let claimed = bridge
                .store
                .claim_jobs(now, lease_until, free as u32, &share)
                .await;
            match claimed {
                Ok(jobs) => {
                    drained_at = (jobs.len() < free).then(Instant::now);
                    if jobs.is_empty() && running.set.is_empty() {
                        bridge.idle.seen.send_if_modified(|seen| {
                            let newer = asked > *seen;
                            *seen = (*seen).max(asked);
                            newer
                        });
                    }
                    for job in jobs {
                        running.spawn(&bridge, job, lease_until);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "bridge worker: could not claim jobs");
                    tokio::select! {
                        () = tokio::time::sleep(bridge.config.poll.max(Duration::from_secs(1))) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        if running.set.len() >= slots {
            // Full: only a finished job makes room.
            tokio::select! {
                Some(joined) = running.set.join_next_with_id() => running.finished(joined),
                _ = stop.changed() => {}
            }
            continue;
        }
        // Everything due is running: wait for a job to finish (its chat's
        // next one may be due), a new job, the poll, or shutdown.
        tokio::select! {
            Some(joined) = running.set.join_next_with_id(), if !running.set.is_empty() => {
                running.finished(joined);
            }
            () = bridge.wake.notified() => {}
            () = tokio::time::sleep(bridge.config.poll) => {}
            _ = stop.changed() => {}
        }
    }
    running.drain(&bridge).await;
}

/// The jobs running now, by task: their id, lease end and integration; and
/// how many run per integration.
#[derive(Default)]
struct Running {
    set: JoinSet<()>,
    jobs: HashMap<tokio::task::Id, (i64, i64, Arc<str>)>,
    per_integration: HashMap<Arc<str>, u32>,
}

impl Running {
    fn spawn(&mut self, bridge: &Arc<Bridge>, job: Job, lease_until: i64) {
        let job_id = job.id;
        let integration: Arc<str> = job.integration_id.as_str().into();
        *self.per_integration.entry(integration.clone()).or_default() += 1;
        let bridge = bridge.clone();
        let task = self.set.spawn(async move { bridge.run_job(job).await });
        self.jobs
            .insert(task.id(), (job_id, lease_until, integration));
    }

    /// What the next claim may take, given what runs now.
    fn share(&self, per_integration: u32, session_owner: Option<&str>) -> ClaimShare {
        ClaimShare {
            per_integration,
            session_owner: session_owner.map(str::to_owned),
            running: self
                .per_integration
                .iter()
                .map(|(id, n)| (id.to_string(), *n))
                .collect(),
        }
    }

    fn finished(&mut self, joined: Result<(tokio::task::Id, ()), JoinError>) {
        let id = match joined {
            Ok((id, ())) => id,
            Err(err) => {
                tracing::error!(error = %err, "bridge job panicked");
                err.id()
            }
        };
        let Some((_, _, integration)) = self.jobs.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_integration.get_mut(&integration) {
            *n -= 1;
            if *n == 0 {
                self.per_integration.remove(&integration);
            }
        }
    }

    /// Shutdown: running jobs get `drain` to finish; the rest are cut off
    /// and released.
    async fn drain(mut self, bridge: &Bridge) {
        let finish = async {
            while let Some(joined) = self.set.join_next_with_id().await {
                self.finished(joined);
            }
        };
        if tokio::time::timeout(bridge.config.drain, finish)
            .await
            .is_ok()
        {
            return;
        }
        self.set.abort_all();
        while let Some(joined) = self.set.join_next_with_id().await {
            let cut = joined
                .as_ref()
                .err()
                .filter(|e| e.is_cancelled())
                .and_then(|e| self.jobs.get(&e.id()))
                .map(|(job_id, lease_until, _)| (*job_id, *lease_until));
            self.finished(joined);
            if let Some((job_id, lease_until)) = cut {
                bridge.release(job_id, lease_until).await;
            }
        }
    }
}

impl Bridge {
    /// Returns once the worker has run every due job: a claim that began
    /// after this call found nothing to take while no job was running.
    /// Tests use it to assert that nothing (more) happens.
    pub async fn until_idle(&self) {
        let asked = self.idle.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut seen = self.idle.seen.subscribe();
        self.nudge();
        // The sender lives as long as the bridge.
        let _ = seen.wait_for(|seen| *seen >= asked).await;
    }

    /// A job cut off by shutdown goes back to the queue without an attempt
    /// counted. The call it was making may still land, so it is due when its
    /// lease ends (as after a crash, that call is over by then), and
    /// `last_error` records the cut: an inbound job with a `last_error` looks
    /// for its message before it posts again.
    async fn release(&self, job_id: i64, lease_until: i64) {
        let outcome = self.store.defer_job(job_id, lease_until, INTERRUPTED).await;
        match outcome {
            Ok(()) => tracing::info!(job_id, "bridge job released at shutdown"),
            // Its lease runs out and it is taken again: nothing is lost.
            Err(err) => tracing::warn!(job_id, error = %err, "could not release a bridge job"),
        }
    }

    async fn run_job(&self, job: Job) {
        // Finish well inside the lease, so no other worker takes it meanwhile.
        let budget = self.config.lease.mul_f32(0.8);
        let outcome = match tokio::time::timeout(budget, self.execute(&job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Transient {
                error: format!("took longer than {}s", budget.as_secs()),
                after: None,
            }),
        };
        if let Err(err) = self.record(&job, outcome).await {
            // The lease runs out and the job is taken again: nothing is lost.
            tracing::warn!(job_id = job.id, error = %err, "could not record a job outcome");
        }
    }

    /// Done, with the message link to store along with the completion (an
    /// inbound message posted, an agent message sent), or why not.
    async fn execute(&self, job: &Job) -> Result<Option<MessageLink>, Failure> {
        let Some(integration) = self
            .store
            .find_integration_by_id(&job.integration_id)
            .await?
        else {
            return Err(Failure::Orphaned);
        };
        let done = match JobPayload::from_json(&job.payload)? {
            JobPayload::Inbound(message) => {
                return self.post_inbound(job, &integration, &message).await;
            }
            JobPayload::Receipt {
                wa_message_id,
                status,
            } => {
                self.post_receipt(&integration, &wa_message_id, &status)
                    .await
            }
            JobPayload::AgentMessage(message) => {
                return self.send_agent_message(job, &integration, &message).await;
            }
            JobPayload::AgentDelete {
                conversation_id,
                message_id,
            } => {
                self.revoke_agent_message(&integration, conversation_id, message_id)
                    .await
            }
            JobPayload::GroupNote { id, chat, text } => {
                self.post_group_note(job, &integration, &id, &chat, &text)
                    .await
            }
            JobPayload::Avatar { chat, contact_id } => {
                self.refresh_avatar(&integration, &chat, contact_id).await
            }
            JobPayload::BotPost {
                text,
                qr_png_base64,
            } => self.bot_post(&integration, &text, qr_png_base64).await,
            JobPayload::BotCommand { command } => {
                self.run_bot_command(&integration, &command).await
            }
        };
        done.map(|()| None)
    }

    async fn record(&self, job: &Job, outcome: Result<Option<MessageLink>, Failure>) -> Result<()> {
        let now = now_ms();
        match outcome {
            Ok(link) => self.store.complete_job(job.id, link.as_ref()).await,
            Err(Failure::Orphaned) => {
                let parked = self
                    .store
                    .park_orphan_job(job.id, &job.integration_id, ORPHANED)
                    .await?;
                if parked {
                    tracing::warn!(job_id = job.id, integration_id = %job.integration_id, "bridge job parked: {ORPHANED}");
                    return Ok(());
                }
                // Moved to the instance's new integration meanwhile: run it there.
                self.store
                    .defer_job(job.id, now, "moved to a new integration")
                    .await
            }
            Err(Failure::Wait { reason, after }) => {
                self.store
                    .defer_job(job.id, now + after.as_millis() as i64, &reason)
                    .await
            }
            Err(Failure::Refused { error }) => {
                tracing::warn!(job_id = job.id, integration_id = %job.integration_id, %error, "Chatwoot refuses the integration");
                self.store
                    .set_integration_status(&job.integration_id, IntegrationStatus::Error, &error)
                    .await?;
                let after = self.config.refused_retry.as_millis() as i64;
                self.store.defer_job(job.id, now + after, &error).await
            }
            Err(Failure::Transient { error, after }) => {
                if job.attempts + 1 >= self.config.max_attempts {
                    return self.give_up(job, &error).await;
                }
                let backoff = self.backoff(job.attempts);
                let delay = after.map_or(backoff, |a| a.max(backoff));
                tracing::info!(job_id = job.id, attempt = job.attempts + 1, delay_ms = delay.as_millis() as u64, %error, "bridge job will be retried");
                self.store
                    .retry_job(job.id, now + delay.as_millis() as i64, &error)
                    .await
            }
            Err(Failure::Rejected { error }) if job.direction == INBOUND => {
                // Chatwoot will not take it as it is: keep it for the operator.
                self.give_up(job, &error).await
            }
            Err(Failure::Rejected { error }) => {
                tracing::info!(job_id = job.id, %error, "agent message rejected by WhatsApp");
                self.report_failed(job, &error).await;
                self.store.complete_job(job.id, None).await
            }
        }
    }

    /// Parks a job that keeps failing; an agent message is marked failed in
    /// Chatwoot so the agent sees it.
    async fn give_up(&self, job: &Job, error: &str) -> Result<()> {
        tracing::warn!(job_id = job.id, attempts = job.attempts + 1, %error, "bridge job parked as a dead letter");
        self.report_failed(job, error).await;
        self.store.park_job(job.id, error).await
    }

    /// `2^attempts × base`, capped, with ±20 % jitter so retries of many
    /// jobs do not arrive together.
    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.config.retry_base.as_millis() as f64;
        let max = self.config.retry_max.as_millis() as f64;
        let raw = (base * 2f64.powi(attempts.min(30) as i32)).min(max);
        let [byte] = random_bytes::<1>();
        let jitter = 0.8 + 0.4 * (f64::from(byte) / 255.0);
        Duration::from_millis((raw * jitter) as u64)
    }
}
