//! The products database schema, as sea-orm migrations applied at start-up.

// sea-orm's `MigrationTrait` (async_trait) names `SchemaManager` without its
// lifetime; the impls must match it.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_catalogue;
mod m20261202_000001_events;
mod m20261203_000001_quotes;
mod m20261203_000002_images;
mod m20261207_000001_stock_history;

/// Applies product-svc's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_catalogue::Migration),
            Box::new(m20261202_000001_events::Migration),
            Box::new(m20261203_000001_quotes::Migration),
            Box::new(m20261203_000002_images::Migration),
            Box::new(m20261207_000001_stock_history::Migration),
            Box::new(events::schema::DropUnpublishedIndex),
        ]
    }
}
