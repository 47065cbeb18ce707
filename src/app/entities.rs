//! Entities: a counter, used from orchestrations and from HTTP.

use azure_durable_functions::{Entity, EntityError, Registry};

/// The counter entity's name (entity IDs are `@counter@<key>`).
pub const COUNTER: &str = "Counter";

pub(super) fn register(registry: &mut Registry) {
    registry.add_entity(
        COUNTER,
        Entity::<i64>::new()
            .operation("add", |value: &mut i64, _ctx, amount: i64| {
                *value = value
                    .checked_add(amount)
                    .ok_or_else(|| EntityError::msg("the counter would overflow"))?;
                Ok(*value)
            })
            .operation("get", |value: &mut i64, _ctx, _: ()| {
                Ok::<_, EntityError>(*value)
            })
            .operation("reset", |value: &mut i64, _ctx, _: ()| {
                *value = 0;
                Ok::<_, EntityError>(())
            })
            .operation("delete", |_value: &mut i64, ctx, _: ()| {
                ctx.delete_state();
                Ok::<_, EntityError>(())
            }),
    );
}
