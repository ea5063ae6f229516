//! The orders database schema, as sea-orm migrations applied at start-up.

// sea-orm's `MigrationTrait` (async_trait) names `SchemaManager` without its
// lifetime; the impls must match it.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_orders;
mod m20261202_000001_outbox;
mod m20261207_000001_milestones;

/// Applies order-svc's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_orders::Migration),
            Box::new(m20261202_000001_outbox::Migration),
            Box::new(m20261207_000001_milestones::Migration),
            Box::new(events::schema::DropUnpublishedIndex),
        ]
    }
}
