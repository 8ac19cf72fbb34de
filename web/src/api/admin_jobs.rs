//! Operator endpoints for the job queues: depth and throughput, dead jobs (retry, discard) and the
//! workers' heartbeats. They read and act on Redis through `neighborbid_shared::jobs::queues` and
//! `monitor`, the same functions `neighborbid-worker jobs` uses.

use chrono::{DateTime, Utc};
use neighborbid_shared::jobs::monitor;
use neighborbid_shared::jobs::queues::{self, QUEUES, Queue, Retry};
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use redis::aio::ConnectionManager;

use super::ApiTags;
use super::admin::{forbidden, is_admin};
use super::auth::BearerAuth;
use super::error::{ApiError, ErrorSet, error_set};
use crate::state::AppState;

/// Minutes of throughput reported per queue.
const THROUGHPUT_MINUTES: u64 = 15;
/// Dead jobs listed per queue at most.
const DEAD_JOBS_SHOWN: usize = 100;

error_set!(
    /// Errors of reading the queues and workers.
    QueueReadErrors {
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        503 => "`queues_unavailable`: Redis does not answer (or the database, which checks the token, does not)",
    }
);

error_set!(
    /// Errors of listing a queue's dead jobs.
    DeadListErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        404 => "`queue_not_found`: the queues are `release`, `settlement`, `email` and `images`",
        503 => "`queues_unavailable`: Redis does not answer (or the database, which checks the token, does not)",
    }
);

error_set!(
    /// Errors of retrying or discarding a dead job.
    DeadActionErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        404 => "`queue_not_found`, or `dead_job_not_found`: no dead job of that id on that queue (retried or discarded already?)",
        409 => "`payload_missing` (retry only): the job's payload is gone from Redis, so it cannot run again; discard it",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "`queues_unavailable`: Redis does not answer (or the database, which checks the token, does not)",
    }
);

/// Jobs finished in one minute.
#[derive(Object)]
pub struct MinuteView {
    /// The minute's start.
    pub start: DateTime<Utc>,
    /// Jobs that finished in it (counted when the workers vacuum them, at most 5 s later).
    pub finished: u64,
}

/// One queue's state.
#[derive(Object)]
pub struct QueueView {
    /// `release`, `settlement`, `email` or `images`.
    pub name: String,
    /// Pushed or waiting for a retry, not yet due or not yet fetched.
    pub scheduled: u64,
    /// Due and waiting for a worker.
    pub active: u64,
    /// Fetched by a worker and not finished.
    pub inflight: u64,
    /// Failed for good; waiting for an operator.
    pub dead: u64,
    /// Workers whose last heartbeat is recent enough (10 s).
    pub workers_alive: u64,
    /// Jobs finished per minute over the last 15 minutes, oldest first; the last is the current,
    /// partial, minute.
    pub throughput: Vec<MinuteView>,
}

/// Every queue.
#[derive(Object)]
pub struct QueuesView {
    /// In a fixed order: release, settlement, email, images.
    pub queues: Vec<QueueView>,
}

/// A job that failed for good. Its payload and error are untrusted text.
#[derive(Object)]
pub struct DeadJobView {
    /// The job's id in its queue (`send_email:9`).
    pub id: String,
    /// The job's payload, as the JSON text apalis stored; missing if Redis lost it.
    pub payload: Option<String>,
    /// How many times it ran.
    pub attempts: Option<String>,
    /// The last error, as apalis recorded it.
    pub error: Option<String>,
}

/// A queue's dead jobs.
#[derive(Object)]
pub struct DeadJobsView {
    /// The queue.
    pub queue: String,
    /// How many dead jobs the queue holds.
    pub total: u64,
    /// Up to 100 of them, by id.
    pub items: Vec<DeadJobView>,
}

/// A worker, as its heartbeats show it.
#[derive(Object)]
pub struct WorkerView {
    /// Its unique name: queue, host, process id and a random suffix.
    pub name: String,
    /// The queue it serves.
    pub queue: String,
    /// Its last heartbeat (workers beat every 5 s).
    pub last_heartbeat_at: DateTime<Utc>,
    /// Beat within the last 10 s. A killed worker stays listed, not alive, until another worker of its
    /// queue hands its jobs out again.
    pub alive: bool,
    /// Jobs it has fetched and not finished.
    pub inflight: u64,
}

/// Every registered worker.
#[derive(Object)]
pub struct WorkersView {
    /// By queue, then most recent heartbeat first.
    pub items: Vec<WorkerView>,
}

/// A dead job was acted on.
#[derive(ApiResponse)]
enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

fn queue_not_found<E: ErrorSet>() -> ApiError<E> {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "queue_not_found",
        "no such queue; the queues are release, settlement, email and images",
    )
}

fn redis_down<E: ErrorSet>(err: redis::RedisError) -> ApiError<E> {
    tracing::warn!(error = %err, "Redis unavailable for an operator request");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queues_unavailable",
        "Redis, which holds the queues, does not answer",
    )
}

async fn queue_view(redis: &mut ConnectionManager, prefix: &str, queue: Queue) -> redis::RedisResult<QueueView> {
    let depth = queues::depth(redis, prefix, queue).await?;
    let workers = monitor::workers(redis, prefix, queue).await?;
    let throughput = monitor::throughput(redis, prefix, queue, THROUGHPUT_MINUTES).await?;
    Ok(QueueView {
        name: queue.as_str().into(),
        scheduled: depth.scheduled,
        active: depth.active,
        inflight: depth.inflight,
        dead: depth.dead,
        workers_alive: workers.iter().filter(|w| w.alive).count() as u64,
        throughput: throughput.into_iter().map(|m| MinuteView { start: m.start, finished: m.finished }).collect(),
    })
}

