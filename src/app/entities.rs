//! Entities: a counter, used from orchestrations and from HTTP.

use azure_durable_functions::{Entity, EntityError, EntityType, Registry, entity};

entity! {
    /// A counter; its state is the count.
    pub Counter: i64 {
        /// Adds to the count (refused if it would overflow) and returns the new count.
        pub Add = "add": i64 => i64;
        /// The count.
        pub Get = "get": () => i64;
        /// Sets the count to zero.
        pub Reset = "reset": () => ();
        /// Deletes the entity's state.
        pub Delete = "delete": () => ();
    }
}

/// The counter entity's name (entity IDs are `@counter@<key>`), for calls by name (from HTTP routes, say).
pub const COUNTER: &str = Counter::NAME;

pub(super) fn register(registry: &mut Registry) {
    registry.register_entity(
        Counter,
        Entity::new()
            .on(Add, |value, _ctx, amount| {
                *value = value
                    .checked_add(amount)
                    .ok_or_else(|| EntityError::msg("the counter would overflow"))?;
                Ok(*value)
            })
            .on(Get, |value, _ctx, ()| Ok(*value))
            .on(Reset, |value, _ctx, ()| {
                *value = 0;
                Ok(())
            })
            .on(Delete, |_value, ctx, ()| {
                ctx.delete_state();
                Ok(())
            }),
    );
}
