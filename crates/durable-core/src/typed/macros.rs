//! `macro_rules!` declarations of typed functions: each writes a unit struct and its trait implementation, nothing
//! more, so they cost next to nothing to compile.

/// The registered name of a declaration: the literal when one is given, else the type's name.
#[doc(hidden)]
#[macro_export]
macro_rules! __durable_name {
    ($ty:ident) => {
        ::core::stringify!($ty)
    };
    ($ty:ident, $name:literal) => {
        $name
    };
}

/// Declares activities by type: `Name: Input => Output;`, registered as `"Name"`, or `Name = "name": Input =>
/// Output;` for another registered name (a function written in another language, say). Each declaration becomes a
/// unit struct implementing [`Activity`](crate::Activity); attributes and doc comments go on the struct.
///
/// ```
/// durable_core::activity! {
///     /// Greets one city.
///     pub SayHello: String => String;
///     /// Implemented in Python, where it is called `count_letters`.
///     pub CountLetters = "count_letters": String => u64;
/// }
/// use durable_core::Activity;
/// assert_eq!((SayHello::NAME, CountLetters::NAME), ("SayHello", "count_letters"));
/// ```
#[macro_export]
macro_rules! activity {
    ($( $(#[$meta:meta])* $vis:vis $ty:ident $(= $name:literal)? : $input:ty => $output:ty; )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
            $vis struct $ty;

            impl $crate::Activity for $ty {
                const NAME: &'static str = $crate::__durable_name!($ty $(, $name)?);
                type Input = $input;
                type Output = $output;
            }
        )+
    };
}

/// Declares orchestrators by type, as [`activity!`](crate::activity) declares activities: `Name: Input =>
/// Output;` or `Name = "name": Input => Output;`. Each becomes a unit struct implementing
/// [`Orchestrator`](crate::Orchestrator).
///
/// ```
/// durable_core::orchestrator! {
///     /// Greets every city.
///     pub Greetings: Vec<String> => Vec<String>;
/// }
/// use durable_core::Orchestrator;
/// assert_eq!(Greetings::NAME, "Greetings");
/// ```
#[macro_export]
macro_rules! orchestrator {
    ($( $(#[$meta:meta])* $vis:vis $ty:ident $(= $name:literal)? : $input:ty => $output:ty; )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
            $vis struct $ty;

            impl $crate::Orchestrator for $ty {
                const NAME: &'static str = $crate::__durable_name!($ty $(, $name)?);
                type Input = $input;
                type Output = $output;
            }
        )+
    };
}

/// Declares an entity and its operations by type: `Name: State { Op: Input => Output; ... }`, with `= "name"`
/// after any type name to register it under another name. The entity becomes a unit struct implementing
/// [`EntityType`](crate::EntityType), each operation one implementing [`EntityOperation`](crate::EntityOperation)
/// for it, so an operation can only be called on its own entity. Operation structs share the module's namespace:
/// declare entities whose operation names would clash in modules of their own.
///
/// ```
/// durable_core::entity! {
///     /// A counter; its state is the count.
///     pub Counter: i64 {
///         /// Adds to the count and returns the new count.
///         pub Add = "add": i64 => i64;
///         /// The count.
///         pub Get = "get": () => i64;
///     }
/// }
/// use durable_core::{EntityOperation, EntityType};
/// assert_eq!((Counter::NAME, Add::NAME, Get::NAME), ("Counter", "add", "get"));
/// assert_eq!(Counter::id("mine").to_string(), "@counter@mine");
/// ```
#[macro_export]
macro_rules! entity {
    (
        $(#[$meta:meta])* $vis:vis $ty:ident $(= $name:literal)? : $state:ty {
            $( $(#[$op_meta:meta])* $op_vis:vis $op:ident $(= $op_name:literal)? : $input:ty => $output:ty; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        $vis struct $ty;

        impl $crate::EntityType for $ty {
            const NAME: &'static str = $crate::__durable_name!($ty $(, $name)?);
            type State = $state;
        }

        impl $ty {
            /// The id of the entity of this type with `key`.
            #[allow(dead_code)]
            $vis fn id(key: impl ::core::convert::Into<::std::string::String>) -> $crate::EntityId {
                <Self as $crate::EntityType>::id(key)
            }
        }

        $(
            $(#[$op_meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
            $op_vis struct $op;

            impl $crate::EntityOperation for $op {
                type Entity = $ty;
                const NAME: &'static str = $crate::__durable_name!($op $(, $op_name)?);
                type Input = $input;
                type Output = $output;
            }
        )*
    };
}