/// Operators: the job queues.
pub struct AdminJobsApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminJobsApi {
    /// Each queue's depth, live workers and finished jobs per minute.
    #[oai(path = "/admin/queues", method = "get", operation_id = "list_queues")]
    async fn list_queues(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<QueuesView>, ApiError<QueueReadErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let (mut redis, prefix) = (state.redis_conn.clone(), &state.config.queue_prefix);
        let mut views = Vec::with_capacity(QUEUES.len());
        for queue in QUEUES {
            views.push(queue_view(&mut redis, prefix, queue).await.map_err(redis_down)?);
        }
        Ok(Json(QueuesView { queues: views }))
    }

    /// A queue's dead jobs: up to 100, by id.
    #[oai(path = "/admin/queues/:queue/dead", method = "get", operation_id = "list_dead_jobs")]
    async fn list_dead_jobs(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `release`, `settlement`, `email` or `images`.
        #[oai(validator(max_length = 64))]
        queue: Path<String>,
    ) -> Result<Json<DeadJobsView>, ApiError<DeadListErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let queue = Queue::parse(&queue.0).ok_or_else(queue_not_found)?;
        let (mut redis, prefix) = (state.redis_conn.clone(), &state.config.queue_prefix);
        let total = queues::depth(&mut redis, prefix, queue).await.map_err(redis_down)?.dead;
        let jobs = queues::dead_jobs(&mut redis, prefix, queue, DEAD_JOBS_SHOWN).await.map_err(redis_down)?;
        Ok(Json(DeadJobsView {
            queue: queue.as_str().into(),
            total,
            items: jobs
                .into_iter()
                .map(|j| DeadJobView { id: j.id, payload: j.payload, attempts: j.attempts, error: j.error })
                .collect(),
        }))
    }

    /// Put a dead job back on its queue, its attempts reset; a worker runs it again shortly.
    #[oai(path = "/admin/queues/:queue/dead/:id/retry", method = "post", operation_id = "retry_dead_job")]
    async fn retry_dead_job(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `release`, `settlement`, `email` or `images`.
        #[oai(validator(max_length = 64))]
        queue: Path<String>,
        /// The dead job's id (`send_email:9`).
        #[oai(validator(max_length = 200))]
        id: Path<String>,
    ) -> Result<Done, ApiError<DeadActionErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let queue = Queue::parse(&queue.0).ok_or_else(queue_not_found)?;
        let mut redis = state.redis_conn.clone();
        match queues::retry_dead(&mut redis, &state.config.queue_prefix, queue, &id.0).await.map_err(redis_down)? {
            Retry::Retried => {
                tracing::info!(queue = queue.as_str(), job.id = %id.0, user.id = auth.0.user.id.0, "dead job retried");
                Ok(Done::NoContent)
            }
            Retry::NotDead => Err(no_dead_job()),
            Retry::PayloadMissing => Err(ApiError::new(
                StatusCode::CONFLICT,
                "payload_missing",
                "the job's payload is gone from Redis, so it cannot run again; discard it",
            )),
        }
    }

    /// Delete a dead job for good.
    #[oai(path = "/admin/queues/:queue/dead/:id", method = "delete", operation_id = "discard_dead_job")]
    async fn discard_dead_job(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `release`, `settlement`, `email` or `images`.
        #[oai(validator(max_length = 64))]
        queue: Path<String>,
        /// The dead job's id (`send_email:9`).
        #[oai(validator(max_length = 200))]
        id: Path<String>,
    ) -> Result<Done, ApiError<DeadActionErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let queue = Queue::parse(&queue.0).ok_or_else(queue_not_found)?;
        let mut redis = state.redis_conn.clone();
        match queues::discard_dead(&mut redis, &state.config.queue_prefix, queue, &id.0).await.map_err(redis_down)? {
            true => {
                tracing::info!(queue = queue.as_str(), job.id = %id.0, user.id = auth.0.user.id.0, "dead job discarded");
                Ok(Done::NoContent)
            }
            false => Err(no_dead_job()),
        }
    }

    /// Every worker registered on a queue, with its last heartbeat.
    #[oai(path = "/admin/workers", method = "get", operation_id = "list_workers")]
    async fn list_workers(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<WorkersView>, ApiError<QueueReadErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let (mut redis, prefix) = (state.redis_conn.clone(), &state.config.queue_prefix);
        let mut items = Vec::new();
        for queue in QUEUES {
            let workers = monitor::workers(&mut redis, prefix, queue).await.map_err(redis_down)?;
            items.extend(workers.into_iter().map(|w| WorkerView {
                name: w.name,
                queue: w.queue.as_str().into(),
                last_heartbeat_at: w.last_heartbeat,
                alive: w.alive,
                inflight: w.inflight,
            }));
        }
        Ok(Json(WorkersView { items }))
    }
}

fn no_dead_job() -> ApiError<DeadActionErrors> {
    ApiError::new(StatusCode::NOT_FOUND, "dead_job_not_found", "no dead job of that id on that queue")
}
