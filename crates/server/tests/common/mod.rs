pub mod claude;
pub mod process;
pub mod server;
pub mod upstream;
