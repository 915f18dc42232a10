pub mod claude;
pub mod portal;
pub mod process;
pub mod server;
pub mod upstream;
