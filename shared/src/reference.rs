//! Reference data: the region tree and the item categories.

use serde::Serialize;
use sqlx::PgConnection;

/// A city, district or neighbourhood.
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    /// Stable identifier.
    pub id: i64,
    /// Korean place name.
    pub name: String,
    /// The enclosing region; `None` for a city.
    pub parent_id: Option<i64>,
    /// 0 = city, 1 = district, 2 = neighbourhood.
    pub depth: i16,
}

/// A kind of item.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    /// Stable identifier.
    pub id: i64,
    /// Machine-readable name.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// Every region, parents before their children.
pub async fn regions(conn: &mut PgConnection) -> Result<Vec<Region>, sqlx::Error> {
    sqlx::query_as!(Region, "SELECT id, name, parent_id, depth FROM regions ORDER BY path").fetch_all(conn).await
}

/// Every category, by id.
pub async fn categories(conn: &mut PgConnection) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as!(Category, "SELECT id, slug, name FROM categories ORDER BY id").fetch_all(conn).await
}
