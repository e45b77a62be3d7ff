//! The plain input records of `antenna-wit` as the SDK's guest types: field by field, nothing
//! else. The host lowers OTLP with `antenna-wit` and converts with the same macro, so a native
//! test sees exactly what the component sees.

antenna_wit::impl_from_plain!(crate);
