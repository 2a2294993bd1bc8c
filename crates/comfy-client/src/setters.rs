//! `option_setters!`: builder-style setters for `Option` fields, shared by the option
//! structs ([`crate::RunOptions`], [`crate::PromptRequest`]).

/// Defines, for each `field: Type` with its doc comment, a setter
/// `pub fn field(mut self, value: Type) -> Self` that stores `Some(value.into())` in the
/// field of the same name.
macro_rules! option_setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = Some(value.into());
                self
            }
        )*
    };
}

pub(crate) use option_setters;
