//! Dashboard users and sessions. Password hashing and token generation happen in the
//! dashboard crate; the store keeps hashes only.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

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

impl Store {
    /// Create a user, or set the password and role of an existing one; returns whether it
    /// was created.
    pub async fn upsert_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        match self.user(name).await? {
            Some(u) => {
                let mut a: user::ActiveModel = u.into();
                a.password_hash = Set(password_hash.to_string());
                a.role = Set(role.as_str().to_string());
                a.update(&self.db).await?;
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
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The unexpired session with this token hash and its user.
    pub async fn session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(session::Model, user::Model)>, StoreError> {
        let Some(s) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash))
            .filter(session::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let u = user::Entity::find_by_id(s.user_id).one(&self.db).await?;
        Ok(u.map(|u| (s, u)))
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
