//! `nlebench users add|list|remove`: the dashboard's accounts.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::anyhow;
use store::users::Role;

use crate::args::{Global, RoleArg, UsersAddArgs, UsersListArgs, UsersRemoveArgs};
use crate::context;

pub async fn add(g: &Global, a: UsersAddArgs) -> anyhow::Result<ExitCode> {
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        crate::environment::password().ok_or_else(|| {
            anyhow!(
                "no password given\n  fix: pass --password-stdin and type it, or set NLEBENCH_PASSWORD"
            )
        })?
    };
    if password.chars().count() < 8 {
        return Err(anyhow!(
            "the password is shorter than 8 characters\n  fix: choose a longer one"
        ));
    }
    let role = match a.role {
        RoleArg::Viewer => Role::Viewer,
        RoleArg::Editor => Role::Editor,
    };
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let created = store
        .upsert_user(
            &a.name,
            &web::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?,
            role,
        )
        .await?;
    outln!(
        "{} {} ({}){}",
        if created { "added" } else { "updated" },
        a.name,
        role.as_str(),
        if created {
            ""
        } else {
            "; its sessions are ended"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn list(g: &Global, a: UsersListArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let users = store.users(web::auth::SESSION_IDLE).await?;
    if a.json {
        let rows: Vec<serde_json::Value> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "name": u.name,
                    "role": u.role,
                    "created_at": u.created_at.to_rfc3339(),
                    "sessions": u.sessions,
                    "last_seen": u.last_seen.map(|t| t.to_rfc3339()),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if users.is_empty() {
        outln!("no dashboard users; add one with `nlebench users add NAME --role editor`");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = crate::render::table(&["name", "role", "sessions", "last seen", "created"], &[2]);
    for u in &users {
        t.add_row(vec![
            u.name.clone(),
            u.role.to_string(),
            u.sessions.to_string(),
            u.last_seen
                .map_or("-".to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
            u.created_at.format("%Y-%m-%d").to_string(),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(g: &Global, a: UsersRemoveArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    if !store.remove_user(&a.name).await? {
        return Err(anyhow!(
            "no dashboard user named `{}`\n  fix: see the names with `nlebench users list`",
            a.name
        ));
    }
    outln!("removed {}; its sessions are ended", a.name);
    if !store.has_users().await? {
        outln!(
            "no accounts left: a dashboard on a loopback address is viewable from this machine again; elsewhere nobody can sign in until `nlebench users add NAME --role editor`"
        );
    }
    Ok(ExitCode::SUCCESS)
}
