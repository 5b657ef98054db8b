//! The worker: claims due jobs (the oldest of each chat), runs them
//! concurrently, and records each outcome: done, retried with backoff,
//! waiting, or parked as a dead letter.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;
use zapgate_core::{
    Result,
    chatwoot::IntegrationStatus,
    jobs::{Job, MessageLink},
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

/// Keeps up to `batch` jobs running: claims again as soon as a slot frees
/// (a finished job may have released the next one of its chat) or a job is
/// stored, instead of waiting for a whole batch to finish.
pub(super) async fn run(bridge: Arc<Bridge>) {
    let slots = bridge.config.batch.max(1) as usize;
    let mut running = JoinSet::new();
    let mut drained_at: Option<Instant> = None;
    loop {
        while let Some(joined) = running.try_join_next() {
            log_panic(joined);
        }
        let free = slots.saturating_sub(running.len());
        if free > 0 {
            let gap = drained_at.map(|at| CLAIM_GAP.saturating_sub(at.elapsed()));
            if let Some(gap) = gap.filter(|g| !g.is_zero()) {
                tokio::time::sleep(gap).await;
            }
            let now = now_ms();
            let lease_until = now + bridge.config.lease.as_millis() as i64;
            match bridge.store.claim_jobs(now, lease_until, free as u32).await {
                Ok(jobs) => {
                    drained_at = (jobs.len() < free).then(Instant::now);
                    for job in jobs {
                        let bridge = bridge.clone();
                        running.spawn(async move { bridge.run_job(job).await });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "bridge worker: could not claim jobs");
                    tokio::time::sleep(bridge.config.poll.max(Duration::from_secs(1))).await;
                    continue;
                }
            }
        }
        if running.len() >= slots {
            // Full: only a finished job makes room.
            if let Some(joined) = running.join_next().await {
                log_panic(joined);
            }
            continue;
        }
        // Everything due is running: wait for a job to finish (its chat's
        // next one may be due), a new job, or the poll.
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => log_panic(joined),
            () = bridge.wake.notified() => {}
            () = tokio::time::sleep(bridge.config.poll) => {}
        }
    }
}

fn log_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        tracing::error!(error = %err, "bridge job panicked");
    }
}

impl Bridge {
    /// Claims and runs one batch; returns how many jobs ran.
    pub async fn run_due_jobs(self: &Arc<Self>) -> Result<usize> {
        let now = now_ms();
        let lease_until = now + self.config.lease.as_millis() as i64;
        let jobs = self
            .store
            .claim_jobs(now, lease_until, self.config.batch)
            .await?;
        let count = jobs.len();
        let mut running = JoinSet::new();
        for job in jobs {
            let bridge = self.clone();
            running.spawn(async move { bridge.run_job(job).await });
        }
        while let Some(joined) = running.join_next().await {
            log_panic(joined);
        }
        Ok(count)
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
    /// inbound message posted), or why not.
    async fn execute(&self, job: &Job) -> Result<Option<MessageLink>, Failure> {
        let Some(integration) = self
            .store
            .find_integration_by_id(&job.integration_id)
            .await?
        else {
            // Deactivated meanwhile: deactivation already dealt with its jobs.
            return Ok(None);
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
                self.send_agent_message(job, &integration, &message).await
            }
            JobPayload::AgentDelete {
                conversation_id,
                message_id,
            } => {
                self.revoke_agent_message(&integration, conversation_id, message_id)
                    .await
            }
        };
        done.map(|()| None)
    }

    async fn record(&self, job: &Job, outcome: Result<Option<MessageLink>, Failure>) -> Result<()> {
        let now = now_ms();
        match outcome {
            Ok(link) => self.store.complete_job(job.id, link.as_ref()).await,
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
