//! Worker registration and heartbeats (what the dashboard's workers page shows).

use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::entities::worker;
use super::{Store, StoreError, now};

/// A worker process as it registers itself.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Unique name, `{host}-{pid}` unless given.
    pub name: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Inference device, e.g. `cpu`.
    pub device: String,
    /// Queue it pulls from.
    pub queue: String,
    /// MiB it offers its jobs, if known.
    pub memory_mb: Option<u64>,
    /// Engine version it computes with.
    pub release: String,
}

impl Store {
    /// Register (or re-register) a worker as running.
    pub async fn register_worker(&self, w: &WorkerInfo) -> Result<(), StoreError> {
        let t = now();
        worker::Entity::insert(worker::ActiveModel {
            name: Set(w.name.clone()),
            host: Set(w.host.clone()),
            pid: Set(w.pid),
            device: Set(w.device.clone()),
            queue: Set(w.queue.clone()),
            status: Set("running".into()),
            current_job: Set(None),
            jobs_done: Set(0),
            started_at: Set(t),
            last_heartbeat: Set(t),
            memory_mb: Set(w.memory_mb.map(|m| m as i64)),
            release: Set(Some(w.release.clone())),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(worker::Column::Name)
                .update_columns([
                    worker::Column::Host,
                    worker::Column::Pid,
                    worker::Column::Device,
                    worker::Column::Queue,
                    worker::Column::Status,
                    worker::Column::CurrentJob,
                    worker::Column::StartedAt,
                    worker::Column::LastHeartbeat,
                    worker::Column::MemoryMb,
                    worker::Column::Release,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Refresh a worker's heartbeat.
    pub async fn heartbeat(&self, name: &str) -> Result<(), StoreError> {
        worker::Entity::update_many()
            .col_expr(worker::Column::LastHeartbeat, Expr::value(now()))
            .filter(worker::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Set the job a worker is on (`None` when idle); `finished` counts a completed job.
    pub async fn worker_job(
        &self,
        name: &str,
        job: Option<i64>,
        finished: bool,
    ) -> Result<(), StoreError> {
        let mut q = worker::Entity::update_many()
            .col_expr(worker::Column::CurrentJob, Expr::value(job))
            .col_expr(worker::Column::LastHeartbeat, Expr::value(now()));
        if finished {
            q = q.col_expr(
                worker::Column::JobsDone,
                Expr::col(worker::Column::JobsDone).add(1),
            );
        }
        q.filter(worker::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Mark a worker as stopped.
    pub async fn worker_stopped(&self, name: &str) -> Result<(), StoreError> {
        worker::Entity::update_many()
            .col_expr(worker::Column::Status, Expr::value("stopped"))
            .col_expr(worker::Column::CurrentJob, Expr::value(Option::<i64>::None))
            .filter(worker::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Remove a stopped worker's row (the jobs it ran keep its name).
    pub async fn forget_worker(&self, name: &str) -> Result<(), StoreError> {
        worker::Entity::delete_many()
            .filter(worker::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// All registered workers.
    pub async fn workers(&self) -> Result<Vec<worker::Model>, StoreError> {
        Ok(worker::Entity::find().all(&self.db).await?)
    }
}

/// Registered as running, with a heartbeat younger than `within`.
pub(super) fn alive(w: &worker::Model, within: std::time::Duration) -> bool {
    w.status == "running" && (now() - w.last_heartbeat).to_std().unwrap_or_default() < within
}
