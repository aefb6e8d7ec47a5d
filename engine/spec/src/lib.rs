pub mod diagnostic;
pub mod source;
pub mod yaml;
pub mod catalogue;
pub mod model;
pub mod schema;
pub mod suggest;
