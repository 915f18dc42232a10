pub mod claude;
pub mod server;
