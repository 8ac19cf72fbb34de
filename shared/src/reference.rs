//! Reference data: the region tree and the item categories.

use serde::Serialize;
use sqlx::PgConnection;

use crate::ids::{CategoryId, RegionId};

/// A city, district or neighbourhood.
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    /// Stable identifier.
    pub id: RegionId,
    /// Korean place name.
    pub name: String,
    /// The enclosing region; `None` for a city.
    pub parent_id: Option<RegionId>,
    /// 0 = city, 1 = district, 2 = neighbourhood.
    pub depth: i16,
}

/// A kind of item.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    /// Stable identifier.
    pub id: CategoryId,
    /// Machine-readable name.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// Every region, parents before their children.
pub async fn regions(conn: &mut PgConnection) -> Result<Vec<Region>, sqlx::Error> {
    sqlx::query_as!(
        Region,
        r#"SELECT id AS "id: RegionId", name, parent_id AS "parent_id: RegionId", depth FROM regions ORDER BY path"#
    )
    .fetch_all(conn)
    .await
}

/// Every category, by id.
pub async fn categories(conn: &mut PgConnection) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as!(Category, r#"SELECT id AS "id: CategoryId", slug, name FROM categories ORDER BY id"#)
        .fetch_all(conn)
        .await
}
