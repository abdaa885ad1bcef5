//! Dashboard users and sessions. Password hashing and token generation happen in the
//! dashboard crate; the store keeps hashes only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::entities::{session, user};
use super::{Store, StoreError};

/// A dashboard role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sees the pages.
    Viewer,
    /// Sees the pages and may cancel, retry and import baselines.
    Editor,
}

impl Role {
    /// `viewer` or `editor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
        }
    }

    /// Parse `viewer` or `editor`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            _ => None,
        }
    }
}

/// A user as `nlebench users list` shows it.
#[derive(Debug, Clone)]
pub struct UserSummary {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Sessions not yet ended.
    pub sessions: u64,
    /// Last use of any of its sessions.
    pub last_seen: Option<DateTime<Utc>>,
}

/// A session is used (its `last_seen_at` written) at most this often.
const SEEN_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// Sessions alive at `now`: before their absolute end and used within `idle`.
fn alive(now: DateTime<Utc>, idle: chrono::Duration) -> Condition {
    let since = now - idle;
    Condition::all()
        .add(session::Column::ExpiresAt.gt(now))
        .add(
            Condition::any()
                .add(session::Column::LastSeenAt.gt(since))
                .add(
                    Condition::all()
                        .add(session::Column::LastSeenAt.is_null())
                        .add(session::Column::CreatedAt.gt(since)),
                ),
        )
}

impl Store {
    /// Create a user, or set the password and role of an existing one (which ends all its
    /// sessions: a reset password signs everyone out); returns whether it was created.
    pub async fn upsert_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        match self.user(name).await? {
            Some(u) => {
                let id = u.id;
                let mut a: user::ActiveModel = u.into();
                a.password_hash = Set(password_hash.to_string());
                a.role = Set(role.as_str().to_string());
                let txn = super::begin(&self.db).await?;
                a.update(&txn).await?;
                session::Entity::delete_many()
                    .filter(session::Column::UserId.eq(id))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                Ok(false)
            }
            None => {
                user::ActiveModel {
                    name: Set(name.to_string()),
                    password_hash: Set(password_hash.to_string()),
                    role: Set(role.as_str().to_string()),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                }
                .insert(&self.db)
                .await?;
                Ok(true)
            }
        }
    }

    /// Whether any dashboard user exists.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(user::Entity::find().one(&self.db).await?.is_some())
    }

    /// A user by name.
    pub async fn user(&self, name: &str) -> Result<Option<user::Model>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Name.eq(name))
            .one(&self.db)
            .await?)
    }

    /// Store a session (by the hash of its token) for a user.
    pub async fn create_session(
        &self,
        user_id: i64,
        token_hash: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        session::ActiveModel {
            token_hash: Set(token_hash.to_string()),
            user_id: Set(user_id),
            csrf: Set(csrf.to_string()),
            created_at: Set(Utc::now()),
            expires_at: Set(expires_at),
            last_seen_at: Set(Some(Utc::now())),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The live session with this token hash (before its end, used within `idle`) and its
    /// user; marks it used.
    pub async fn session(
        &self,
        token_hash: &str,
        idle: chrono::Duration,
    ) -> Result<Option<(session::Model, user::Model)>, StoreError> {
        let now = Utc::now();
        let Some(s) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash))
            .filter(alive(now, idle))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if s.last_seen_at.is_none_or(|t| now - t > SEEN_EVERY) {
            session::Entity::update_many()
                .col_expr(session::Column::LastSeenAt, Expr::value(Some(now)))
                .filter(session::Column::Id.eq(s.id))
                .exec(&self.db)
                .await?;
        }
        let u = user::Entity::find_by_id(s.user_id).one(&self.db).await?;
        Ok(u.map(|u| (s, u)))
    }

    /// Delete sessions past their end or unused for `idle`; returns how many.
    pub async fn delete_expired_sessions(&self, idle: chrono::Duration) -> Result<u64, StoreError> {
        Ok(session::Entity::delete_many()
            .filter(alive(Utc::now(), idle).not())
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Every user with its live sessions (see [`Store::session`]), by name.
    pub async fn users(&self, idle: chrono::Duration) -> Result<Vec<UserSummary>, StoreError> {
        let users = user::Entity::find()
            .order_by_asc(user::Column::Name)
            .all(&self.db)
            .await?;
        let sessions = session::Entity::find()
            .filter(alive(Utc::now(), idle))
            .all(&self.db)
            .await?;
        Ok(users
            .into_iter()
            .map(|u| {
                let mine: Vec<&session::Model> =
                    sessions.iter().filter(|s| s.user_id == u.id).collect();
                UserSummary {
                    sessions: mine.len() as u64,
                    last_seen: mine
                        .iter()
                        .map(|s| s.last_seen_at.unwrap_or(s.created_at))
                        .max(),
                    name: u.name,
                    role: u.role,
                    created_at: u.created_at,
                }
            })
            .collect())
    }

    /// Remove a user and end its sessions; `false` when there is no such user.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let Some(u) = self.user(name).await? else {
            return Ok(false);
        };
        let txn = super::begin(&self.db).await?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(u.id))
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(u.id).exec(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// End a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(token_hash))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
