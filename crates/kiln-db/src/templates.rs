//! Saved session templates: each owned by a user and private, shared with named users or
//! instance-wide (built-in ones live in templates/sessions and are not stored). Reads take the
//! reader and return only what that user may see.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conn::{Conn, Dialect, Row, query, query_scalar};
use crate::{Db, Error, Result, now};

/// Who sees a saved template besides its owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Its owner only.
    #[default]
    Private,
    /// Its owner and the users it is shared with.
    Shared,
    /// Every user of the instance (set only by an administrator).
    Instance,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Instance => "instance",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "private" => Ok(Visibility::Private),
            "shared" => Ok(Visibility::Shared),
            "instance" => Ok(Visibility::Instance),
            other => Err(format!("unknown template visibility `{other}`")),
        }
    }
}

/// A saved template as stored, with its owner's name and the names it is shared with.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedTemplate {
    pub id: i64,
    pub owner_id: String,
    /// The owner's user name.
    pub owner: String,
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    /// User names, sorted (meaningful while `visibility` is `Shared`).
    pub shared_with: Vec<String>,
    /// The template's content (kiln-session's `TemplateBody`).
    pub body: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// A template to save.
#[derive(Debug, Clone)]
pub struct NewTemplate<'a> {
    pub owner_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub visibility: Visibility,
    pub body: &'a Value,
    /// User ids.
    pub shared_with: &'a [String],
}

/// What to change on a saved template; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct TemplateChange {
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub body: Option<Value>,
    /// User ids: replaces the whole list.
    pub shared_with: Option<Vec<String>>,
}

// dialect: json_group_array(name) over an ordered subquery: PostgreSQL uses COALESCE(json_agg(name ORDER BY name), '[]')
const SELECT_LITE: &str = "SELECT t.id, t.owner_id, u.name AS owner, t.name, t.description, \
    t.visibility, t.body, t.created_at, t.updated_at, \
    (SELECT json_group_array(name) FROM (SELECT su.name FROM template_shares s \
     JOIN users su ON su.id = s.user_id WHERE s.template_id = t.id ORDER BY su.name)) \
     AS shared_with \
    FROM session_templates t JOIN users u ON u.id = t.owner_id";
const SELECT_PG: &str = "SELECT t.id, t.owner_id, u.name AS owner, t.name, t.description, \
    t.visibility, t.body, t.created_at, t.updated_at, \
    COALESCE((SELECT json_agg(su.name ORDER BY su.name)::text FROM template_shares s \
     JOIN users su ON su.id = s.user_id WHERE s.template_id = t.id), '[]') \
     AS shared_with \
    FROM session_templates t JOIN users u ON u.id = t.owner_id";

/// The template SELECT in `d`'s dialect.
fn select(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => SELECT_LITE,
        Dialect::Postgres => SELECT_PG,
    }
}

/// The templates user `$1` may see: their own, those shared with them, instance-wide ones.
const VISIBLE: &str = "(t.owner_id = $1 OR t.visibility = 'instance' OR (t.visibility = 'shared' \
    AND EXISTS (SELECT 1 FROM template_shares s WHERE s.template_id = t.id AND s.user_id = $1)))";

fn from_row(r: &Row) -> Result<SavedTemplate> {
    Ok(SavedTemplate {
        id: r.try_get("id")?,
        owner_id: r.try_get("owner_id")?,
        owner: r.try_get("owner")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        visibility: r
            .try_get::<&str, _>("visibility")?
            .parse()
            .map_err(Error::Invalid)?,
        shared_with: serde_json::from_str(r.try_get::<&str, _>("shared_with")?)?,
        body: serde_json::from_str(r.try_get::<&str, _>("body")?)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Shares template `id` with `users` (again sharing is a no-op).
async fn share_with<S: AsRef<str>>(
    conn: &mut Conn,
    id: i64,
    users: impl IntoIterator<Item = S>,
) -> Result<()> {
    for user in users {
        query(
            "INSERT INTO template_shares (template_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (template_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(user.as_ref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Template `id` as stored, read inside the transaction that wrote it.
async fn read_back(conn: &mut Conn, id: i64) -> Result<SavedTemplate> {
    let select = select(conn.dialect());
    let row = query(sqlx::AssertSqlSafe(format!("{select} WHERE t.id = $1")))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    from_row(&row)
}

impl Db {
    /// Saves a template; names are unique per owner, so the only clash is with the owner's own.
    pub async fn insert_template(&self, t: &NewTemplate<'_>) -> Result<SavedTemplate> {
        crate::tree::check_name("template", t.name)?;
        let at = now();
        let mut tx = self.write().await?;
        let id: Option<i64> = query_scalar(
            "INSERT INTO session_templates \
             (owner_id, name, description, visibility, body, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $1, $6, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(t.owner_id)
        .bind(t.name)
        .bind(t.description)
        .bind(t.visibility.as_str())
        .bind(t.body.to_string())
        .bind(&at)
        .fetch_optional(&mut tx)
        .await?;
        let Some(id) = id else {
            return Err(Error::AlreadyExists(format!("your template `{}`", t.name)));
        };
        share_with(&mut tx, id, t.shared_with).await?;
        let saved = read_back(&mut tx, id).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// The saved templates `user` may see, by name then owner name; `name` and `owner` (a user
    /// name) narrow the list.
    pub async fn visible_templates(
        &self,
        user: &str,
        name: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Vec<SavedTemplate>> {
        let select = select(self.dialect());
        let sql = format!(
            "{select} WHERE {VISIBLE} AND ($2 IS NULL OR t.name = $2) \
             AND ($3 IS NULL OR u.name = $3) ORDER BY t.name, u.name"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(name)
            .bind(owner)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Changes a template `owner` owns; one transaction.
    pub async fn update_template(
        &self,
        id: i64,
        owner: &str,
        change: &TemplateChange,
    ) -> Result<SavedTemplate> {
        let mut tx = self.write().await?;
        let res = query(
            "UPDATE session_templates SET description = COALESCE($1, description), \
             visibility = COALESCE($2, visibility), body = COALESCE($3, body), updated_at = $4 \
             WHERE id = $5 AND owner_id = $6",
        )
        .bind(change.description.as_deref())
        .bind(change.visibility.map(Visibility::as_str))
        .bind(change.body.as_ref().map(Value::to_string))
        .bind(now())
        .bind(id)
        .bind(owner)
        .execute(&mut tx)
        .await?;
        if res == 0 {
            return Err(Error::not_found("template"));
        }
        if let Some(users) = &change.shared_with {
            query("DELETE FROM template_shares WHERE template_id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
            share_with(&mut tx, id, users).await?;
        }
        let saved = read_back(&mut tx, id).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a template `owner` owns (its shares go with it).
    pub async fn delete_template(&self, id: i64, owner: &str) -> Result<()> {
        let res = query("DELETE FROM session_templates WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut self.writer().await?.conn)
            .await?;
        if res == 0 {
            return Err(Error::not_found("template"));
        }
        Ok(())
    }
}
